"""Rubric grading throughput: criteria/s when every (answer, criterion) pair of a call goes to the
judge in one batch (what ``RubricGrader`` does) vs one request at a time, side by side in one run.

The judge is the embedded SmolLM2-135M (llama.cpp, ``parallel_sequences`` decoded together); the
items are calibration items (the shipped ``labelled/judge_calibration.jsonl`` when it exists, else
the test fixture), one criterion each. Both sides send the same number of requests of the same
kind (no retries, so the count is fixed), in the verdict form the embedded judge uses by default unless ``--output``
says otherwise. The backend keeps finished prompts in its KV cache and reuses shared prefixes, so
the two sides grade *different* items (alternate rows of the file: similar lengths), else the
second side would find every prompt already computed; a warm-up item from neither side loads the
model and caches the shared system prompt for both.

Usage: ``python benchmarks/bench_grading.py [--quick] [--items N] [--output FORM] [--items-file F]``.
``--quick`` grades 16 criteria a side (the test suite runs it). The issue sets no speed target: the
script reports both rates and their ratio. Measured on an idle 2-core machine, batching is *slower*
on the embedded llama.cpp judge for one-word verdicts (0.69x at 64 a side: prompt-bound requests)
and slightly faster for explanations (1.15x at 16 a side); see the README. A real finding, not
hidden behind a target chosen to pass.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "src"))



def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="16 criteria (the test suite runs this)")
    parser.add_argument("--items", type=int, default=64, help="criteria to grade on each side (default 64)")
    parser.add_argument("--items-file", type=Path, default=None, help="calibration JSONL (default: shipped set, else fixture)")
    parser.add_argument("--output", default="auto", help="verdict form: auto, json, explain, short")
    parser.add_argument("--parallel", type=int, default=32, help="sequences decoded together (default 32)")
    args = parser.parse_args()

    from scenario_forge.backends.factory import get_backend
    from scenario_forge.config import BackendConfig
    from scenario_forge.grading import GradeItem, GradingConfig, RubricGrader
    from scenario_forge.grading.calibration import default_calibration_file, load_calibration
    from scenario_forge.records import Criterion

    path = args.items_file
    if path is None:
        try:
            path = default_calibration_file()
            path = path if path.is_file() else None
        except FileNotFoundError:
            path = None
        path = path or REPO / "tests" / "fixtures" / "judge_small.jsonl"
    items = load_calibration(path)
    n = 16 if args.quick else args.items
    n = min(n, (len(items) - 1) // 2)  # two disjoint sides and a warm-up item
    grade_items = [GradeItem(conversation=it.conversation, answer=it.answer,
                             rubric=[Criterion(criterion=it.criterion, points=it.points)]) for it in items]
    warm, side_b, side_s = grade_items[-1], grade_items[0:2 * n:2], grade_items[1:2 * n:2]
    backend = get_backend(BackendConfig(kind="embedded", parallel_sequences=args.parallel))
    config = GradingConfig(output=args.output, retries=0)
    RubricGrader(backend, config=config).grade([warm])  # warm-up: load, first decode, shared system prompt

    batched = RubricGrader(backend, config=config)
    start = time.perf_counter()
    batched_grades = batched.grade(side_b)
    batched_s = time.perf_counter() - start

    single = RubricGrader(backend, config=config)
    start = time.perf_counter()
    single_grades = [g for item in side_s for g in single.grade([item])]
    single_s = time.perf_counter() - start

    b_rate, s_rate = n / batched_s, n / single_s
    ratio = b_rate / s_rate
    print(f"rubric grading throughput: {n} criteria from {path.name}, embedded judge ({batched.form} verdicts), "
          f"parallel {args.parallel}, {os.cpu_count()} cores")
    print(f"batched      {b_rate:8.3f} criteria/s  ({batched_s:6.1f} s, {batched.usage.prompt_tokens} prompt + "
          f"{batched.usage.completion_tokens} new tokens, "
          f"{sum(g.score is None for g in batched_grades)} unscoreable)")
    print(f"one-at-a-time {s_rate:7.3f} criteria/s  ({single_s:6.1f} s, {single.usage.prompt_tokens} prompt + "
          f"{single.usage.completion_tokens} new tokens, "
          f"{sum(g.score is None for g in single_grades)} unscoreable)")
    print(f"ratio batched / one-at-a-time: {ratio:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
