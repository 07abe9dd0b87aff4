"""Lint on the hand-labelled scenario set: per-detector precision and recall, overall figures, speed.

    .venv/bin/python benchmarks/bench_lint.py            # full: timing on ~20,000 rows
    .venv/bin/python benchmarks/bench_lint.py --quick    # timing on ~2,000 rows (tests use it)

Reads ``labelled/lint_scenarios.jsonl`` (rows with ``id``, ``messages``, ``rubric``, optional
``flaw`` / ``flawed_turn_index`` / ``shape``, and a hand-written ``label``:
``{"usable": bool, "reasons": [codes]}``). A detector's hit counts as correct when the row's gold
reasons contain that code. Prints:

* per detector (reason code): gold rows, hits, precision and recall;
* recall on unusable rows (an unusable row flagged with any reason) and the false-rejection rate
  on usable rows (a usable row flagged with any reason);
* scenarios per second on one core: the rows replicated to ``--rows`` and linted in a loop,
  timed in CPU seconds of this process (``time.process_time``, best of 3 passes) so that other
  processes sharing the machine do not count; rows already parsed (the time of
  :func:`scenario_forge.lint.lint_scenario` alone, called as ``scenario-forge lint`` calls it), and
  the same with JSONL parsing and row checks. ``scenario-forge lint`` runs the detectors compiled by
  mypyc when ``scripts/build_native_lint.py`` built them from the current source
  (:mod:`scenario_forge.lint.native`); the Python source is timed beside them, passes alternating,
  and the ratio printed. The target is checked on what the command runs.

Targets: recall >= 0.95 on unusable rows, false rejection <= 5% of usable rows, >= 10,000
scenarios/s (``--speed-target``). The exit status is the target check: 1 when one is missed.
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

from scenario_forge.cli.lint import lint_row  # the command's own call: flaw, shape, domain and trait as read
from scenario_forge.lint import REASONS
from scenario_forge.lint.native import native_scenario
from scenario_forge.lint.read import Row, check_row
from scenario_forge.lint.scenario import lint_scenario as python_lint_scenario

DEFAULT = ROOT / "labelled" / "lint_scenarios.jsonl"
TARGET_RECALL, TARGET_FALSE_REJECTION, TARGET_PER_S = 0.95, 0.05, 10_000


def load(path: Path) -> list[tuple[Row, dict, str]]:
    """``(row, gold label, source)`` for every line of the labelled file."""
    out = []
    with path.open(encoding="utf-8") as fh:
        for number, line in enumerate(fh, start=1):
            if line.strip():
                data = json.loads(line)
                out.append((check_row(data, str(path), number), data["label"], data.get("source", "hand")))
    return out


def _ratio(a: int, b: int) -> float | None:
    return round(a / b, 4) if b else None


def quality(items: list[tuple[Row, dict, str]]) -> dict:
    per_code = {code: Counter() for code in REASONS}
    usable = unusable = caught = false_rejected = 0
    misses: list[dict] = []
    for row, label, source in items:
        result = lint_row(row)
        gold = set(label["reasons"])
        predicted = set(result.reasons)
        for code in REASONS:
            if code in gold:
                per_code[code]["gold"] += 1
            if code in predicted:
                per_code[code]["hits"] += 1
                per_code[code]["tp" if code in gold else "fp"] += 1
        if label["usable"]:
            usable += 1
            if not result.usable:
                false_rejected += 1
                misses.append({"id": row.id, "kind": "false_rejection", "found": sorted(predicted),
                               "detail": [f.detail for f in result.findings][:3], "source": source})
        else:
            unusable += 1
            if not result.usable:
                caught += 1
            else:
                misses.append({"id": row.id, "kind": "missed", "gold": sorted(gold), "source": source})
        for code in sorted(gold - predicted):
            if not label["usable"] and not result.usable:
                misses.append({"id": row.id, "kind": "code_missed", "code": code, "found": sorted(predicted)})
        for code in sorted(predicted - gold):
            if not label["usable"]:
                misses.append({"id": row.id, "kind": "code_extra", "code": code, "gold": sorted(gold)})
    detectors = {
        code: {"gold": c["gold"], "hits": c["hits"], "precision": _ratio(c["tp"], c["hits"]), "recall": _ratio(c["tp"], c["gold"])}
        for code, c in per_code.items()
    }
    return {
        "rows": len(items), "usable": usable, "unusable": unusable,
        "recall_unusable": _ratio(caught, unusable), "false_rejection": _ratio(false_rejected, usable),
        "detectors": detectors, "misses": misses,
    }


def _python_row(row: Row):
    """:func:`lint_row` on the Python source of the detectors, whether or not a compiled copy is built."""
    return python_lint_scenario(
        row.id, row.messages, row.rubric, flaw=row.flaw, flawed_turn_index=row.flawed_turn_index,
        shape=row.shape, trait=row.trait, domain=row.domain,
    )


def _best_rates(work, steps: dict, repeats: int) -> dict[str, int]:
    """Rows per CPU second of the fastest of ``repeats`` passes of each step, the steps' passes
    alternating (CPU time of this process: one core, not counting the time other processes hold it)."""
    best = dict.fromkeys(steps, float("inf"))
    for _ in range(repeats):
        for name, step in steps.items():
            start = time.process_time()
            for item in work:
                step(item)
            best[name] = min(best[name], time.process_time() - start)
    return {name: round(len(work) / max(t, 1e-9)) for name, t in best.items()}


def speed(items: list[tuple[Row, dict, str]], path: Path, rows: int, repeats: int = 3) -> dict:
    base = [row for row, _, _ in items]
    work = (base * ((rows + len(base) - 1) // len(base)))[:rows]
    lines = [line for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    raw = (lines * ((rows + len(lines) - 1) // len(lines)))[:rows]
    compiled = native_scenario() is not None
    steps = {"lint_per_s": lint_row, **({"python_per_s": _python_row} if compiled else {})}
    rates = _best_rates(work, steps, repeats)
    rates |= _best_rates(raw, {"with_parsing_per_s": lambda line: lint_row(check_row(json.loads(line), "bench", 1))}, repeats)
    return {
        "rows": rows,
        "repeats": repeats,
        "detectors": "compiled" if compiled else "python",
        **rates,
        "compiled_over_python": round(rates["lint_per_s"] / rates["python_per_s"], 2) if compiled else None,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--path", type=Path, default=DEFAULT, help="labelled JSONL (default: labelled/lint_scenarios.jsonl)")
    parser.add_argument("--quick", action="store_true", help="time on ~2,000 rows instead of ~20,000")
    parser.add_argument("--rows", type=int, default=None, help="rows to time (default 20,000; 2,000 with --quick)")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures to this JSON file")
    parser.add_argument("--misses", action="store_true", help="list every miss and false rejection")
    parser.add_argument("--speed-target", type=int, default=TARGET_PER_S,
                        help=f"scenarios/s the exit status checks (default {TARGET_PER_S:,}; a test on a busy machine lowers it)")
    args = parser.parse_args(argv)
    if not args.path.is_file():
        print(f"error: labelled set not found: {args.path}", file=sys.stderr)
        return 2
    items = load(args.path)
    if not items:
        print(f"error: {args.path}: no rows", file=sys.stderr)
        return 2
    figures = quality(items)
    figures["speed"] = speed(items, args.path, args.rows or (2_000 if args.quick else 20_000))
    sources = Counter(source for _, _, source in items)
    print(f"labelled set: {args.path.name}: {figures['rows']} rows ({figures['usable']} usable, {figures['unusable']} unusable; "
          + ", ".join(f"{n} {s}" for s, n in sorted(sources.items())) + ")")
    print()
    print(f"{'detector':30} {'gold':>5} {'hits':>5} {'precision':>10} {'recall':>7}")
    for code, d in figures["detectors"].items():
        p = "-" if d["precision"] is None else f"{d['precision']:.2f}"
        r = "-" if d["recall"] is None else f"{d['recall']:.2f}"
        print(f"{code:30} {d['gold']:>5} {d['hits']:>5} {p:>10} {r:>7}")
    print()
    recall, false_rejection, per_s = figures["recall_unusable"], figures["false_rejection"], figures["speed"]["lint_per_s"]
    print(f"recall on unusable rows: {recall} (target >= {TARGET_RECALL})")
    print(f"false rejection of usable rows: {false_rejection} (target <= {TARGET_FALSE_REJECTION})")
    sp = figures["speed"]
    runs = (f"compiled detectors; the Python source {sp['python_per_s']:,}/s, {sp['compiled_over_python']}x"
            if sp["detectors"] == "compiled" else "the Python source: no compiled detectors built (scripts/build_native_lint.py)")
    print(f"speed, one core: {per_s:,} scenarios/s linted ({runs}), {sp['with_parsing_per_s']:,}/s with JSONL parsing "
          f"({sp['rows']:,} rows, CPU time, best of {sp['repeats']}; target >= {args.speed_target:,})")
    met = {
        "recall": recall is not None and recall >= TARGET_RECALL,
        "false_rejection": false_rejection is not None and false_rejection <= TARGET_FALSE_REJECTION,
        "speed": per_s >= args.speed_target,
    }
    figures["targets_met"] = met
    missed = [k for k, ok in met.items() if not ok]
    print("targets met" if not missed else "targets missed: " + ", ".join(missed))
    if args.misses:
        print()
        for miss in figures["misses"]:
            print(json.dumps(miss))
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
