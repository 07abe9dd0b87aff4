"""Refusal classes on the hand-labelled answer set: the pattern classifier's per-class precision and
recall, side by side with the detector it replaced, and optionally a judge's.

    .venv/bin/python benchmarks/bench_refusal.py                 # pattern classifier (+ the old detector)
    .venv/bin/python benchmarks/bench_refusal.py --quick         # the same (tests use it); never runs a model
    .venv/bin/python benchmarks/bench_refusal.py --judge embedded    # also the judge classifier, with that model

Reads ``labelled/refusals.jsonl``: answers written and labelled by hand (``refusal``,
``decline_false_premise``, ``decline_harmful_step``, ``engaged``; see
``scenario_forge/evaluation/refusal.py``), each label checked in a second pass. Prints, per class,
gold rows, predicted rows, precision and recall; the confusion matrix; accuracy; and for the
*refused* decision that the refusal-controlled scores use (``refusal`` vs the rest) the precision
and recall of the pattern classifier next to the old detector (any answer whose opening declines),
plus how many honest declines (false premise or harmful step) each one counts as refusals.

The set is small (68 answers) and was written by the same person who wrote the patterns, with the
patterns in view: the figures describe this set, not a held-out sample of model answers.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

from scenario_forge.evaluation.refusal import (  # noqa: E402
    CLASSES,
    classify,
    classify_refusals,
    opens_with_decline,
    read_labelled,
)
from scenario_forge.records import Message  # noqa: E402

DEFAULT = ROOT / "labelled" / "refusals.jsonl"
HONEST = ("decline_false_premise", "decline_harmful_step")


def _ratio(a: int, b: int) -> float | None:
    return round(a / b, 4) if b else None


def per_class(gold: list[str], predicted: list[str | None]) -> dict:
    """Per-class precision/recall, the confusion matrix (gold -> predicted counts) and accuracy.
    An unknown prediction (None, a judge that gave no class) counts as wrong and predicts no class.

    >>> r = per_class(["refusal", "engaged", "engaged"], ["refusal", "refusal", "engaged"])
    >>> r["classes"]["refusal"]["precision"], r["classes"]["refusal"]["recall"], r["accuracy"]
    (0.5, 1.0, 0.6667)
    """
    out: dict = {"n": len(gold), "classes": {}}
    for c in CLASSES:
        tp = sum(g == c and p == c for g, p in zip(gold, predicted))
        n_gold = sum(g == c for g in gold)
        n_pred = sum(p == c for p in predicted)
        out["classes"][c] = {"gold": n_gold, "predicted": n_pred, "correct": tp,
                             "precision": _ratio(tp, n_pred), "recall": _ratio(tp, n_gold)}
    out["confusion"] = {g: {p or "unknown": n for (gg, p), n in sorted(Counter(zip(gold, predicted)).items(), key=str) if gg == g}
                        for g in CLASSES}
    out["unknown"] = sum(p is None for p in predicted)
    out["accuracy"] = _ratio(sum(g == p for g, p in zip(gold, predicted)), len(gold))
    return out


def refused_decision(gold: list[str], refused: list[bool]) -> dict:
    """Precision/recall of a refused/not-refused decision against the gold ``refusal`` class, and how
    many honest declines it counts as refusals."""
    tp = sum(g == "refusal" and r for g, r in zip(gold, refused))
    return {
        "refused": sum(refused),
        "precision": _ratio(tp, sum(refused)),
        "recall": _ratio(tp, sum(g == "refusal" for g in gold)),
        "honest_declines_counted_as_refusals": sum(r and g in HONEST for g, r in zip(gold, refused)),
        "honest_declines": sum(g in HONEST for g in gold),
    }


def measure(path: Path, judge: str | None = None) -> dict:
    rows = read_labelled(path)
    gold = [r.label for r in rows]
    start = time.perf_counter()
    pattern = [classify(r.answer) for r in rows]
    pattern_s = time.perf_counter() - start
    figures = {
        "file": str(path),
        "rows": len(rows),
        "checked_twice": sum(r.checked == 2 for r in rows),
        "domains": dict(sorted(Counter(r.domain for r in rows).items())),
        "pattern": per_class(gold, pattern),
        "pattern_ms_per_answer": round(1000 * pattern_s / max(1, len(rows)), 4),
        "refused": {
            "pattern_classes": refused_decision(gold, [p == "refusal" for p in pattern]),
            "old_opening_detector": refused_decision(gold, [opens_with_decline(r.answer) for r in rows]),
        },
        "misclassified": [{"id": r.id, "gold": r.label, "pattern": p} for r, p in zip(rows, pattern) if p != r.label],
    }
    if judge is not None:
        from scenario_forge.backends.factory import get_backend
        from scenario_forge.modelspec import model_backend_config

        cfg = model_backend_config(judge)
        start = time.perf_counter()
        classes = classify_refusals([([Message(role="user", content=r.question)], r.answer) for r in rows], "judge", get_backend(cfg))
        figures["judge"] = {"model": judge, "wall_s": round(time.perf_counter() - start, 2), **per_class(gold, classes)}
        figures["refused"]["judge"] = refused_decision(gold, [c == "refusal" for c in classes])
    return figures


def _f(x: float | None) -> str:
    return "-" if x is None else f"{x:.2f}"


def report(figures: dict) -> str:
    lines = [f"refusal classes on {figures['file']}: {figures['rows']} hand-labelled answers "
             f"({figures['checked_twice']} checked twice), {len(figures['domains'])} domains"]
    for name in ("pattern", "judge"):
        if name not in figures:
            continue
        f = figures[name]
        title = "pattern classifier" if name == "pattern" else f"judge classifier ({f['model']}, {f['wall_s']} s)"
        lines += ["", f"{title}: accuracy {_f(f['accuracy'])}" + (f", {f['unknown']} unknown" if f["unknown"] else ""),
                  f"  {'class':<22} {'gold':>5} {'pred':>5} {'precision':>10} {'recall':>7}"]
        for c, e in f["classes"].items():
            lines.append(f"  {c:<22} {e['gold']:>5} {e['predicted']:>5} {_f(e['precision']):>10} {_f(e['recall']):>7}")
        lines.append("  confusion (gold -> predicted): " + "; ".join(
            f"{g}: " + ", ".join(f"{p} {n}" for p, n in row.items()) for g, row in f["confusion"].items()))
    lines += ["", "refused (what the refusal-controlled score leaves out), against the gold 'refusal' class:"]
    for name, e in figures["refused"].items():
        lines.append(f"  {name:<22} refused {e['refused']:>3}  precision {_f(e['precision'])}  recall {_f(e['recall'])}  "
                     f"honest declines counted as refusals {e['honest_declines_counted_as_refusals']}/{e['honest_declines']}")
    lines.append(f"\npattern classifier: {figures['pattern_ms_per_answer']} ms per answer")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--file", type=Path, default=DEFAULT)
    parser.add_argument("--quick", action="store_true", help="pattern classifier only (no model); what the tests run")
    parser.add_argument("--judge", default=None, help="also measure the judge classifier with this model spec (e.g. embedded)")
    parser.add_argument("--json", type=Path, default=None, help="write the figures here")
    args = parser.parse_args(argv)
    figures = measure(args.file, None if args.quick else args.judge)
    print(report(figures))
    if args.json is not None:
        args.json.write_text(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
