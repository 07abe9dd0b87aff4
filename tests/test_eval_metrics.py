"""The report's arithmetic on hand-made grades: persistence, selective persistence, refusal-adjusted
scores, transfer, wins/losses and bootstrap CIs."""

from __future__ import annotations

import doctest

import numpy as np
import pytest

from scenario_forge.evaluation import metrics, refusal
from scenario_forge.evaluation.metrics import (
    Stats,
    bootstrap_ci,
    compare_pairs,
    comparisons,
    persistence,
    selective_persistence,
    summary,
    trait_table,
    transfer,
)
from scenario_forge.evaluation.records import GradeRow

LOOSE = Stats(n_boot=500, min_pairs=2)


def g(split: str, row: str, score: float | None, *, model: str = "m", scenario: str | None = None, domain: str = "health",
      trait: str = "truthfulness", refused: bool | None = False, status: str | None = None, source: str = "beneficial",
      task: str | None = None) -> GradeRow:
    return GradeRow(
        model=model, split=split, row_id=row, scenario_id=scenario, source=source,
        reward_type="rubric" if source == "beneficial" else "exact_match", domain=domain if source == "beneficial" else None,
        trait=trait if source == "beneficial" else None, task=task, persona_variant=None, answer="a", score=score,
        status=status or ("scored" if score is not None else "unscoreable"), refused=refused,
    )


def probes(plain: list[float | None], harmful: list[float | None], helpful: list[float | None], model: str = "m"):
    rows = []
    for split, scores in (("persistence_plain", plain), ("persistence_harmful", harmful), ("persistence_helpful", helpful)):
        rows += [g(split, f"{split}-{i}", s, model=model, scenario=f"s{i}") for i, s in enumerate(scores)]
    return rows


def test_summary_excludes_and_counts_unscored_and_adjusts_for_refusals():
    rows = [
        g("heldout", "a", 1.0, refused=True),   # a refusal the rubric happened to reward
        g("heldout", "b", 0.5),
        g("heldout", "c", 0.0),
        g("heldout", "d", None),                # judge gave no verdict
        g("heldout", "e", None, status="generation_failed", refused=None),
        g("heldout", "f", 0.25, refused=None),  # refusal unknown: not in the rate, not in the adjusted mean
    ]
    s = summary(rows)
    assert (s["n"], s["scored"], s["unscored"], s["unscoreable"], s["generation_failed"]) == (6, 4, 2, 1, 1)
    assert s["mean"] == pytest.approx((1.0 + 0.5 + 0.0 + 0.25) / 4)  # never 0 for the unscored
    assert s["refusals"] == 1 and s["refusal_unknown"] == 2 and s["refusal_rate"] == pytest.approx(1 / 4)
    assert s["mean_non_refused"] == pytest.approx(0.25) and s["non_refused_scored"] == 2


def test_persistence_drop_and_gain_are_paired_by_scenario():
    # scenario s2's harmful answer is unscoreable: that pair is left out of the drop, not counted as 0
    p = persistence(probes([0.8, 0.6, 0.7], [0.2, 0.4, None], [0.9, 0.9, 0.9]), LOOSE)
    assert p["plain"]["mean"] == pytest.approx(0.7) and p["harmful"]["mean"] == pytest.approx(0.3)
    assert p["harmful"]["unscored"] == 1
    assert p["drop"]["n_pairs"] == 2 and p["drop"]["diff"] == pytest.approx(((0.8 - 0.2) + (0.6 - 0.4)) / 2)
    assert p["gain"]["n_pairs"] == 3 and p["gain"]["diff"] == pytest.approx(((0.1) + (0.3) + (0.2)) / 3)
    assert persistence([g("heldout", "x", 1.0)]) is None


def test_selective_persistence_side_by_side():
    # The paper's shape: the baseline collapses under the harmful persona, the trait model much less;
    # the helpful persona lifts both about equally.
    model = probes([0.45, 0.46, 0.45, 0.47, 0.44], [0.33, 0.34, 0.34, 0.33, 0.35], [0.55, 0.56, 0.55, 0.57, 0.54])
    base = probes([0.40, 0.39, 0.40, 0.41, 0.38], [0.15, 0.14, 0.15, 0.13, 0.15], [0.50, 0.49, 0.50, 0.51, 0.48], model="b")
    sel = selective_persistence(model, base, Stats(n_boot=1000))
    assert sel["model"]["drop"]["diff"] == pytest.approx(0.116)
    assert sel["baseline"]["drop"]["diff"] == pytest.approx(0.252)
    # drop reduction = baseline drop - model drop, per scenario
    assert sel["drop_reduction"]["diff"] == pytest.approx(0.252 - 0.116)
    assert sel["drop_reduction"]["verdict"] == "better"
    assert sel["model"]["gain"]["diff"] == pytest.approx(0.1) and sel["baseline"]["gain"]["diff"] == pytest.approx(0.1)
    assert sel["gain_difference"]["diff"] == 0.0 and sel["gain_difference"]["row_ties"] == 5
    assert sel["gain_difference"]["verdict"] == "no significant difference"


def test_bootstrap_ci_is_deterministic_and_covers_the_mean():
    rng = np.random.default_rng(3)
    diffs = list(rng.normal(0.1, 0.2, size=40))
    a, b = bootstrap_ci(diffs, 2000, 0.95, seed=7), bootstrap_ci(diffs, 2000, 0.95, seed=7)
    assert a == b
    assert bootstrap_ci(diffs, 2000, 0.95, seed=8) != a
    assert a[0] < np.mean(diffs) < a[1]
    wide, narrow = bootstrap_ci(diffs, 2000, 0.99, seed=7), bootstrap_ci(diffs, 2000, 0.8, seed=7)
    assert wide[0] < a[0] < narrow[0] and narrow[1] < a[1] < wide[1]


def test_wins_losses_and_verdicts():
    r = compare_pairs([(1.0, 0.0)] * 6 + [(0.0, 0.5)] + [(0.3, 0.3)], Stats(n_boot=1000))
    assert (r["row_wins"], r["row_losses"], r["row_ties"]) == (6, 1, 1)
    assert r["diff"] == pytest.approx((6 - 0.5) / 8) and r["verdict"] == "better"
    assert compare_pairs([(0.0, 1.0)] * 5)["verdict"] == "worse"
    assert compare_pairs([(1.0, 0.0)] * 4)["verdict"] == "too few pairs"
    assert compare_pairs([])["verdict"] == "no pairs"


def test_comparisons_pair_rows_per_eval_and_tally():
    model = [g("heldout", f"t{i}", 0.9) for i in range(6)] + [g("heldout", f"f{i}", 0.2, trait="fairness") for i in range(6)]
    model += [g("heldout", f"m{i}", 1.0, source="standard", task="arithmetic") for i in range(6)]
    base = [g("heldout", f"t{i}", 0.3, model="b") for i in range(6)] + [g("heldout", f"f{i}", 0.6, model="b", trait="fairness") for i in range(6)]
    base += [g("heldout", f"m{i}", 1.0, model="b", source="standard", task="arithmetic") for i in range(5)]
    base += [g("heldout", "m5", None, model="b", source="standard", task="arithmetic")]  # unscored: pair dropped
    c = comparisons(model, base, Stats(n_boot=500))
    ev = c["evals"]
    assert set(ev) == {"heldout/truthfulness", "heldout/fairness", "heldout/arithmetic"}
    assert ev["heldout/truthfulness"]["verdict"] == "better" and ev["heldout/truthfulness"]["row_wins"] == 6
    assert ev["heldout/fairness"]["verdict"] == "worse" and ev["heldout/fairness"]["diff"] == pytest.approx(-0.4)
    assert ev["heldout/arithmetic"]["n_pairs"] == 5 and ev["heldout/arithmetic"]["row_ties"] == 5
    assert c["tally"] == {"evals": 3, "better": 1, "worse": 1, "no_significant_difference": 1, "too_few_pairs": 0,
                          "mean_diff_positive": 1, "mean_diff_negative": 1}


def test_transfer_splits_trained_and_other_domains():
    model = [g("heldout", f"h{i}", 0.8) for i in range(3)] + [g("heldout", f"b{i}", 0.7, domain="business") for i in range(3)]
    base = [g("heldout", f"h{i}", 0.5, model="b") for i in range(3)] + [g("heldout", f"b{i}", 0.6, model="b", domain="business") for i in range(3)]
    t = transfer(model, base, ["health"], LOOSE)
    assert t["in_domain"]["diff"] == pytest.approx(0.3) and t["transfer"]["diff"] == pytest.approx(0.1)
    assert t["domains"]["business"]["trained"] is False and t["domains"]["health"]["trained"] is True


def test_trait_table_uses_heldout_and_not_persona_repeats():
    rows = [g("heldout", "a", 1.0), g("heldout", "b", 0.0, trait="fairness", domain="law"), g("heldout", "c", None)]
    rows += probes([0.1], [0.1], [0.1])
    table = {(t["domain"], t["trait"]): t for t in trait_table(rows)}
    assert table[("health", "truthfulness")]["mean"] == 1.0 and table[("health", "truthfulness")]["n"] == 2
    assert table[("law", "fairness")]["scored"] == 1
    only_probes = trait_table(probes([0.4], [0.0], [0.9]))
    assert [t["mean"] for t in only_probes] == [0.4]  # the plain probes, not the persona variants


def test_module_doctests():
    assert doctest.testmod(metrics).attempted > 0 and doctest.testmod(metrics).failed == 0
    assert doctest.testmod(refusal).attempted > 0 and doctest.testmod(refusal).failed == 0
