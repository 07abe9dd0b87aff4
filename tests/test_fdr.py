"""Counting the paper's way: paired-bootstrap p-values, Benjamini-Hochberg over every eval of a report,
the headline "k of n improved (k' after FDR at q)", and capability checks beside the trait scores."""

from __future__ import annotations

import pytest

from scenario_forge.evaluation.metrics import (
    Stats,
    benjamini_hochberg,
    bootstrap_p_value,
    capability_table,
    comparisons,
    report_figures,
)
from scenario_forge.evaluation.records import GradeRow
from scenario_forge.evaluation.report import markdown


def test_benjamini_hochberg_matches_a_hand_worked_example():
    # Worked by hand, q = 0.05, m = 6 p-values:
    #   input order:        0.012  0.030  0.004  0.200  0.033  0.600
    #   sorted, rank k:     0.004 (1)  0.012 (2)  0.030 (3)  0.033 (4)  0.200 (5)  0.600 (6)
    #   threshold k/6*0.05: 0.00833    0.01667    0.025      0.03333    0.04167    0.05
    #   p(k) <= threshold:  yes        yes        NO         yes        no         no
    # The largest k passing is 4, so the four smallest are rejected: 0.030 too, although it failed at
    # its own rank (the step-up). Bonferroni (0.05/6 = 0.00833) would reject 0.004 only.
    # Adjusted p(k) = min over j >= k of p(j) * 6 / j:
    #   raw p*6/k:   0.024  0.036  0.060  0.0495  0.240  0.600
    #   running min from the end: 0.600, 0.240, 0.0495, min(0.060, 0.0495) = 0.0495, 0.036, 0.024
    p = [0.012, 0.030, 0.004, 0.200, 0.033, 0.600]
    rejected, adjusted = benjamini_hochberg(p, q=0.05)
    assert rejected == [True, True, True, False, True, False]
    assert adjusted == pytest.approx([0.036, 0.0495, 0.024, 0.24, 0.0495, 0.60])
    # at q = 0.02 the thresholds are k/6*0.02 = 0.00333, 0.00667, ...: 0.004 already fails at rank 1,
    # and no later p(k) is below its threshold (0.012 > 0.00667, 0.030 > 0.01, ...): nothing rejected
    assert benjamini_hochberg(p, q=0.02)[0] == [False] * 6


def test_bh_rejects_nothing_above_q_and_checks_q():
    assert benjamini_hochberg([0.2, 0.3], 0.05) == ([False, False], [0.3, 0.3])
    with pytest.raises(ValueError):
        benjamini_hochberg([0.1], q=1.5)


def test_bootstrap_p_value_is_seeded_and_two_sided():
    up = [0.3, 0.2, 0.4, 0.25, 0.35, 0.3]
    down = [-x for x in up]
    assert bootstrap_p_value(up, 999, 3) == bootstrap_p_value(up, 999, 3) == pytest.approx(2 / 1000)
    assert bootstrap_p_value(down, 999, 3) == pytest.approx(2 / 1000)
    mixed = [0.5, -0.4, 0.1, -0.2, 0.0, 0.05]
    assert bootstrap_p_value(mixed, 999, 3) > 0.5


def g(split: str, row: str, score: float | None, *, model: str = "m", trait: str = "truthfulness",
      source: str = "beneficial", task: str | None = None) -> GradeRow:
    return GradeRow(
        model=model, split=split, row_id=row, scenario_id=None, source=source,
        reward_type="rubric" if source == "beneficial" else "exact_match", domain="health" if source == "beneficial" else None,
        trait=trait if source == "beneficial" else None, task=task, persona_variant=None, answer="a", score=score,
        status="scored" if score is not None else "unscoreable", refused=False,
    )


def evals_fixture() -> tuple[list[GradeRow], list[GradeRow]]:
    # truthfulness: +0.6 on each of 8 rows (p = 2/(B+1), survives BH);
    # fairness: +0.3 on 6 rows, -0.1 on 2 (better by its CI, with a weaker p);
    # humility: -0.5 on every row (declined, survives BH); arithmetic (standard rows): no change.
    model, base = [], []
    for i in range(8):
        model.append(g("heldout", f"t{i}", 0.9)); base.append(g("heldout", f"t{i}", 0.3, model="b"))
        model.append(g("heldout", f"h{i}", 0.1, trait="humility")); base.append(g("heldout", f"h{i}", 0.6, model="b", trait="humility"))
        model.append(g("heldout", f"m{i}", 1.0, source="standard", task="arithmetic"))
        base.append(g("heldout", f"m{i}", 1.0, model="b", source="standard", task="arithmetic"))
    for i in range(8):
        d = 0.3 if i < 6 else -0.1
        model.append(g("heldout", f"f{i}", 0.5 + d, trait="fairness")); base.append(g("heldout", f"f{i}", 0.5, model="b", trait="fairness"))
    return model, base


def test_comparisons_carry_p_values_bh_and_the_headline():
    model, base = evals_fixture()
    c = comparisons(model, base, Stats(n_boot=999, seed=1, fdr_q=0.05))
    ev, fdr = c["evals"], c["fdr"]
    assert ev["heldout/truthfulness"]["p_value"] == pytest.approx(2 / 1000) and ev["heldout/truthfulness"]["fdr_significant"]
    assert ev["heldout/humility"]["verdict"] == "worse" and ev["heldout/humility"]["fdr_significant"]
    assert ev["heldout/arithmetic"]["p_value"] == 1.0 and not ev["heldout/arithmetic"]["fdr_significant"]
    fair = ev["heldout/fairness"]
    # fairness is better by its CI, with a weaker p: 3 of its 999 seeded resamples have a mean at or
    # below 0, so p = 2 * (3 + 1) / 1000 = 0.008
    assert fair["verdict"] == "better" and fair["p_value"] == pytest.approx(0.008)
    # BH by hand at q = 0.05: sorted p = 0.002, 0.002, 0.008, 1.0; thresholds 0.0125, 0.025, 0.0375, 0.05
    # -> the first three pass, k = 3. Adjusted: 0.002*4/2 = 0.004 (both), 0.008*4/3 = 0.01067, 1.0.
    assert fair["fdr_significant"] and fair["p_adjusted"] == pytest.approx(0.008 * 4 / 3)
    assert ev["heldout/truthfulness"]["p_adjusted"] == pytest.approx(0.004)
    assert fdr == {"q": 0.05, "n": 4, "improved": 2, "declined": 1, "no_change": 1, "improved_after_fdr": 2,
                   "declined_after_fdr": 1, "headline": "2 of 4 improved (2 after FDR at q=0.05)"}
    # at q = 0.01 the thresholds are 0.0025, 0.005, 0.0075, 0.01: 0.008 > 0.0075 and 1.0 > 0.01, so k = 2;
    # fairness stays improved by its CI but not after the correction
    strict = comparisons(model, base, Stats(n_boot=999, seed=1, fdr_q=0.01))["fdr"]
    assert (strict["improved"], strict["improved_after_fdr"], strict["declined_after_fdr"]) == (2, 1, 1)
    assert strict["headline"] == "2 of 4 improved (1 after FDR at q=0.01)"


def test_too_few_pairs_still_count_as_tests():
    model = [g("heldout", f"t{i}", 0.9) for i in range(8)] + [g("heldout", "x0", 1.0, trait="fairness")]
    base = [g("heldout", f"t{i}", 0.3, model="b") for i in range(8)] + [g("heldout", "x0", 0.0, model="b", trait="fairness")]
    c = comparisons(model, base, Stats(n_boot=999))
    assert c["evals"]["heldout/fairness"]["verdict"] == "too few pairs" and c["evals"]["heldout/fairness"]["p_value"] is None
    assert c["evals"]["heldout/fairness"]["p_adjusted"] == 1.0
    # m = 2: truthfulness's 0.002 <= 1/2 * 0.05
    assert c["fdr"]["headline"] == "1 of 2 improved (1 after FDR at q=0.05)"


def test_capability_checks_beside_trait_scores_in_the_report():
    model, base = evals_fixture()
    cap = capability_table(model)
    assert list(cap) == ["heldout/arithmetic"] and cap["heldout/arithmetic"]["mean"] == 1.0
    figures = report_figures({"m": model, "b": base}, "m", "b", ["health"], Stats(n_boot=200))
    assert figures["models"]["b"]["capability"]["heldout/arithmetic"]["scored"] == 8
    meta = {"mixture": "mix", "splits": {"heldout": 32}, "models": {"m": "x", "b": "y"}, "judge": "j", "refusal": "pattern",
            "answer_sampling": {}, "bootstrap": 200, "confidence": 0.95, "seed": 0, "min_pairs": 5}
    md = markdown(meta, figures, "m", "b")
    assert "## Capability checks" in md and "| heldout/arithmetic | 1.000 (n=8) | 1.000 (n=8) |" in md
    assert md.index("## Mean trait score") < md.index("## Capability checks") < md.index("## Model vs baseline")
    assert figures["comparison"]["fdr"]["headline"] in md and "p (BH)" in md
