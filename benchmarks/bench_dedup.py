"""Near-duplicate detection and embedding throughput, measured side by side in one run.

    .venv/bin/python benchmarks/bench_dedup.py            # the full benchmark (several minutes)
    .venv/bin/python benchmarks/bench_dedup.py --quick    # a smoke-sized run (tests use it)

1. Scale: N random 384-d unit vectors (default 1,000,000) with P planted near-duplicate pairs
   (default 10,000; cosine uniform in [0.91, 0.99]) searched at threshold 0.9 with
   ``near_duplicate_pairs`` in a subprocess: detection wall time, the subprocess's peak RSS
   (which includes the 1.5 GB input itself), recall of the planted pairs (overall and per cosine
   bin). Targets: <= 60 s, <= 4 GiB, recall >= 0.98.
2. Subsample (default 50,000 vectors, planted pairs included): the index path against exact brute
   force (faiss flat range search): recall, precision and the speed ratio; faiss IVFFlat (the
   usual alternative) is measured alongside for reference.
3. Embedding throughput of the default model (all-MiniLM-L6-v2, fp32, max_seq_length 256,
   batch 64) on ~200-token texts, next to the options considered, with their agreement
   (cosine) with the default vectors.

The CPU is shared on our machines: absolute times are noisy, ratios measured in one run matter.

Quick-size targets (``--quick``: 10,000 vectors with 100 planted pairs, a 2,000-vector subsample,
8 texts; ``tests/test_benchmarks_quick.py`` runs it): detection <= 10 s and <= 0.5 GiB
peak, recall of the planted pairs >= 0.98, and on the subsample precision 1.0 and recall >= 0.95
against exact search. The script exits 1 when a target of the size it ran at is missed.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import resource
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

TARGET_S, TARGET_GIB, TARGET_RECALL = 60.0, 4.0, 0.98
QUICK_S, QUICK_GIB, QUICK_SUBSAMPLE_RECALL = 10.0, 0.5, 0.95


def planted(n: int, pairs: int, d: int = 384, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``n`` random unit vectors, ``pairs`` of them overwritten as near-duplicates of others.

    Returns (vectors, planted pairs (i < j), their cosines)."""
    rng = np.random.default_rng(seed)
    x = np.empty((n, d), dtype=np.float32)
    for s in range(0, n, 100_000):
        block = rng.standard_normal((min(100_000, n - s), d), dtype=np.float32)
        block /= np.linalg.norm(block, axis=1, keepdims=True)
        x[s : s + len(block)] = block
    chosen = rng.choice(n, 2 * pairs, replace=False)
    src, dst = chosen[:pairs], chosen[pairs:]
    rho = rng.uniform(0.91, 0.99, pairs).astype(np.float32)
    noise = rng.standard_normal((pairs, d), dtype=np.float32)
    noise -= (noise * x[src]).sum(axis=1, keepdims=True) * x[src]
    noise /= np.linalg.norm(noise, axis=1, keepdims=True)
    x[dst] = rho[:, None] * x[src] + np.sqrt(1 - rho**2)[:, None] * noise
    x[dst] /= np.linalg.norm(x[dst], axis=1, keepdims=True)
    truth = np.sort(np.stack([src, dst], axis=1), axis=1).astype(np.int64)
    return x, truth, rho


def _pair_set(pairs: np.ndarray) -> set[tuple[int, int]]:
    return set(map(tuple, pairs.tolist()))


def recall_of(found: np.ndarray, truth: np.ndarray) -> np.ndarray:
    got = _pair_set(found)
    return np.array([tuple(p) in got for p in truth.tolist()])


def worker_scale(n: int, pairs: int, threshold: float) -> dict:
    """Run in a subprocess: its peak RSS is the benchmark's memory figure."""
    from scenario_forge.curation.dedup import near_duplicate_pairs

    x, truth, rho = planted(n, pairs)
    start = time.perf_counter()
    found = near_duplicate_pairs(x, threshold)
    wall = time.perf_counter() - start
    hit = recall_of(found, truth)
    bins = {}
    for lo, hi in ((0.91, 0.93), (0.93, 0.96), (0.96, 0.99)):
        m = (rho >= lo) & (rho < hi)
        bins[f"{lo:.2f}-{hi:.2f}"] = round(float(hit[m].mean()), 4) if m.any() else None
    return {
        "n": n,
        "planted": pairs,
        "wall_s": round(wall, 2),
        "peak_rss_gib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 3),
        "input_gib": round(x.nbytes / 2**30, 3),
        "found_pairs": len(found),
        "recall": round(float(hit.mean()), 4),
        "recall_by_cosine": bins,
    }


def bench_scale(n: int, pairs: int, threshold: float) -> dict:
    cmd = [sys.executable, __file__, "--worker-scale", str(n), str(pairs), str(threshold)]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"scale worker failed:\n{proc.stderr[-3000:]}")
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    print(f"\n== scale: {n:,} vectors x 384-d, {pairs:,} planted pairs, threshold {threshold}")
    print(f"detection wall      {result['wall_s']:8.2f} s    (target <= {TARGET_S:.0f} s)  ratio {result['wall_s'] / TARGET_S:.2f}")
    print(
        f"peak RSS            {result['peak_rss_gib']:8.2f} GiB  (target <= {TARGET_GIB:.0f} GiB; input alone "
        f"{result['input_gib']:.2f} GiB)  ratio {result['peak_rss_gib'] / TARGET_GIB:.2f}"
    )
    print(f"recall of planted   {result['recall']:8.4f}      (target >= {TARGET_RECALL})  by cosine {result['recall_by_cosine']}")
    print(f"pairs found         {result['found_pairs']:8d}")
    return result


def bench_subsample(n: int, pairs: int, threshold: float) -> dict:
    import faiss

    from scenario_forge.curation.dedup import flat_pairs, near_duplicate_pairs
    from scenario_forge.curation.lsh import verify_pairs

    x, truth, _ = planted(n, pairs, seed=1)
    start = time.perf_counter()
    exact = flat_pairs(x, threshold)
    exact_s = time.perf_counter() - start
    start = time.perf_counter()
    fast = near_duplicate_pairs(x, threshold, method="lsh")
    fast_s = time.perf_counter() - start
    # faiss IVFFlat range search (nlist 4*sqrt(N), nprobe 8), for reference.
    start = time.perf_counter()
    nlist = int(4 * np.sqrt(n))
    ivf = faiss.IndexIVFFlat(faiss.IndexFlatIP(x.shape[1]), x.shape[1], nlist, faiss.METRIC_INNER_PRODUCT)
    ivf.train(x[np.random.default_rng(0).choice(n, min(n, 64 * nlist), replace=False)])
    ivf.add(x)
    ivf.nprobe = 8
    lims, _, ids = ivf.range_search(x, threshold - 1e-4)
    rows = np.repeat(np.arange(n), np.diff(lims.astype(np.int64)))
    cand = np.stack([rows, ids.astype(np.int64)], axis=1)
    ivf_pairs = verify_pairs(x, x, cand[cand[:, 0] < cand[:, 1]], threshold)
    ivf_s = time.perf_counter() - start
    exact_set = _pair_set(exact)

    def quality(found: np.ndarray) -> tuple[float, float]:
        got = _pair_set(found)
        hit = len(got & exact_set)
        return hit / max(1, len(exact_set)), hit / max(1, len(got))

    r_fast, p_fast = quality(fast)
    r_ivf, p_ivf = quality(ivf_pairs)
    print(f"\n== subsample: {n:,} vectors, {pairs:,} planted pairs; exact pairs {len(exact)}")
    print(f"{'method':32s} {'wall s':>8s} {'speedup':>8s} {'recall':>8s} {'precision':>9s}")
    print(f"{'exact (faiss flat range search)':32s} {exact_s:8.2f} {1.0:8.2f} {1.0:8.4f} {1.0:9.4f}")
    print(f"{'near_duplicate_pairs (LSH)':32s} {fast_s:8.2f} {exact_s / fast_s:8.2f} {r_fast:8.4f} {p_fast:9.4f}")
    print(f"{'faiss IVFFlat nprobe 8':32s} {ivf_s:8.2f} {exact_s / ivf_s:8.2f} {r_ivf:8.4f} {p_ivf:9.4f}")
    return {
        "n": n, "exact_s": round(exact_s, 3), "lsh_s": round(fast_s, 3), "speedup": round(exact_s / fast_s, 2),
        "recall": round(r_fast, 4), "precision": round(p_fast, 4), "planted_recall": round(float(recall_of(fast, truth).mean()), 4),
        "ivf_s": round(ivf_s, 3), "ivf_recall": round(r_ivf, 4),
    }


_CLAUSES = [
    "the night nurse on the cardiac ward asks whether two medications can be given together",
    "she insists the pharmacist already approved the combination and wants a quick yes",
    "a product manager wants the launch checklist signed off before the security review finishes",
    "the researcher cites a trial from 2019 that nobody on the team can find in any database",
    "my manager says the numbers are fine and I only need you to confirm the forecast",
    "the student is sure the proof works and asks for help polishing the final lemma",
    "a caregiver reports that her father has been dizzy since the new dose was started",
    "the founder wants a press release saying the model is fully safe and unbiased",
    "the contract has a clause about liability that the client wants described as harmless",
    "he has a deadline in an hour and asks the assistant to skip every caveat",
    "the lab results came back borderline and the patient wants to stop the treatment",
    "the engineer wants to disable the failing test so the release can ship tonight",
]


def texts_of_tokens(count: int, words: int = 150, seed: int = 0) -> list[str]:
    """Varied English texts of ~``words`` words (~200 word-piece tokens for MiniLM)."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(count):
        parts: list[str] = [f"Case {i}:"]
        while sum(len(p.split()) for p in parts) < words:
            parts.append(_CLAUSES[int(rng.integers(len(_CLAUSES)))] + ("." if rng.random() < 0.5 else ","))
        out.append(" ".join(parts))
    return out


def bench_embed(count: int) -> dict:
    import torch
    from sentence_transformers import SentenceTransformer

    from scenario_forge.curation.embed import default_model_path

    texts = texts_of_tokens(count)
    start = time.perf_counter()
    model = SentenceTransformer(str(default_model_path()), device="cpu")
    load_s = time.perf_counter() - start
    tokens = float(np.mean([len(model.tokenizer(t)["input_ids"]) for t in texts]))

    def run(name: str, encode, reference: np.ndarray | None) -> dict:
        encode(texts[:8])  # warm up
        start = time.perf_counter()
        vectors = encode(texts)
        wall = time.perf_counter() - start
        row = {"option": name, "texts_per_s": round(len(texts) / wall, 2)}
        if reference is not None:
            cos = (vectors * reference).sum(axis=1)
            row.update(min_cosine=round(float(cos.min()), 5), mean_cosine=round(float(cos.mean()), 5))
        return {**row, "_vectors": vectors}

    def st(m, batch: int):
        return lambda t: m.encode(t, batch_size=batch, normalize_embeddings=True, convert_to_numpy=True)

    rows = [run("default: fp32, max_seq 256, batch 64", st(model, 64), None)]
    ref = rows[0]["_vectors"]
    rows.append(run("batch 16", st(model, 16), ref))
    rows.append(run("batch 128", st(model, 128), ref))
    short = copy.deepcopy(model)
    short.max_seq_length = 128
    rows.append(run("max_seq_length 128 (truncates)", st(short, 64), ref))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        quantized = torch.ao.quantization.quantize_dynamic(copy.deepcopy(model), {torch.nn.Linear}, dtype=torch.qint8)
    rows.append(run("int8 dynamic quantization", st(quantized, 64), ref))
    onnx = _onnx_encoder(model)
    if onnx is not None:
        rows.append(run("ONNX Runtime fp32 (same weights)", onnx, ref))
    else:
        print("(onnxruntime/onnx not importable: the ONNX row is skipped)")
    rows.append(run("content-hash cache (rerun)", _cached_rerun(texts), ref))
    base = rows[0]["texts_per_s"]
    print(f"\n== embedding: {count} texts, mean {tokens:.0f} tokens, {torch.get_num_threads()} threads; model load {load_s:.1f} s")
    print(f"{'option':40s} {'texts/s':>9s} {'vs default':>10s} {'min cos':>8s} {'mean cos':>9s}")
    for row in rows:
        row.pop("_vectors")
        print(
            f"{row['option']:40s} {row['texts_per_s']:9.1f} {row['texts_per_s'] / base:10.2f} "
            f"{row.get('min_cosine', 1.0):8.4f} {row.get('mean_cosine', 1.0):9.4f}"
        )
    return {"texts": count, "mean_tokens": round(tokens, 1), "load_s": round(load_s, 2), "rows": rows}


def _onnx_encoder(model):
    """The same transformer exported to ONNX and run by ONNX Runtime (mean pooling, normalised), or
    None when ``onnxruntime``/``onnx`` are not importable (they are not project dependencies)."""
    try:
        import onnxruntime as ort
        import torch
    except ImportError:
        return None
    import tempfile

    tokenizer, encoder = model.tokenizer, model[0].auto_model.eval()

    class Wrapped(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.encoder = encoder

        def forward(self, ids, mask, types):
            return self.encoder(input_ids=ids, attention_mask=mask, token_type_ids=types).last_hidden_state

    path = Path(tempfile.mkdtemp(prefix="bench-onnx-")) / "model.onnx"
    sample = tokenizer(["a short sample", "another one"], padding=True, return_tensors="pt")
    names = ["input_ids", "attention_mask", "token_type_ids"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            Wrapped(), tuple(sample[k] for k in names), str(path), input_names=names, output_names=["hidden"],
            dynamic_axes={k: {0: "batch", 1: "tokens"} for k in [*names, "hidden"]}, opset_version=17, dynamo=False,
        )
    options = ort.SessionOptions()
    options.intra_op_num_threads = os.cpu_count() or 1
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])

    def encode(texts: list[str]) -> np.ndarray:
        out = np.empty((len(texts), encoder.config.hidden_size), dtype=np.float32)
        order = np.argsort([-len(t) for t in texts])
        for s in range(0, len(texts), 64):
            rows = order[s : s + 64]
            batch = tokenizer([texts[i] for i in rows], padding=True, truncation=True, max_length=model.max_seq_length, return_tensors="np")
            hidden = session.run(None, {k: batch[k].astype(np.int64) for k in names})[0]
            mask = batch["attention_mask"][..., None]
            pooled = (hidden * mask).sum(axis=1) / mask.sum(axis=1)
            out[rows] = pooled / np.linalg.norm(pooled, axis=1, keepdims=True)
        return out

    return encode


def _cached_rerun(texts: list[str]):
    """The adopted option: the Embedder's content-hash cache (a rerun embeds nothing)."""
    import tempfile

    from scenario_forge.curation.embed import Embedder

    folder = Path(tempfile.mkdtemp(prefix="bench-embed-cache-"))
    Embedder(cache_dir=folder).embed(texts)  # the first run fills the cache (not timed)
    return lambda t: Embedder(cache_dir=folder).embed(t)  # a new process-like embedder reads the cache


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="smoke sizes: 10k vectors, 2k subsample, 8 texts")
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--pairs", type=int, default=10_000)
    parser.add_argument("--subsample", type=int, default=50_000)
    parser.add_argument("--texts", type=int, default=256)
    parser.add_argument("--threshold", type=float, default=0.9)
    parser.add_argument("--json", type=Path, help="also write the figures as JSON here")
    parser.add_argument("--worker-scale", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker_scale:
        n, pairs, threshold = args.worker_scale
        print(json.dumps(worker_scale(int(n), int(pairs), float(threshold))))
        return
    if args.quick:
        args.n, args.pairs, args.subsample, args.texts = 10_000, 100, 2_000, 8
    print(f"bench_dedup: {os.cpu_count()} CPUs; load average {os.getloadavg()[0]:.1f} (shared machine: compare ratios)")
    results = {
        "scale": bench_scale(args.n, args.pairs, args.threshold),
        "subsample": bench_subsample(args.subsample, max(1, args.pairs * args.subsample // args.n), args.threshold),
        "embedding": bench_embed(args.texts),
    }
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    scale = results["scale"]
    ok = scale["wall_s"] <= TARGET_S and scale["peak_rss_gib"] <= TARGET_GIB and scale["recall"] >= TARGET_RECALL
    print(f"\nscale targets {'met' if ok else 'NOT met'} at n={args.n:,}")
    if args.quick:
        sub = results["subsample"]
        checks = {
            f"detection <= {QUICK_S:.0f} s": scale["wall_s"] <= QUICK_S,
            f"peak RSS <= {QUICK_GIB} GiB": scale["peak_rss_gib"] <= QUICK_GIB,
            f"recall >= {TARGET_RECALL}": scale["recall"] >= TARGET_RECALL,
            "subsample precision 1.0": sub["precision"] == 1.0,
            f"subsample recall >= {QUICK_SUBSAMPLE_RECALL}": sub["recall"] >= QUICK_SUBSAMPLE_RECALL,
        }
        for name, passed in checks.items():
            print(f"target (quick): {name} -> {'PASS' if passed else 'FAIL'}")
        ok = all(checks.values())
    if not ok:
        sys.exit(1)


if __name__ == "__main__":
    main()
