"""The distilabel backend against the embedded backend: completion tokens/s on the same model and the
same requests, side by side in one run.

The requests are the generate pipeline's own (recorded from a run on the fake backend, which answers
every prompt in milliseconds, then sampled evenly over its stages: briefs, dialogue turns, rubric
lines). Both backends load the same GGUF file, the embedded backend's F16 re-encoding of the packaged
SmolLM2-135M-Instruct:

1. ``embedded``: our llama.cpp binding, the whole batch in one call (``--parallel`` sequences decoded
   together);
2. ``distilabel``: ``--backend distilabel --llm LlamaCppLLM`` on that file (distilabel 1.5.3's
   ``LlamaCppLLM.generate`` calls ``create_chat_completion`` one input at a time).

The embedded backend runs again after distilabel, so a change in machine load between the runs shows.
Completion tokens/s = completion tokens / wall seconds of the ``generate`` call (model loads excluded).

    .venv/bin/python benchmarks/bench_distilabel.py            # 24 requests, their own max_tokens (minutes)
    .venv/bin/python benchmarks/bench_distilabel.py --quick    # 6 requests, at most 32 new tokens

Quick-size target (``tests/test_benchmarks_quick.py`` runs it): both backends answer every request
with token counts (no failed generation, completion tokens > 0 on each), i.e. the distilabel path
works end to end through our interface; the ratio is printed, not enforced (there is no speed target
for a sequential runtime against a batched one). The script exits 1 when the target is missed.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("DISTILABEL_CACHE_DIR", str(Path(tempfile.gettempdir()) / "scenario-forge-bench-distilabel"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_backends import Rate, RecordingBackend, _timed, sample_requests

from scenario_forge.backends.base import ChatRequest
from scenario_forge.backends.factory import make_backend, use_backend
from scenario_forge.config import BackendConfig, GenerateConfig
from scenario_forge.generation.run import run_generate_direct


def recorded_requests(n: int, k: int, max_tokens: int | None, out: Path) -> list[ChatRequest]:
    """``k`` of the requests a real ``generate --n n`` sends, sampled evenly over its stages."""
    cfg = GenerateConfig(n=n, seed=0, out=out, backend=BackendConfig(kind="fake"), curate=False)
    recorder = RecordingBackend(make_backend(cfg.backend))
    with use_backend(cfg.backend, recorder):
        run_generate_direct(cfg)
    requests = sample_requests(recorder.log, k)
    if max_tokens is not None:
        requests = [
            r.model_copy(update={"sampling": r.sampling.model_copy(update={"max_tokens": min(r.sampling.max_tokens, max_tokens)})})
            for r in requests
        ]
    return requests


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="6 requests, at most 32 new tokens each")
    parser.add_argument("--requests", type=int, default=24)
    parser.add_argument("--parallel", type=int, default=32, help="the embedded backend's sequences per batch")
    parser.add_argument("--json", type=Path, help="write the figures here")
    args = parser.parse_args(argv)
    k, max_tokens = (6, 32) if args.quick else (args.requests, None)

    from scenario_forge.backends.embedded import converted_gguf, embedded_model_path

    model = converted_gguf(embedded_model_path(), "f16")
    threads = os.cpu_count() or 1
    with tempfile.TemporaryDirectory() as tmp:
        requests = recorded_requests(max(4, k // 4), k, max_tokens, Path(tmp))
    print(f"== distilabel vs embedded: the same {len(requests)} pipeline requests, model {model.name}, "
          f"{threads} threads, load average {os.getloadavg()[0]:.1f} ==")

    embedded = make_backend(BackendConfig(kind="embedded", parallel_sequences=args.parallel, n_threads=threads))
    distilabel = make_backend(BackendConfig(
        kind="distilabel", llm="LlamaCppLLM",
        llm_kwargs={"model_path": str(model), "n_ctx": 2048, "n_gpu_layers": 0, "extra_kwargs": {"n_threads": threads}},
    ))
    rates: list[Rate] = [
        _timed(f"embedded backend (batched, parallel {args.parallel}, one call)", lambda: embedded.generate(requests)),
        _timed("distilabel backend (LlamaCppLLM)", lambda: distilabel.generate(requests)),
        _timed("embedded backend again (load check)", lambda: embedded.generate(requests)),
    ]
    embedded.close()
    distilabel.close()
    for rate in rates:
        print(rate.line())
    ours = (rates[0].tok_s + rates[2].tok_s) / 2
    ratio = rates[1].tok_s / ours if ours else float("nan")
    print(f"  {'distilabel / embedded (mean of the two embedded runs)':<58} {ratio:>6.2f}")

    failed = [r.label for r in rates if "failed]" in r.label or r.completion_tokens <= 0]
    ok = not failed
    size = "quick-size " if args.quick else ""
    print(f"{size}target: every request answered with token counts on both backends -> {'PASS' if ok else 'FAIL: ' + ', '.join(failed)}")
    figures: dict[str, Any] = {
        "requests": len(requests),
        "model": model.name,
        "load_average": os.getloadavg()[0],
        "tok_s": {r.label: round(r.tok_s, 2) for r in rates},
        "completion_tokens": {r.label: r.completion_tokens for r in rates},
        "distilabel_over_embedded": round(ratio, 3),
        "pass": ok,
    }
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
