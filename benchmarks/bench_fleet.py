"""Fleet scale by simulation: does the pipeline keep batching servers full, and what does it cost us?

Simulated vLLM-on-H100 servers (``python -m scenario_forge.simulate``, each its own process so its
CPU is not ours) answer the real ``generate`` pipeline through the real ``--backend openai`` path.
Their replies take as long as the throughput curve says (``--curve``; the shipped curves are
models, not measurements: see each file's ``source``), each reply counting ``--reply-tokens``
output tokens. Printed, from one run:

(a) one server, the direct runner, ``--n`` scenarios: achieved fraction of the server's capacity =
    output tokens decoded / (pipeline wall x the curve's rate at ``--concurrency`` in flight),
    target >= 0.9; the server's mean sequences in flight; kept scenarios per hour.
(b) ``--servers`` servers (one ``--base-url`` each; requests go to the least-loaded) behind the
    Dask shard runner (Prefect's DaskTaskRunner on a local cluster of ``--workers`` processes,
    ``--shard-workers`` shards at a time in each), against one server behind the same runner, at
    the same load per server (``--n-per-server`` scenarios each: weak scaling). Throughput is the
    servers' output tokens over their common active window (first request in to last reply out,
    read from the servers' own clocks: the cluster's and Prefect's start-up are outside it, and
    printed apart). Scaling efficiency = throughput(k servers) / (k x throughput(1 server)),
    target >= 0.85.
(c) client-side CPU at k servers: user + system seconds of this process and of the Dask worker
    processes (everything but the servers and Prefect's API server) per 1,000 planned scenarios,
    against the server-seconds 1,000 scenarios need at full capacity: their ratio is the client
    cores needed to keep one server full; times k, the cores needed at k servers.

Every figure counts what the pipeline really kept (the simulated text is the fake backend's
answer to our prompts, which passes the stages' checks) and the tokens the servers decoded.

    .venv/bin/python benchmarks/bench_fleet.py              # (a) N=2000, (b) 4 servers x 250 scenarios
    .venv/bin/python benchmarks/bench_fleet.py --quick      # (a) N=32, (b) 4 servers x 16, direct runner (test_benchmarks_quick.py)

Quick-size target (``--quick``, the direct runner: Prefect and a Dask cluster take minutes to
start on 2 loaded cores): scaling efficiency >= 0.3 (measured 0.53 and 0.44 at load average 13.6
and 15.1 on 2 cores, where the client gets a fraction of a core; at 16 scenarios a server, stage
boundaries and the last shard's tail weigh more than at full size; a router that sent everything to
one server would score about 0.25), kept > 0 and every figure finite and positive; the script exits 1 when a target of the size it ran at is missed (the
full-size (a) target is printed, not enforced: it depends on the machine's load). Figures measured
while other processes load the machine's 2 cores are rough: the servers, the workers and this
process share them.
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
from typing import Any, Final

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # flows/ when run from anywhere

from scenario_forge.config import BackendConfig, GenerateConfig  # noqa: E402
from scenario_forge.generation.run import run_generate_direct  # noqa: E402

#: The short path: the simulated servers answer with the fake backend's text, which knows the
#: short path's prompts (the capable path's fake replies are keyed on request ids, which HTTP
#: does not carry), and a server that enforces JSON schemas would otherwise pick the capable path.
PATH: Final = "short"
TARGET_A = 0.9
TARGET_B = 0.85
QUICK_TARGET_B = 0.3


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


def stop_servers(procs: list[subprocess.Popen[str]]) -> None:
    for proc in procs:
        proc.terminate()
    for proc in procs:
        proc.wait(10)


def cpu_s(who: int = resource.RUSAGE_SELF) -> float:
    r = resource.getrusage(who)
    return r.ru_utime + r.ru_stime


def _workers(args: argparse.Namespace) -> dict[str, int]:
    """``scenario_workers`` when given (left out otherwise, so the script also runs the code from
    before continuous scheduling, for a side-by-side figure: ``PYTHONPATH=OLD/src``)."""
    return {} if args.scenario_workers is None else {"scenario_workers": args.scenario_workers}


def run_a(args: argparse.Namespace, out: Path) -> dict[str, Any]:
    """(a): one server, the direct runner."""
    procs, roots = zip(*[start_server(args.curve, args.concurrency, args.reply_tokens)])
    try:
        root = roots[0]
        cfg = BackendConfig(kind="openai", base_url=f"{root}/v1", concurrency=args.concurrency, timeout_s=600)
        gen = GenerateConfig(n=args.n, seed=args.seed, out=out, backend=cfg, curate=False, path=PATH,
                             shard_size=args.shard_size, shard_workers=args.shard_workers, **_workers(args))
        httpx.post(f"{root}/stats/reset")
        c0, t0 = cpu_s(), time.perf_counter()
        manifest = run_generate_direct(gen)
        wall, cpu = time.perf_counter() - t0, cpu_s() - c0
        stats: dict[str, Any] = httpx.get(f"{root}/stats").json()
    finally:
        stop_servers(list(procs))
    return {"wall": wall, "cpu": cpu, "kept": manifest.counts.kept, "planned": manifest.counts.planned,
            "server": stats, "timings": manifest.timings}


def layout(args: argparse.Namespace, k: int) -> tuple[int, int, int]:
    """``(client processes, shards at a time per process, requests in flight per server per process)``
    for ``k`` servers: the client's demand grows with the servers (weak scaling), and every server
    sees at most ``--concurrency`` requests from all processes together."""
    if args.runner == "direct":
        return 1, args.shard_workers * k, args.concurrency
    workers = args.workers_per_server * k
    return workers, args.shard_workers, max(1, args.concurrency // workers)


def run_b(args: argparse.Namespace, k: int, out: Path) -> dict[str, Any]:
    """(b)/(c): ``k`` servers behind the shard runner, ``args.n_per_server`` scenarios each."""
    from flows.generate import generate_flow
    from scenario_forge.orchestration.runners import TaskRunnerConfig

    started = [start_server(args.curve, args.concurrency, args.reply_tokens) for _ in range(k)]
    procs, roots = [p for p, _ in started], [r for _, r in started]
    workers, shard_workers, client_concurrency = layout(args, k)
    try:
        urls = [f"{r}/v1" for r in roots]
        cfg = BackendConfig(kind="openai", base_url=urls[0], base_urls=urls if k > 1 else [],
                            concurrency=client_concurrency, timeout_s=600)
        gen = GenerateConfig(n=args.n_per_server * k, seed=args.seed, out=out, backend=cfg, curate=False, path=PATH,
                             shard_size=args.shard_size_b, shard_workers=shard_workers, **_workers(args))
        for r in roots:
            httpx.post(f"{r}/stats/reset")
        c0, w0, t0 = cpu_s(), cpu_s(resource.RUSAGE_CHILDREN), time.perf_counter()
        if args.runner == "direct":
            manifest = run_generate_direct(gen)
        else:
            manifest = generate_flow(gen, TaskRunnerConfig(kind="dask", workers=workers, processes=True))
        wall = time.perf_counter() - t0
        # the Dask workers have exited and been waited for; the servers have not (they run on)
        cpu = cpu_s() - c0 + cpu_s(resource.RUSAGE_CHILDREN) - w0
        stats = [httpx.get(f"{r}/stats").json() for r in roots]
    finally:
        stop_servers(procs)
    window = max(s["last_at"] for s in stats) - min(s["first_at"] for s in stats)
    tokens = sum(s["completion_tokens"] for s in stats)
    return {"k": k, "workers": workers, "shard_workers": shard_workers, "client_concurrency": client_concurrency,
            "wall": wall, "window": window, "tokens": tokens, "throughput": tokens / window, "cpu": cpu,
            "kept": manifest.counts.kept, "planned": manifest.counts.planned, "servers": stats,
            "capacity": stats[0]["capacity_tok_s"], "cost": manifest.cost.get("total", {})}


def run_d(args: argparse.Namespace, out: Path) -> list[float]:
    """(d) ``generate --estimate``'s accuracy: a pilot predicts run B; run B happens (one server)."""
    from scenario_forge.generation.estimate import pilot_estimate

    proc, root = start_server(args.curve, args.concurrency, args.reply_tokens)
    try:
        cfg = BackendConfig(kind="openai", base_url=f"{root}/v1", concurrency=args.concurrency, timeout_s=600)
        run_b = GenerateConfig(n=args.estimate_n, seed=args.seed + 1, out=out / "run", backend=cfg, curate=False,
                               path=PATH, shard_size=args.shard_size, shard_workers=args.shard_workers)
        pilot = pilot_estimate(run_b.model_copy(update={"seed": args.seed}), args.estimate_n, args.pilot_n, out / "pilot")
        actual = run_generate_direct(run_b).cost["total"]
    finally:
        stop_servers([proc])
    print(f"(d) --estimate {args.estimate_n} from a pilot of {args.pilot_n} (seed {args.seed}; run B seed {args.seed + 1}), "
          f"pilot kept {pilot.pilot_kept}/{pilot.pilot_planned}:")
    errors = []
    for field in ("prompt_tokens", "completion_tokens", "requests", "server_s"):
        predicted, real = pilot.predicted["total"][field], float(actual[field])
        error = (predicted - real) / real
        errors.append(abs(error))
        print(f"    {field:18s} predicted {predicted:12,.1f}  actual {real:12,.1f}  error {error:+.1%}")
    tokens_error = abs(pilot.predicted["total"]["prompt_tokens"] + pilot.predicted["total"]["completion_tokens"]
                       - actual["tokens"]) / actual["tokens"]
    print(f"    tokens (prompt + completion): error {tokens_error:.1%} (target within 15%: "
          f"{'met' if tokens_error <= 0.15 else 'MISSED'}); server-s scale only when the pilot fills the batch as run B does")
    return [tokens_error + 1e-9]


def _ok(*values: float) -> bool:
    return all(math.isfinite(v) and v > 0 for v in values)


def report_a(args: argparse.Namespace, r: dict[str, Any]) -> list[float]:
    s = r["server"]
    capacity = s["capacity_tok_s"]
    frac = s["completion_tokens"] / (r["wall"] * capacity)
    per_hour = r["kept"] / r["wall"] * 3600
    print(f"(a) one server, direct runner: curve {s['curve']} ({capacity:.0f} output tok/s at {args.concurrency} in "
          f"flight); N={r['planned']}, shards of {args.shard_size} x {args.shard_workers}; {args.reply_tokens} tokens a reply")
    print(f"    wall {r['wall']:.1f} s; kept {r['kept']}/{r['planned']}; server: {s['requests']} requests, "
          f"{s['completion_tokens']} output tokens, mean in flight {s['mean_in_flight']:.1f} "
          f"(peak {s['peak_in_flight']}, peak queued {s['peak_queued']})")
    print(f"    capacity used: {s['completion_tokens']} / ({r['wall']:.1f} s x {capacity:.0f} tok/s) = {frac:.3f} "
          f"(target >= {TARGET_A}{'' if args.quick else ', ' + ('met' if frac >= TARGET_A else 'missed')}); "
          f"{per_hour:,.0f} kept scenarios/hour")
    cpu_per_k = r["cpu"] / r["planned"] * 1000
    server_s_per_k = s["completion_tokens"] / capacity / r["planned"] * 1000
    print(f"    client CPU: {r['cpu']:.1f} CPU-s ({r['cpu'] / r['wall']:.2f} of a core over the wall) = {cpu_per_k:.1f} CPU-s "
          f"per 1,000 scenarios; one server at full capacity needs {server_s_per_k:.1f} s per 1,000, so one client "
          f"core keeps {server_s_per_k / cpu_per_k:.2f} such servers busy")
    return [r["wall"], frac, per_hour, cpu_per_k]


def report_b(args: argparse.Namespace, one: dict[str, Any], many: dict[str, Any]) -> tuple[float, list[float]]:
    k = many["k"]
    eff = many["throughput"] / (k * one["throughput"])
    target = QUICK_TARGET_B if args.quick else TARGET_B
    runner = "direct runner (shards in threads)" if args.runner == "direct" else "Dask shard runner (local cluster)"
    print(f"(b) {runner}, {args.n_per_server} scenarios a server in shards of {args.shard_size_b}; client demand grows "
          "with the servers")
    for r in (one, many):
        per_server = r["tokens"] / r["window"] / r["k"]
        print(f"    {r['k']} server{'s' if r['k'] > 1 else ''}: {r['workers']} client process(es) x {r['shard_workers']} "
              f"shards at a time, --concurrency {r['client_concurrency']} per server per process; "
              f"N={r['planned']}, kept {r['kept']}; {r['tokens']} output "
              f"tokens in a {r['window']:.1f} s active window = {r['throughput']:.0f} tok/s ({per_server:.0f} per "
              f"server, {per_server / r['capacity']:.2f} of one's capacity); flow wall {r['wall']:.1f} s "
              f"(cluster and Prefect start-up {r['wall'] - r['window']:.1f} s); requests per server "
              f"{', '.join(str(s['requests']) for s in r['servers'])}")
    print(f"    scaling efficiency: {many['throughput']:.0f} / ({k} x {one['throughput']:.0f}) = {eff:.3f} "
          f"({'quick-size ' if args.quick else ''}target >= {target}: {'met' if eff >= target else 'MISSED'})")
    return eff, [one["throughput"], many["throughput"], eff]


def report_c(many: dict[str, Any]) -> list[float]:
    k, capacity = many["k"], many["capacity"]
    cpu_per_k = many["cpu"] / many["planned"] * 1000
    server_s_per_k = many["tokens"] / capacity / many["planned"] * 1000  # one server at full capacity
    cores = cpu_per_k / server_s_per_k
    print(f"(c) client CPU at {k} servers: {many['cpu']:.1f} CPU-s (this process + the Dask workers) = "
          f"{cpu_per_k:.1f} CPU-s per 1,000 scenarios (start-up included); one server needs {server_s_per_k:.1f} s per 1,000 at full "
          f"capacity, so keeping one full takes {cores:.2f} client cores and {k} take {k * cores:.2f} "
          f"({'within' if k * cores <= 2 else 'MORE than'} this machine's 2 cores)")
    return [cpu_per_k, server_s_per_k]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=2000, help="(a) scenarios (the issue's full size: 10000)")
    ap.add_argument("--curve", default="vllm-h100-smollm2-135m", help="a shipped curve name or a curve JSON file")
    ap.add_argument("--concurrency", type=int, default=256, help="each server's cap; (a): the client's requests in flight")
    ap.add_argument("--reply-tokens", type=int, default=120,
                    help="simulated output tokens per reply (the embedded model: 4639 decoded over 38 requests in "
                    "bench_floor.py --quick, ~122)")
    ap.add_argument("--shard-size", type=int, default=256, help="(a) scenarios per shard")
    ap.add_argument("--shard-workers", type=int, default=4, help="shards at a time (per Dask worker in (b))")
    ap.add_argument("--scenario-workers", type=int, default=None,
                    help="scenarios of a shard advancing side by side (GenerateConfig.scenario_workers; default: its default)")
    ap.add_argument("--servers", type=int, default=4, help="(b) servers against one")
    ap.add_argument("--n-per-server", type=int, default=250, help="(b) scenarios per server")
    ap.add_argument("--runner", choices=("dask", "direct"), default="dask",
                    help="(b) the Dask shard runner (Prefect's DaskTaskRunner, a local cluster) or the direct runner")
    ap.add_argument("--workers-per-server", type=int, default=1, help="(b, dask) worker processes per server")
    ap.add_argument("--shard-size-b", type=int, default=32, help="(b) scenarios per shard")
    ap.add_argument("--check-estimate", action="store_true",
                    help="(d) also measure generate --estimate's accuracy: a --pilot-n pilot predicts --estimate-n")
    ap.add_argument("--pilot-n", type=int, default=16)
    ap.add_argument("--estimate-n", type=int, default=200)
    ap.add_argument("--skip-a", action="store_true")
    ap.add_argument("--skip-b", action="store_true")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--quick", action="store_true",
                    help="(a) N=32; (b) 4 servers x 16 scenarios on the direct runner (Prefect and a Dask cluster "
                    "take minutes to start on 2 loaded cores)")
    args = ap.parse_args(argv)
    if args.quick:
        args.n, args.shard_size, args.shard_workers, args.concurrency = 32, 16, 2, 64
        args.n_per_server, args.shard_size_b, args.shard_workers, args.runner = 16, 8, 2, "direct"
        args.curve = "vllm-h100-qwen3-8b"
    if min(args.n, args.concurrency, args.servers, args.n_per_server, args.workers_per_server, args.shard_size_b,
           1 if args.scenario_workers is None else args.scenario_workers) < 1:
        print("error: --n, --concurrency, --servers, --n-per-server, --workers-per-server, --shard-size-b and "
              "--scenario-workers must be at least 1", file=sys.stderr)
        return 2
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    figures: list[float] = []
    kept = True
    ok = True
    with tempfile.TemporaryDirectory() as tmp:
        if not args.skip_a:
            ra = run_a(args, Path(tmp) / "a")
            figures += report_a(args, ra)
            kept = kept and ra["kept"] > 0
        if not args.skip_b:
            from contextlib import ExitStack

            with ExitStack() as stack:
                if args.runner == "dask":
                    from scenario_forge.orchestration.local_api import prefect_api, prefect_console_quiet

                    stack.enter_context(prefect_api())
                    stack.enter_context(prefect_console_quiet())
                one = run_b(args, 1, Path(tmp) / "b1")
                many = run_b(args, args.servers, Path(tmp) / f"b{args.servers}")
            eff, more = report_b(args, one, many)
            figures += more + report_c(many)
            kept = kept and one["kept"] > 0 and many["kept"] > 0
            ok = eff >= (QUICK_TARGET_B if args.quick else TARGET_B)
        if args.check_estimate:
            figures += run_d(args, Path(tmp) / "d")
    if not kept or not _ok(*figures):
        print("error: nothing kept, or a figure is not finite and positive", file=sys.stderr)
        return 1
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
