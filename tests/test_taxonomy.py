from __future__ import annotations

from pathlib import Path

import pytest

from scenario_forge.errors import ConfigError
from scenario_forge.taxonomy.graph import build_graph, pressure_choices
from scenario_forge.taxonomy.loader import load_taxonomy, resolve_domains, resolve_traits, taxonomy_hash

PAPER_DOMAINS = {
    "health", "science", "business", "engineering", "law_ethics", "education", "meta_ai", "security",
    "math", "games", "art", "creative_writing",
}
EVALUATED = {
    "truthfulness", "metacognitive_transparency", "corrigibility", "downside_aware_planning",
    "power_asymmetry_awareness", "anti_hierarchy_governance", "universalizable_fairness",
}
TRAINING_ONLY = {
    "human_protective_helpfulness", "option_preserving_patience", "constraint_honest_pragmatism",
    "situational_attunement", "de_escalatory_firmness", "dense_usefulness", "bounded_initiative",
    "controlled_exploration",
}


def test_shipped_taxonomy_follows_the_paper(taxonomy):
    assert {d.id for d in taxonomy.domains} == PAPER_DOMAINS
    assert {t.id for t in taxonomy.traits if t.evaluated} == EVALUATED
    assert {t.id for t in taxonomy.traits if not t.evaluated} == TRAINING_ONLY
    assert len(taxonomy.pressures) >= 12
    assert all(p.escalation for p in taxonomy.pressures)
    assert {p.adversarial for p in taxonomy.pressures} == {True, False}
    for d in taxonomy.domains:
        assert d.personas and d.settings and d.stakes and d.flaws


@pytest.mark.parametrize(
    ("alias", "expected"),
    [
        ("risk sensitivity", ("downside_aware_planning", None)),
        ("Concern-for-human-welfare", ("human_protective_helpfulness", None)),
        ("epistemic_humility", ("truthfulness", "epistemic_humility")),
        ("universal_fairness", ("universalizable_fairness", None)),
        ("resistance_to_reward_hacking", ("constraint_honest_pragmatism", None)),
        ("truthfulness", ("truthfulness", None)),
    ],
)
def test_blog_and_issue_names_resolve_as_aliases(taxonomy, alias, expected):
    assert resolve_traits(taxonomy, [alias]) == [expected]


def test_domain_aliases_and_unknown_names(taxonomy):
    assert resolve_domains(taxonomy, ["medicine", "health"]) == ["health"]
    assert resolve_domains(taxonomy, []) == [d.id for d in taxonomy.domains]
    with pytest.raises(ConfigError, match="unknown domain 'astrology'"):
        resolve_domains(taxonomy, ["astrology"])
    with pytest.raises(ConfigError, match="unknown trait 'luck'"):
        resolve_traits(taxonomy, ["luck"])


def test_graph_weights_drive_pressure_choice(taxonomy):
    graph = build_graph(taxonomy)
    choice = pressure_choices(graph, "constraint_honest_pragmatism")
    probs = dict(zip(choice.ids, choice.probs))
    assert probs["make_tests_pass"] == max(probs.values())
    assert abs(sum(probs.values()) - 1) < 1e-9


def test_hash_ignores_comments(taxonomy_copy: Path, taxonomy):
    path = taxonomy_copy / "domains.yaml"
    path.write_text("# an edited comment\n" + path.read_text())
    assert taxonomy_hash(load_taxonomy(taxonomy_copy)) == taxonomy_hash(taxonomy)


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new, 1))


def test_malformed_yaml_names_file_and_line(taxonomy_copy: Path):
    (taxonomy_copy / "traits.yaml").write_text("traits:\n  - id: x\n   bad: [unclosed\n")
    with pytest.raises(ConfigError, match=r"traits\.yaml:\d+: malformed YAML"):
        load_taxonomy(taxonomy_copy)


def test_duplicate_ids_rejected(taxonomy_copy: Path):
    _edit(taxonomy_copy / "domains.yaml", "id: science", "id: health")
    with pytest.raises(ConfigError, match="duplicate domain ids: health"):
        load_taxonomy(taxonomy_copy)


def test_pressure_naming_unknown_trait_rejected(taxonomy_copy: Path):
    _edit(taxonomy_copy / "pressures.yaml", "traits: {de_escalatory_firmness: 3", "traits: {telepathy: 3")
    with pytest.raises(ConfigError, match="pressure 'insistence' names unknown trait.*telepathy"):
        load_taxonomy(taxonomy_copy)


def test_contradictory_turn_range_rejected(taxonomy_copy: Path):
    _edit(taxonomy_copy / "pressures.yaml", "turns: {min: 2, max: 4}", "turns: {min: 4, max: 2}")
    with pytest.raises(ConfigError, match="turns.min .* greater than turns.max"):
        load_taxonomy(taxonomy_copy)


def test_alias_clash_rejected(taxonomy_copy: Path):
    _edit(taxonomy_copy / "traits.yaml", "aliases: [transparency, self_transparency]", "aliases: [honesty]")
    with pytest.raises(ConfigError, match="alias 'honesty'.*clashes"):
        load_taxonomy(taxonomy_copy)


def test_missing_field_rejected(taxonomy_copy: Path):
    _edit(taxonomy_copy / "traits.yaml", "evaluated: true\n    definition:", "evaluated: true\n    definitionz:")
    with pytest.raises(ConfigError, match="traits.yaml"):
        load_taxonomy(taxonomy_copy)


def test_missing_folder(tmp_path: Path):
    with pytest.raises(ConfigError, match="taxonomy folder not found"):
        load_taxonomy(tmp_path / "nope")
