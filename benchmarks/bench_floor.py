"""How far is generation from the embedded model's floor? Raw rates and the pipeline, side by side.

In one run, on the same model file, the same threads and the same machine load:

1. The pipeline: ``generate`` (no curation) at ``--n`` scenarios on the embedded backend, timed
   wall to wall. The backend's decode loop counts what it did (``SchedulerStats``): prompt tokens,
   prompt tokens served from a cached prefix (not prefilled again), tokens decoded.
2. Raw llama.cpp through the same bindings the backend uses (:class:`LlamaEngine`, no scheduler,
   no pipeline): prefill rate (``B`` prompts of the pipeline's mean prompt length, ``n_batch``-token
   chunks, logits only at each prompt's end) and decode rate (``B`` sequences, one token each per
   ``llama_decode``, greedy sampling of every token) at the batch size the pipeline uses
   (``--parallel``, default 32 as in ``BackendConfig``) and at smaller batches for context.
3. The floor for the pipeline's exact token counts: prefilled tokens / raw prefill rate + decoded
   tokens / raw decode rate at the pipeline's batch size. A pipeline that keeps every batch full and
   does nothing but decode would take the floor; the printed ratio is pipeline wall / floor
   (issue 18 target: <= 1.5). A second floor counts every prompt token (no prefix reuse) for context.

The floor is optimistic for a pipeline that cannot keep ``B`` sequences decoding: with continuous
scheduling (each scenario's next request goes out as soon as its previous one returns) the batch
drains only at the run's end and when fewer scenarios than ``B`` are in flight; below ``B`` the
aggregate rate is lower. That shortfall is exactly what the ratio measures. It is not a strict lower bound either: the scheduler mixes prompt tokens into
decode batches (cheaper than two separate phases), and the raw rates are measured after the pipeline,
under the machine's load at that time, so a ratio slightly below 1 is possible on a shared machine.

    .venv/bin/python benchmarks/bench_floor.py              # N=20, the main job's size (~7-10 min on 2 loaded cores)
    .venv/bin/python benchmarks/bench_floor.py --quick      # N=1, short raw runs (tests/test_simulate.py runs it)

``--quick`` checks only that every figure is finite and positive (exit 1 otherwise), not the target.
Figures measured while other processes load the cores are rough.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from scenario_forge.backends.embedded import converted_gguf, embedded_model_path
from scenario_forge.backends.factory import make_backend, use_backend
from scenario_forge.backends.llama_engine import BatchEntry, LlamaEngine
from scenario_forge.backends.llama_scheduler import occupancy
from scenario_forge.backends.llamacpp import LlamaCppBackend
from scenario_forge.config import BackendConfig, GenerateConfig, SamplingParams
from scenario_forge.generation.run import run_generate_direct

TARGET = 1.5


@dataclass
class PipelineRun:
    n: int
    kept: int
    wall_s: float
    prompt_tokens: int
    prompt_tokens_reused: int
    tokens_decoded: int
    requests_per_call_peak: int
    requests: int
    #: decode-batch occupancy (``llama_scheduler.occupancy``): per_step, decode_time, wall
    occupancy: dict[str, float]


def run_pipeline(n: int, parallel: int, out: Path) -> PipelineRun:
    cfg = BackendConfig(kind="embedded", parallel_sequences=parallel)
    backend = make_backend(cfg)
    if not isinstance(backend, LlamaCppBackend):  # pragma: no cover - the embedded kind is a LlamaCppBackend
        raise SystemExit(f"error: the embedded backend is a {type(backend).__name__}, not LlamaCppBackend")
    gen = GenerateConfig(n=n, seed=7, out=out, backend=cfg, curate=False)
    with use_backend(cfg, backend):
        backend.stats.reset()
        start = time.perf_counter()
        manifest = run_generate_direct(gen)
        wall = time.perf_counter() - start
    stats = backend.stats
    run = PipelineRun(
        n=n, kept=manifest.counts.kept, wall_s=wall, prompt_tokens=stats.prompt_tokens,
        prompt_tokens_reused=stats.prompt_tokens_reused, tokens_decoded=stats.tokens_decoded,
        requests_per_call_peak=stats.peak_active,
        requests=sum(int(u.get("requests", 0)) for u in manifest.usage.values()),
        occupancy=occupancy(stats, parallel, wall),
    )
    backend.close()
    return run


def _prompt(engine: LlamaEngine, length: int, salt: int) -> list[int]:
    """``length`` tokens of ordinary English (distinct per sequence, so nothing could be shared)."""
    words = f"case {salt}: the user asks the assistant about a delicate decision and wants a firm answer. "
    tokens: list[int] = []
    while len(tokens) < length:
        tokens += engine.tokenize(words * 8)
    return tokens[:length]


def raw_rates(path: Path, batch: int, prompt_len: int, decode_steps: int, n_threads: int | None) -> tuple[float, float]:
    """(prefill tokens/s, decode tokens/s) of ``batch`` sequences on a fresh context."""
    engine = LlamaEngine(path, n_seq=batch, n_ctx_per_seq=prompt_len + decode_steps + 8, n_batch=512, n_threads=n_threads)
    try:
        prompts = [_prompt(engine, prompt_len, s) for s in range(batch)]
        # every prompt but its last token in n_batch chunks, then the last tokens of all B prompts in
        # one batch with logits (so each sequence's logits sit at its index in that batch)
        entries = [BatchEntry(s, tok, pos, False) for s, p in enumerate(prompts) for pos, tok in enumerate(p[:-1])]
        sampling = SamplingParams(temperature=0.0)
        samplers = [engine.new_sampler(sampling, s) for s in range(batch)]
        try:
            start = time.perf_counter()
            for i in range(0, len(entries), engine.n_batch):
                engine.decode(entries[i : i + engine.n_batch])
            engine.decode([BatchEntry(s, prompts[s][-1], prompt_len - 1, True) for s in range(batch)])
            prefill = batch * prompt_len / (time.perf_counter() - start)
            last = [engine.sample(samplers[s], s) for s in range(batch)]
            start = time.perf_counter()
            for k in range(decode_steps):
                engine.decode([BatchEntry(s, last[s], prompt_len + k, True) for s in range(batch)])
                last = [engine.sample(samplers[s], s) for s in range(batch)]
            decode = batch * decode_steps / (time.perf_counter() - start)
        finally:
            for sampler in samplers:
                engine.free_sampler(sampler)
        return prefill, decode
    finally:
        engine.close()


def _ok(*values: float) -> bool:
    return all(math.isfinite(v) and v > 0 for v in values)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=20, help="scenarios in the pipeline run (the main job: 20)")
    ap.add_argument("--parallel", type=int, default=BackendConfig().parallel_sequences, help="the pipeline's batch size")
    ap.add_argument("--decode-steps", type=int, default=32, help="decode steps per raw measurement")
    ap.add_argument("--quick", action="store_true", help="N=1, short raw runs; checks figures are finite and positive")
    args = ap.parse_args(argv)
    if args.quick:
        args.n, args.decode_steps = 1, 8
    if args.n < 1 or args.parallel < 1 or args.decode_steps < 1:
        print("error: --n, --parallel and --decode-steps must be at least 1", file=sys.stderr)
        return 2
    path = converted_gguf(embedded_model_path(), "f16")
    print(f"model: {path.name}; pipeline batch size (parallel sequences): {args.parallel}; load average {os.getloadavg()[0]:.1f}")

    with tempfile.TemporaryDirectory() as tmp:
        pipe = run_pipeline(args.n, args.parallel, Path(tmp) / "run")
    prefilled = pipe.prompt_tokens - pipe.prompt_tokens_reused
    print(f"\n== pipeline: generate N={pipe.n} (no curation), embedded backend ==")
    print(f"  wall {pipe.wall_s:.1f} s, kept {pipe.kept}; prompt tokens {pipe.prompt_tokens} "
          f"({pipe.prompt_tokens_reused} from cached prefixes, {prefilled} prefilled); decoded {pipe.tokens_decoded}; "
          f"{pipe.requests} requests; peak sequences in flight {pipe.requests_per_call_peak}")
    occ = pipe.occupancy
    print(f"  decode-batch occupancy (active sequences / {args.parallel} slots): mean {occ.get('per_step', 0):.1%} per "
          f"decode step, {occ.get('decode_time', 0):.1%} weighted by step time, {occ.get('wall', 0):.1%} over the wall "
          "time (time with no decode step counts as empty)")

    # the pipeline's mean prompt length, capped so B prompts fit a context comfortably on CPU
    prompt_len = int(min(512, max(32, pipe.prompt_tokens // max(1, pipe.requests))))
    batches = sorted({1, 8, args.parallel} if not args.quick else {args.parallel})
    print(f"\n== raw llama.cpp (LlamaEngine, same bindings, no pipeline): prompt {prompt_len} tokens, "
          f"{args.decode_steps} decode steps ==")
    rates: dict[int, tuple[float, float]] = {}
    for b in batches:
        rates[b] = raw_rates(path, b, prompt_len, args.decode_steps, None)
        print(f"  batch {b:3d}: prefill {rates[b][0]:8.0f} tok/s   decode {rates[b][1]:7.1f} tok/s")
    prefill_rate, decode_rate = rates[args.parallel]
    floor = prefilled / prefill_rate + pipe.tokens_decoded / decode_rate
    floor_no_reuse = pipe.prompt_tokens / prefill_rate + pipe.tokens_decoded / decode_rate
    ratio = pipe.wall_s / floor if floor > 0 else float("nan")
    print(f"\n== floor at batch {args.parallel} for the pipeline's token counts ==")
    print(f"  floor: {prefilled} / {prefill_rate:.0f} + {pipe.tokens_decoded} / {decode_rate:.1f} = {floor:.1f} s "
          f"(every prompt token prefilled: {floor_no_reuse:.1f} s)")
    print(f"  pipeline wall / floor = {pipe.wall_s:.1f} / {floor:.1f} = {ratio:.2f}x  (target <= {TARGET}x"
          f"{'' if args.quick else ', ' + ('met' if ratio <= TARGET else 'missed')})")
    if not _ok(pipe.wall_s, floor, ratio, prefill_rate, decode_rate):
        print("error: a figure is not finite and positive", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
