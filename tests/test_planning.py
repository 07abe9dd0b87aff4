from __future__ import annotations

from collections import Counter

import pytest

from scenario_forge.errors import ConfigError
from scenario_forge.planning import plan


@pytest.mark.parametrize("n", [1, 7, 180, 1000, 1237])
def test_cells_balanced_within_one(taxonomy, n):
    seeds = plan(taxonomy, None, None, n, seed=3)
    assert len(seeds) == n
    counts = Counter((s.domain, s.trait) for s in seeds)
    cells = len(taxonomy.domains) * len(taxonomy.traits)
    per_cell = [counts.get((d.id, t.id), 0) for d in taxonomy.domains for t in taxonomy.traits]
    assert max(per_cell) - min(per_cell) <= 1
    assert sum(per_cell) == n and len(per_cell) == cells


def test_selected_cells_only_and_balanced(taxonomy):
    seeds = plan(taxonomy, ["health"], ["truthfulness", "corrigibility", "risk_sensitivity"], 31, seed=0)
    counts = Counter(s.trait for s in seeds)
    assert set(counts) == {"truthfulness", "corrigibility", "downside_aware_planning"}
    assert max(counts.values()) - min(counts.values()) <= 1
    assert {s.domain for s in seeds} == {"health"}


def test_deterministic_for_a_seed(taxonomy):
    a = plan(taxonomy, ["health"], None, 50, seed=7)
    b = plan(taxonomy, ["health"], None, 50, seed=7)
    c = plan(taxonomy, ["health"], None, 50, seed=8)
    assert list(a) == list(b)
    assert [s.id for s in a] != [s.id for s in c]
    assert len({s.id for s in a}) == 50


def test_draws_follow_the_taxonomy(taxonomy):
    seeds = plan(taxonomy, None, ["constraint_honest_pragmatism"], 2000, seed=1)
    pressures = Counter(s.pressure for s in seeds)
    assert pressures.most_common(1)[0][0] == "make_tests_pass"
    for s in seeds:
        p = taxonomy.pressure(s.pressure)
        assert p.turns.min <= s.user_turns <= p.turns.max
        d = taxonomy.domain(s.domain)
        assert s.persona in {x.id for x in d.personas}
        if s.shape == "flawed_prior_turn":
            entry = next(f for f in d.flaws if f.label == s.flaw)
            assert (s.flaw_claim, s.flaw_correct, s.flaw_kind) == (entry.claim, entry.correct, entry.kind)
            assert entry.personas is None or s.persona in entry.personas  # sampled with a compatible persona
        else:
            assert s.flaw is s.flaw_claim is s.flaw_correct is s.flaw_kind is None
        assert s.operator_persona == p.operator_persona


def test_flawed_shape_where_the_trait_or_pressure_calls_for_it(taxonomy):
    seeds = plan(taxonomy, None, ["metacognitive_transparency", "dense_usefulness"], 4000, seed=2)
    rate = {
        t: sum(s.shape == "flawed_prior_turn" for s in seeds if s.trait == t) / sum(s.trait == t for s in seeds)
        for t in ("metacognitive_transparency", "dense_usefulness")
    }
    assert rate["metacognitive_transparency"] > 0.5 > rate["dense_usefulness"]
    assert all(s.shape == "flawed_prior_turn" for s in seeds if s.pressure == "prior_mistake")


def test_facets_rotate_and_facet_aliases_pin_them(taxonomy):
    seeds = plan(taxonomy, ["health"], ["truthfulness"], 40, seed=0)
    assert Counter(s.facet for s in seeds) == {None: 10, "epistemic_humility": 10, "evidence_grounding": 10, "non_sycophancy": 10}
    pinned = plan(taxonomy, ["health"], ["epistemic_humility"], 9, seed=0)
    assert {(s.trait, s.facet) for s in pinned} == {("truthfulness", "epistemic_humility")}


@pytest.mark.parametrize("n", [0, -3])
def test_rejects_non_positive_n(taxonomy, n):
    with pytest.raises(ConfigError, match="positive"):
        plan(taxonomy, None, None, n, seed=0)


def test_rejects_unknown_names(taxonomy):
    with pytest.raises(ConfigError, match="unknown domain"):
        plan(taxonomy, ["mars"], None, 5, seed=0)
