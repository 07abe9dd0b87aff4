"""The curation dedup threshold on hand-written paraphrases (``labelled/paraphrases.jsonl``).

The planted near-duplicates elsewhere in the suite are one-word swaps scored by a bag-of-words fake
embedder; these pairs are substantial rewordings of one scenario (label ``true``) and different
scenarios in the same domain and trait (``false``), embedded by the real all-MiniLM-L6-v2 and
searched with the curation code at the curation default threshold. Figures and the threshold sweep:
``benchmarks/bench_paraphrase.py``.
"""

from __future__ import annotations

import importlib.util
import sys
from collections import Counter

import pytest
from helpers import REPO

from scenario_forge.config import CurationConfig
from scenario_forge.taxonomy.loader import load_taxonomy

LABELLED = REPO / "labelled" / "paraphrases.jsonl"


def _bench():
    spec = importlib.util.spec_from_file_location("bench_paraphrase", REPO / "benchmarks" / "bench_paraphrase.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_paraphrase"] = module
    spec.loader.exec_module(module)
    return module


def test_labelled_set_shape():
    rows = _bench().load_pairs(LABELLED)
    assert len(rows) >= 60
    for r in rows:
        assert set(r) == {"id", "a", "b", "paraphrase", "domain", "note"}, r.get("id")
        assert isinstance(r["paraphrase"], bool) and r["a"] != r["b"] and r["note"], r["id"]
        assert len(r["a"].split()) >= 30 and len(r["b"].split()) >= 30, r["id"]  # scenario-sized texts
    assert len({r["id"] for r in rows}) == len(rows)
    texts = [t for r in rows for t in (r["a"], r["b"])]
    assert len(set(texts)) == len(texts)
    labels = Counter(r["paraphrase"] for r in rows)
    assert labels[True] >= 30 and labels[False] >= 30
    domains = {d.id for d in load_taxonomy().domains}
    assert {r["domain"] for r in rows} == domains  # all 12 domains, no unknown ones
    assert all(n >= 2 for n in Counter((r["domain"], r["paraphrase"]) for r in rows).values())


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_default_threshold_on_real_paraphrases(capsys):
    """Measured with MiniLM (figures in the README; the sweep is the bench). At the 0.9 default the
    search spares every distinct scenario but catches none of these paraphrases (their cosines run
    0.65-0.90); the embedder itself separates them well, so it is the threshold that misses."""
    bench = _bench()
    from scenario_forge.curation.embed import get_embedder

    rows = bench.load_pairs(LABELLED)
    vectors = bench.embed_pairs(rows, get_embedder(None, None))
    threshold = CurationConfig().threshold
    result = bench.measure(rows, vectors, threshold)
    summary = bench.cosine_summary(rows, bench.pair_cosines(rows, vectors))
    sep = bench.separation(rows, vectors)
    lower = bench.measure(rows, vectors, 0.75)
    with capsys.disabled():
        precision = f"{result.precision:.3f}" if result.precision is not None else "n/a (nothing found)"
        print(f"\nparaphrase set ({len(rows)} pairs) at the curation threshold {threshold}: recall {result.recall:.3f} "
              f"({result.found_paraphrases}/{sep['paraphrases']}), precision {precision}, false positives "
              f"{len(result.false_positives)}; at 0.75: recall {lower.recall:.3f}, precision {lower.precision:.3f}; "
              f"AUC {sep['auc']:.3f}; mutual nearest neighbours {sep['mutual_nearest']}/{sep['paraphrases']}; "
              f"cosines {summary}")
    # Distinct scenarios are spared at the default: no labelled distinct pair, no cross-row pair.
    assert result.false_positives == []
    # The embedder separates the labels: paraphrase pairs rank above distinct pairs and are each
    # other's nearest neighbours among all the set's texts.
    assert sep["auc"] >= 0.9
    assert sep["mutual_nearest"] >= sep["paraphrases"] - 2
    # So a lower threshold catches most paraphrases with few false merges (measured 0.844 / 0.900):
    assert lower.recall >= 0.8 and lower.precision >= 0.85
    # The default's recall on these hand-written paraphrases (measured: 0/32) is printed above and
    # reported in the README, not asserted: it is a known gap, not a property to keep.
