"""Fleet scale by simulation: does the pipeline keep a batching server full, and what does it cost us?

A simulated vLLM-on-H100 server (``python -m scenario_forge.simulate``, its own process so its CPU
is not ours) answers the real ``generate`` pipeline through the real ``--backend openai`` path.
Its replies take as long as the throughput curve says (``--curve``; the shipped curves are models,
not measurements: see each file's ``source``), each reply counting ``--reply-tokens`` output
tokens. Printed, from one run:

(a) achieved fraction of the server's capacity: output tokens the server decoded / (pipeline wall
    x the curve's rate at ``--concurrency`` in flight), target >= 0.9; the server's mean sequences
    in flight; kept scenarios per hour.
(c) client-side CPU seconds (user + system of this process: planning, prompts, HTTP, validation,
    parquet) per 1,000 planned scenarios, and so how many such servers one client core could feed.

Every figure counts what the pipeline really kept (the simulated text is the fake backend's answer
to our prompts, which passes the stages' checks), and the tokens the server decoded.

Not measured here: (b) 4 servers behind the Dask shard runner. The openai backend takes one base
URL per run; spreading shards over several servers needs a per-shard URL or a load balancer.

    .venv/bin/python benchmarks/bench_fleet.py                  # N=2000 (10,000 with --n 10000)
    .venv/bin/python benchmarks/bench_fleet.py --quick          # N=64, a fast curve (tests/test_simulate.py)

``--quick`` exits 1 only if a figure is not finite and positive or nothing was kept; the full-size
capacity target is printed, not enforced. Figures measured while other processes load the
machine's 2 cores are rough: the server and the client share them.
"""

from __future__ import annotations

import argparse
import math
import os
import resource
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from scenario_forge.config import BackendConfig, GenerateConfig
from scenario_forge.generation.run import run_generate_direct

TARGET = 0.9


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def start_server(curve: str, concurrency: int, reply_tokens: int) -> tuple[subprocess.Popen[str], str]:
    port = free_port()
    cmd = [sys.executable, "-m", "scenario_forge.simulate", "--curve", curve, "--concurrency", str(concurrency),
           "--port", str(port), "--reply-tokens", str(reply_tokens)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line.startswith("serving"):
        proc.kill()
        raise SystemExit(f"error: the simulated server did not start: {line.strip()} {proc.stderr.read().strip() if proc.stderr else ''}")
    return proc, f"http://127.0.0.1:{port}"


def cpu_s() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def run_one(root: str, args: argparse.Namespace, out: Path) -> dict[str, Any]:
    cfg = BackendConfig(kind="openai", base_url=f"{root}/v1", concurrency=args.concurrency, timeout_s=600)
    gen = GenerateConfig(n=args.n, seed=args.seed, out=out, backend=cfg, curate=False,
                         shard_size=args.shard_size, shard_workers=args.shard_workers)
    httpx.post(f"{root}/stats/reset")
    c0, t0 = cpu_s(), time.perf_counter()
    manifest = run_generate_direct(gen)
    wall, cpu = time.perf_counter() - t0, cpu_s() - c0
    stats: dict[str, Any] = httpx.get(f"{root}/stats").json()
    return {"wall": wall, "cpu": cpu, "kept": manifest.counts.kept, "planned": manifest.counts.planned, "server": stats,
            "timings": manifest.timings}


def _ok(*values: float) -> bool:
    return all(math.isfinite(v) and v > 0 for v in values)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=2000, help="scenarios (the issue's full size: 10000)")
    ap.add_argument("--curve", default="vllm-h100-smollm2-135m", help="a shipped curve name or a curve JSON file")
    ap.add_argument("--concurrency", type=int, default=256, help="server cap and client requests in flight")
    ap.add_argument("--reply-tokens", type=int, default=120,
                    help="simulated output tokens per reply (the embedded model: 4639 decoded over 38 requests in "
                    "bench_floor.py --quick, ~122)")
    ap.add_argument("--shard-size", type=int, default=256)
    ap.add_argument("--shard-workers", type=int, default=4)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--quick", action="store_true", help="N=64, small shards")
    args = ap.parse_args(argv)
    if args.quick:
        args.n, args.shard_size, args.shard_workers, args.concurrency = 64, 16, 4, 64
    proc, root = start_server(args.curve, args.concurrency, args.reply_tokens)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            r = run_one(root, args, Path(tmp) / "out")
    finally:
        proc.terminate()
        proc.wait(10)
    s = r["server"]
    capacity = s["capacity_tok_s"]
    frac = s["completion_tokens"] / (r["wall"] * capacity)
    per_hour = r["kept"] / r["wall"] * 3600
    cpu_per_k = r["cpu"] / r["planned"] * 1000
    server_s_per_k = s["completion_tokens"] / capacity / r["planned"] * 1000  # at full capacity
    print(f"curve {s['curve']} ({capacity:.0f} output tok/s at {args.concurrency} in flight); N={r['planned']}, "
          f"shards of {args.shard_size} x {args.shard_workers} workers; {args.reply_tokens} tokens a reply; "
          f"load average {os.getloadavg()[0]:.1f}")
    print(f"  wall {r['wall']:.1f} s; kept {r['kept']}/{r['planned']}; server: {s['requests']} requests, "
          f"{s['completion_tokens']} output tokens, mean in flight {s['completion_tokens'] and s['mean_in_flight']:.1f} "
          f"(peak {s['peak_in_flight']}, peak queued {s['peak_queued']})")
    print(f"  manifest timings: {', '.join(f'{k} {v:.1f}' for k, v in r['timings'].items())}")
    print(f"(a) capacity used: {s['completion_tokens']} / ({r['wall']:.1f} s x {capacity:.0f} tok/s) = {frac:.3f} "
          f"(target >= {TARGET}{'' if args.quick else ', ' + ('met' if frac >= TARGET else 'missed')}); "
          f"{per_hour:,.0f} kept scenarios/hour")
    print(f"(c) client CPU: {r['cpu']:.1f} s = {cpu_per_k:.1f} CPU-s per 1,000 scenarios; the server needs "
          f"{server_s_per_k:.1f} s per 1,000 at full capacity, so one client core feeds at most "
          f"{server_s_per_k / cpu_per_k:.2f} such servers")
    if r["kept"] < 1 or not _ok(r["wall"], r["cpu"], frac, per_hour, cpu_per_k):
        print("error: nothing kept, or a figure is not finite and positive", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
