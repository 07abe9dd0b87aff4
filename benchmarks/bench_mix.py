"""Mixing a large base set: time and peak memory (target: 10,000,000 base rows in <= 30 s and <= 2 GiB).

Setup (not timed): a base parquet of N verifiable-task rows and a run of 2,000 scenarios (500 with
``--quick``). Then, each in a fresh process so its peak RSS is its own:

- ``stream``: the recipe's ratio (2,000 / N) makes the mixture draw N - 2,000 standard rows, i.e.
  the whole base set but for 2,000 rows -- more than ``shuffle_limit``, so they stream in base order;
- ``shuffle``: a mixture of 1,000,000 rows (1/500 beneficial) small enough to be shuffled;
- ``floor``: polars copying the base file (scan -> sink parquet), the I/O floor, side by side.

Usage: ``python benchmarks/bench_mix.py [--quick] [--rows N] [--keep DIR]``. ``--quick`` uses 200,000
rows (a few seconds; ``tests/test_benchmarks_quick.py`` runs it).

Quick-size target (``--quick``): the ``stream`` case mixes the 200,000 base rows in <= 10 s of
CPU time (user + system of its process; wall time on our shared 2 cores swings with other load:
3.5 s CPU took 20.5 s wall at load average 11) and <= 1 GiB peak RSS. Other sizes are
held to the full target (<= 30 s wall, <= 2 GiB). The script exits 1 when the target of the size it
ran at is missed.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TARGET_S = 30.0
TARGET_RSS_GIB = 2.0
QUICK_S = 10.0
QUICK_RSS_GIB = 1.0
SCENARIOS = 2_000


def make_base(path: Path, rows: int) -> None:
    import numpy as np
    import polars as pl

    i = pl.Series("i", np.arange(rows, dtype=np.int64))
    frame = pl.DataFrame(i).select(
        prompt=pl.format(
            "A warehouse ships {} crates of {} parts and receives {} parts back. How many parts left the warehouse? "
            "Give only the final answer.", pl.col("i") % 997 + 3, pl.col("i") % 89 + 2, pl.col("i") % 53,
        ),
        answer=((pl.col("i") % 997 + 3) * (pl.col("i") % 89 + 2) - pl.col("i") % 53).cast(pl.String),
        task=pl.lit("bench_arithmetic"),
    )
    frame.write_parquet(path, row_group_size=262_144)


def make_run(root: Path, count: int) -> Path:
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))
    from scenario_forge.records import Brief, Criterion, Message, Provenance, Scenario
    from scenario_forge.schema import write_scenarios

    domains = ["health", "science", "business", "engineering", "law_ethics", "education"]
    traits = ["truthfulness", "corrigibility", "dense_usefulness", "bounded_initiative"]
    prov = Provenance(run_id="bench", generator="bench", backend="fake", model="fake", sampling={}, templates={},
                      taxonomy_name="t", taxonomy_version="1", taxonomy_hash="0", plan_seed=0)
    scenarios = [
        Scenario(
            id=f"sc-bench-{i:06d}", index=i, domain=domains[i % 6], trait=traits[i % 4], facet=None, pressure="insistence",
            persona="p", shape="plain", flaw=None, flawed_turn_index=None, operator_persona=False,
            brief=Brief(situation=f"situation {i}", user_goal="goal", key_facts="facts", trap="trap"),
            messages=[Message(role="user", content=f"Scenario {i}: please just confirm my plan.")],
            rubric=[Criterion(criterion="Names the main risk", points=6), Criterion(criterion="Invents facts", points=-5)],
            provenance=prov,
        )
        for i in range(count)
    ]
    folder = root / "run"
    folder.mkdir(parents=True)
    write_scenarios(folder / "scenarios.parquet", scenarios)
    return folder


def recipe(path: Path, name: str, ratio: str) -> Path:
    path.write_text(f"name: {name}\nbeneficial_ratio: {ratio}\nheldout: {{fraction: 0.0}}\nseed: 0\n")
    return path


def child(spec: dict) -> None:
    """One timed case in this process; prints a JSON line with its time and peak RSS."""
    start = time.perf_counter()
    if spec["case"] == "floor":
        import polars as pl

        pl.scan_parquet(spec["base"]).sink_parquet(spec["out"])
        rows = pl.scan_parquet(spec["out"]).select(pl.len()).collect().item()
    else:
        from scenario_forge.mixing.config import MixConfig
        from scenario_forge.mixing.run import run_mix

        imported = time.perf_counter()
        meta = run_mix(MixConfig(runs=[Path(spec["run"])], recipe=spec["recipe"], out=Path(spec["out"]), base=spec["base"],
                                 spread={"enabled": False}))
        rows = meta.splits["train"]
        assert meta.ratio["exact"], meta.ratio
        spec["import_s"] = imported - start
        start = imported
    wall = time.perf_counter() - start
    usage = resource.getrusage(resource.RUSAGE_SELF)
    print(json.dumps({"case": spec["case"], "wall_s": wall, "cpu_s": usage.ru_utime + usage.ru_stime, "peak_rss": peak_rss(),
                      "rows": rows, "import_s": spec.get("import_s", 0.0)}))


def peak_rss() -> int:
    """This process's peak resident set (VmHWM, bytes). Not ``ru_maxrss``: that survives ``exec`` and
    would report the parent's peak, which held the whole base set while building it."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def run_case(spec: dict) -> dict:
    proc = subprocess.run([sys.executable, __file__, "--child", json.dumps(spec)], capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"case {spec['case']} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="200,000 base rows")
    parser.add_argument("--rows", type=int, default=None, help="base rows (default 10,000,000)")
    parser.add_argument("--keep", type=Path, default=None, help="work folder to keep (default: a temporary one)")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(json.loads(args.child))
        return
    rows = args.rows or (200_000 if args.quick else 10_000_000)
    scenarios = 500 if args.quick else SCENARIOS
    work = args.keep or Path(tempfile.mkdtemp(prefix="bench-mix-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        t = time.perf_counter()
        base = work / "base.parquet"
        make_base(base, rows)
        run = make_run(work / "runs", scenarios)
        print(f"setup (not timed): {rows:,} base rows ({base.stat().st_size / 2**20:.0f} MiB) and {scenarios:,} scenarios in {time.perf_counter() - t:.1f} s")
        stream_ratio = f"{scenarios}/{rows}"  # beneficial / total: the whole base set is drawn from
        shuffle_total = min(1_000_000, rows // 2)
        cases = [
            {"case": "floor", "base": str(base), "out": str(work / "copy.parquet")},
            {"case": "stream", "base": str(base), "run": str(run), "out": str(work / "mix-stream"),
             "recipe": str(recipe(work / "stream.yaml", "bench-stream", f"{scenarios / rows!r}"))},
            {"case": "shuffle", "base": str(base), "run": str(run), "out": str(work / "mix-shuffle"),
             "recipe": str(recipe(work / "shuffle.yaml", "bench-shuffle", f"{scenarios / shuffle_total!r}"))},
        ]
        results = {c["case"]: run_case(c) for c in cases}
        floor = results["floor"]["wall_s"]
        cpu_floor = results["floor"]["cpu_s"]
        print(f"\n{'case':<10}{'train rows':>14}{'wall s':>10}{'x floor':>10}{'cpu s':>10}{'x floor':>10}{'peak RSS GiB':>15}{'rows/s':>14}")
        for name, r in results.items():
            print(f"{name:<10}{r['rows']:>14,}{r['wall_s']:>10.2f}{r['wall_s'] / floor:>10.2f}{r['cpu_s']:>10.2f}"
                  f"{r['cpu_s'] / cpu_floor:>10.2f}{r['peak_rss'] / 2**30:>15.2f}{r['rows'] / r['wall_s']:>14,.0f}")
        print(f"(cpu s = user + system time of the case's process: less sensitive than wall time to other load; "
              f"load average now {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores)")
        print(f"(stream ratio {stream_ratio}; python + library imports before timing: {results['stream']['import_s']:.1f} s)")
        stream = results["stream"]
        quick = args.quick and args.rows is None
        limit_s, limit_gib = (QUICK_S, QUICK_RSS_GIB) if quick else (TARGET_S, TARGET_RSS_GIB)
        clock = "cpu_s" if quick else "wall_s"
        ok_time = stream[clock] <= limit_s
        ok_mem = stream["peak_rss"] / 2**30 <= limit_gib
        scale = " (quick-size target)" if quick else "" if rows == 10_000_000 else f" (at {rows:,} rows; the target is for 10,000,000)"
        what = "CPU s" if quick else "s"
        print(f"\ntarget: mix {rows:,} base rows in <= {limit_s:.0f} {what}: {stream[clock]:.1f} {what} -> {'PASS' if ok_time else 'FAIL'}{scale}")
        print(f"target: peak RSS <= {limit_gib:g} GiB: {stream['peak_rss'] / 2**30:.2f} GiB -> {'PASS' if ok_mem else 'FAIL'}{scale}")
        if not (ok_time and ok_mem):
            sys.exit(1)
    finally:
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    main()
