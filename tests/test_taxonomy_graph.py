"""The taxonomy graph does the planner's work: domain-pressure and trait-pressure edges, the flaw
catalogue with compatible personas, and the checks `taxonomy validate` runs on them."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from scenario_forge.cli.main import app
from scenario_forge.errors import ConfigError
from scenario_forge.planning import plan
from scenario_forge.taxonomy.graph import build_graph, cell_pressure_choices, cell_weights, empty_cells, graph_figures
from scenario_forge.taxonomy.loader import load_taxonomy
from scenario_forge.taxonomy.models import PROFILE_ORDER

runner = CliRunner()


def _rewrite(folder: Path, name: str, edit: Any) -> None:
    """Load ``folder/name``, let ``edit`` change the data in place, write it back."""
    path = folder / name
    data = yaml.safe_load(path.read_text())
    edit(data)
    path.write_text(yaml.safe_dump(data, sort_keys=False))


def _item(items: list[dict[str, Any]], item_id: str) -> dict[str, Any]:
    return next(i for i in items if i["id"] == item_id)


def test_graph_has_every_kind_of_edge(taxonomy):
    figures = graph_figures(build_graph(taxonomy))
    assert figures["nodes"] == {"domain": 12, "trait": 15, "pressure": len(taxonomy.pressures)}
    assert figures["edges"]["domain-trait"] == 12 * 15
    assert 0 < figures["edges"]["domain-pressure"] < 12 * len(taxonomy.pressures)  # some pairings are forbidden
    assert figures["edges"]["trait-pressure"] > 0


def test_make_the_tests_pass_never_lands_in_art_or_health(taxonomy):
    # the example: by trait alone, about half of this trait's art and health seeds got it
    seeds = plan(taxonomy, ["art", "health", "engineering"], ["constraint_honest_pragmatism"], 3000, seed=4)
    by_domain = {d: Counter(s.pressure for s in seeds if s.domain == d) for d in ("art", "health", "engineering")}
    assert by_domain["art"]["make_tests_pass"] == by_domain["health"]["make_tests_pass"] == 0
    assert by_domain["engineering"].most_common(1)[0][0] == "make_tests_pass"


def test_pressures_never_leave_their_listed_domains(taxonomy):
    seeds = plan(taxonomy, None, None, 20_000, seed=11)
    for s in seeds:
        p = taxonomy.pressure(s.pressure)
        assert not p.domains or p.domains.get(s.domain, 0) > 0, (s.pressure, s.domain)


def test_cell_draws_follow_the_product_of_the_two_edge_weights(taxonomy):
    graph = build_graph(taxonomy)
    weights = cell_weights(graph, "engineering", "constraint_honest_pragmatism")
    mtp = taxonomy.pressure("make_tests_pass")
    assert weights["make_tests_pass"] == mtp.domains["engineering"] * mtp.traits["constraint_honest_pragmatism"]
    choice = cell_pressure_choices(graph, "engineering", "constraint_honest_pragmatism")
    expected = dict(zip(choice.ids, choice.probs))
    n = 20_000
    seen = Counter(s.pressure for s in plan(taxonomy, ["engineering"], ["constraint_honest_pragmatism"], n, seed=5))
    for pid, prob in expected.items():
        assert abs(seen[pid] / n - prob) < 4 * (prob * (1 - prob) / n) ** 0.5 + 1e-3, pid
    assert set(seen) <= set(expected)


def test_personas_have_concrete_attributes_and_a_profile(taxonomy):
    for d in taxonomy.domains:
        assert len(d.personas) >= 4, d.id
        for p in d.personas:
            assert set(PROFILE_ORDER) <= set(p.attributes), (d.id, p.id)
            profile = d.persona(p.id).profile()
            assert profile.startswith(p.description) and all(f"{k}: {p.attributes[k]}" in profile for k in PROFILE_ORDER)
    with pytest.raises(KeyError):
        taxonomy.domain("health").persona("astronaut")


def test_flaw_catalogue_is_specific_and_its_personas_exist(taxonomy):
    for d in taxonomy.domains:
        assert 4 <= len(d.flaws) <= 6, d.id
        ids = {p.id for p in d.personas}
        for f in d.flaws:
            assert f.claim != f.correct and f.label and f.kind
            assert f.personas is None or set(f.personas) <= ids
            assert d.flaw(f.id) is f and f in d.flaws_for((f.personas or [d.personas[0].id])[0])


def test_flawed_seeds_are_drawn_with_a_compatible_persona(taxonomy):
    seeds = plan(taxonomy, None, ["metacognitive_transparency"], 3000, seed=9)
    flawed = [s for s in seeds if s.shape == "flawed_prior_turn"]
    assert len(flawed) > 1000
    for s in flawed:
        entry = next(f for f in taxonomy.domain(s.domain).flaws if f.claim == s.flaw_claim)
        assert entry.personas is None or s.persona in entry.personas
    assert len({s.flaw_claim for s in flawed}) == sum(len(d.flaws) for d in taxonomy.domains)  # the whole catalogue is used


# -- bad taxonomies: one line, non-zero exit ------------------------------------------------------


def _validate(folder: Path):
    result = runner.invoke(app, ["taxonomy", "validate", "--taxonomy", str(folder)])
    errors = [line for line in result.output.splitlines() if line.startswith("error: ")]
    return result, errors


def test_validate_rejects_a_cell_with_no_compatible_pressure(taxonomy_copy: Path):
    def only_elsewhere(data: dict[str, Any]) -> None:
        for p in data["pressures"]:  # every pressure fits every domain but math
            p["domains"] = {d: 1 for d in ("health", "science", "business", "engineering", "law_ethics", "education",
                                           "meta_ai", "security", "games", "art", "creative_writing")}

    _rewrite(taxonomy_copy, "pressures.yaml", only_elsewhere)
    result, errors = _validate(taxonomy_copy)
    assert result.exit_code == 1 and len(errors) == 1
    assert "cell (math, truthfulness) has no compatible pressure tactic (and 14 more)" in errors[0]
    t = load_taxonomy(taxonomy_copy)
    assert len(empty_cells(build_graph(t), ["math"], [x.id for x in t.traits])) == 15
    with pytest.raises(ConfigError, match=r"cell \(math, corrigibility\) has no compatible pressure tactic"):
        plan(t, ["math"], ["corrigibility"], 3, seed=0)
    assert len(plan(t, ["health"], ["corrigibility"], 3, seed=0)) == 3  # other cells still plan


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda data: _item(data["domains"], "health")["flaws"][0].update(personas=["astronaut"]),
         "flaw 'paracetamol_over_daily_max' of domain 'health' names unknown persona(s): astronaut"),
        (lambda data: _item(data["domains"], "art")["flaws"].append("a plain old flaw"),
         "is a plain string ('a plain old flaw'); a flaw is a catalogue entry"),
        (lambda data: _item(data["domains"], "math")["flaws"][0].pop("correct"), "correct"),
    ],
)
def test_validate_rejects_bad_flaw_entries(taxonomy_copy: Path, edit, message: str):
    _rewrite(taxonomy_copy, "domains.yaml", edit)
    result, errors = _validate(taxonomy_copy)
    assert result.exit_code != 0 and len(errors) == 1, result.output
    assert message in errors[0] and "domains.yaml" in errors[0]


def test_validate_rejects_a_domain_with_no_persona(taxonomy_copy: Path):
    def no_personas(data: dict[str, Any]) -> None:
        games = _item(data["domains"], "games")
        games["personas"] = []
        for f in games["flaws"]:
            f.pop("personas", None)

    _rewrite(taxonomy_copy, "domains.yaml", no_personas)
    result, errors = _validate(taxonomy_copy)
    assert result.exit_code != 0 and len(errors) == 1
    assert "domains.yaml: domains.9.personas: List should have at least 1 item" in errors[0]


def test_validate_rejects_a_pressure_for_an_unknown_domain(taxonomy_copy: Path):
    _rewrite(taxonomy_copy, "pressures.yaml", lambda data: _item(data["pressures"], "urgency")["domains"].update(astrology=2))
    result, errors = _validate(taxonomy_copy)
    assert result.exit_code != 0 and len(errors) == 1
    assert "pressure 'urgency' names unknown domain(s): astrology" in errors[0]


def test_validate_and_show_print_the_graph_figures():
    ok = runner.invoke(app, ["taxonomy", "validate"])
    assert ok.exit_code == 0 and "catalogued flaws" in ok.output and "domain-pressure pairings" in ok.output
    shown = runner.invoke(app, ["taxonomy", "show"], env={"COLUMNS": "250"})
    assert shown.exit_code == 0
    assert "domain-pressure weights" in shown.output and "180 domain-trait edges" in shown.output
    assert "pressures per cell: min" in shown.output
