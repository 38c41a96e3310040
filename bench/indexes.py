"""Speed and recall of the two in-memory search indexes (engine/ann.py, engine/fulltext.py).

    .venv/bin/python bench/indexes.py                     # 100k x 384 vectors, 100k documents
    .venv/bin/python bench/indexes.py --vectors 20000 --docs 20000 --queries 200   # quick run

Vectors are clustered (1000 centroids + Gaussian noise, unit length): random Gaussian vectors
make every ANN index look broken (ARCHITECTURE "Known traps"). Recall@10 is measured against
exact brute force over the same vectors. Documents are memory-like sentences drawn from a
Zipf-distributed 30k-word vocabulary; queries are 2-4 of those words.

The full-text part compares the two ways a store can make a document searchable before it
returns: the overlay (what FullTextIndex does: upsert, then the search sees it) and a tantivy
commit + reader reload per document (what the overlay avoids).
"""

from __future__ import annotations

import argparse
import itertools
import random
import statistics
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from dakera_server.engine.ann import AdaptiveIndex, ExactIndex, HnswIndex
from dakera_server.engine.fulltext import FullTextIndex

F32 = npt.NDArray[np.float32]
ROWS: list[tuple[str, str, str]] = []


def row(section: str, what: str, value: str) -> None:
    ROWS.append((section, what, value))
    print(f"  {what:<52} {value}", flush=True)


def clustered(n: int, dim: int, rng: np.random.Generator, centres: F32) -> F32:
    labels = rng.integers(0, centres.shape[0], n)
    points = centres[labels] + 0.5 * rng.standard_normal((n, dim)).astype(np.float32)
    return (points / np.linalg.norm(points, axis=1, keepdims=True)).astype(np.float32)


def timed(fn: Callable[[], object], repeat: int) -> list[float]:
    """Milliseconds per call."""
    out = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t0) * 1e3)
    return out


def per_query(fn: Callable[[Any], object], queries: Sequence[Any]) -> list[float]:
    """Milliseconds of ``fn(q)`` for each query."""
    out = []
    for q in queries:
        t0 = time.perf_counter()
        fn(q)
        out.append((time.perf_counter() - t0) * 1e3)
    return out


def concurrent_qps(index: HnswIndex, queries: F32, threads: int, seconds: float = 2.0) -> float:
    done = [0] * threads
    stop = threading.Event()

    def worker(slot: int) -> None:
        i = slot
        while not stop.is_set():
            index.search(queries[i % len(queries)], 10)
            done[slot] += 1
            i += threads

    workers = [threading.Thread(target=worker, args=(s,)) for s in range(threads)]
    for w in workers:
        w.start()
    time.sleep(seconds)
    stop.set()
    for w in workers:
        w.join()
    return sum(done) / seconds


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def lat(values: list[float]) -> str:
    return f"p50 {statistics.median(values):7.3f} ms   p95 {pct(values, 0.95):7.3f} ms"


# --- vectors ---------------------------------------------------------------------------------


def bench_vectors(n: int, dim: int, n_queries: int) -> None:
    print(f"\nvector index: {n} x {dim} clustered, cosine, {n_queries} queries")
    rng = np.random.default_rng(7)
    centres = rng.standard_normal((1000, dim)).astype(np.float32)
    vectors = clustered(n, dim, rng, centres)
    queries = clustered(n_queries, dim, rng, centres)
    ids = [f"mem-{i:07d}" for i in range(n)]
    truth = np.argsort(-(queries @ vectors.T), axis=1)[:, :10]
    truth_ids = [{ids[j] for j in r} for r in truth]

    hnsw = HnswIndex(dim, "cosine", capacity=n)
    t0 = time.perf_counter()
    for i in range(0, n, 1000):
        hnsw.upsert(ids[i : i + 1000], vectors[i : i + 1000])
    build = time.perf_counter() - t0
    row("ann", f"HNSW insert, batches of 1000 ({n} total)", f"{n / build:8.0f} vectors/s")
    extra = clustered(300, dim, rng, centres)
    single: list[float] = []
    for i in range(300):
        t0 = time.perf_counter()
        hnsw.upsert([f"one-{i}"], extra[i : i + 1])
        single.append((time.perf_counter() - t0) * 1e3)
    row("ann", "HNSW insert one vector", lat(single))
    hnsw.delete([f"one-{i}" for i in range(300)])

    for ef in (16, 32, 64, 128, 256):
        hnsw.search(queries[0], 10, ef=ef)
        found = 0
        times = []
        for q, want in zip(queries, truth_ids, strict=True):
            t0 = time.perf_counter()
            hits = hnsw.search(q, 10, ef=ef) if ef != 64 else hnsw.search(q, 10)
            times.append((time.perf_counter() - t0) * 1e3)
            found += len(want & {h for h, _ in hits})
        recall = found / (10 * n_queries)
        qps = 1e3 / statistics.mean(times)
        row(
            "ann",
            f"HNSW k=10 ef={ef:<3}",
            f"{lat(times)}   {qps:6.0f} QPS   recall@10 {recall:.3f}",
        )

    for label, fraction in (("50% pass (hnswlib filter)", 0.5), ("1% pass (exact subset)", 0.01)):
        step = round(1 / fraction)
        allowed = set(ids[::step])
        times = []
        counts = []
        for q in queries[:100]:
            t0 = time.perf_counter()
            hits = hnsw.search(q, 10, allowed.__contains__)
            times.append((time.perf_counter() - t0) * 1e3)
            counts.append(len(hits))
        row("ann", f"HNSW k=10 filtered, {label}", f"{lat(times)}   min results {min(counts)}")

    for threads in (1, 2):
        qps = concurrent_qps(hnsw, queries, threads)
        row("ann", f"HNSW k=10 ef=64, {threads} search thread(s)", f"{qps:8.0f} QPS")

    t0 = time.perf_counter()
    blob = hnsw.to_bytes()
    save = time.perf_counter() - t0
    t0 = time.perf_counter()
    restored = HnswIndex.from_bytes(blob)
    load = time.perf_counter() - t0
    same = all(restored.search(q, 10) == hnsw.search(q, 10) for q in queries[:50])
    row(
        "ann",
        f"HNSW snapshot {n}: to_bytes / from_bytes",
        f"{save:6.2f} s / {load:6.2f} s   {len(blob) / 2**20:6.0f} MiB   identical={same}",
    )
    del restored, blob

    for size in sorted({min(n, 10_000), n}):
        row("ann", f"Exact k=10 over {size}", lat(exact_latency(ids, vectors, queries, size)))

    size = min(n, 10_000)
    adaptive = AdaptiveIndex(dim, "cosine", exact_threshold=size - 1)
    adaptive.upsert(ids[: size - 1], vectors[: size - 1])
    t0 = time.perf_counter()
    adaptive.upsert(ids[size - 1 : size], vectors[size - 1 : size])
    row(
        "ann",
        f"Adaptive switch exact->HNSW at {size} (one call)",
        f"{time.perf_counter() - t0:6.2f} s",
    )


def exact_latency(ids: list[str], vectors: F32, queries: F32, size: int) -> list[float]:
    exact = ExactIndex(vectors.shape[1], "cosine", capacity=size)
    exact.upsert(ids[:size], vectors[:size])
    return per_query(lambda q: exact.search(q, 10), queries[:100])


# --- full text -------------------------------------------------------------------------------


def make_vocabulary(rng: random.Random, size: int) -> list[str]:
    syllables = "ka lo mi ter san vel dor qui ne ras po lin bu fe gor hal jun mek tos wa".split()
    words: set[str] = set()
    while len(words) < size:
        words.add("".join(rng.choice(syllables) for _ in range(rng.randint(2, 4))))
    return sorted(words)


def bench_fulltext(n: int, n_queries: int) -> None:
    print(f"\nfull-text index: {n} documents, {n_queries} queries")
    rng = random.Random(11)
    vocab = make_vocabulary(rng, 30_000)
    cumulative = list(itertools.accumulate(1 / (rank + 1) for rank in range(len(vocab))))

    def words(count: int) -> str:
        return " ".join(rng.choices(vocab, cum_weights=cumulative, k=count))

    def sentence() -> str:
        return words(rng.randint(8, 40))

    docs = [(f"doc-{i:07d}", sentence()) for i in range(n)]
    queries = [words(rng.randint(2, 4)) for _ in range(n_queries)]

    index = FullTextIndex()
    t0 = time.perf_counter()
    index.upsert(docs)
    bulk = time.perf_counter() - t0
    row("fulltext", f"bulk index {n} docs (one upsert)", f"{bulk:6.2f} s   {n / bulk:8.0f} docs/s")

    times = per_query(lambda q: index.search(q, 10), queries)
    row("fulltext", "query k=10 (committed only)", lat(times))

    overlay_times = []
    for i in range(300):
        marker = f"fresh{i}marker"
        t0 = time.perf_counter()
        index.upsert([(f"new-{i}", f"{sentence()} {marker}")])
        hits = index.search(marker, 1)
        overlay_times.append((time.perf_counter() - t0) * 1e3)
        assert hits and hits[0][0] == f"new-{i}"
    row("fulltext", "upsert one + searchable (overlay, shipped)", lat(overlay_times))

    upsert_only = timed(lambda: index.upsert([("same", sentence())]), 300)
    row("fulltext", "upsert one (store path cost)", lat(upsert_only))

    times = per_query(lambda q: index.search(q, 10), queries)
    row("fulltext", f"query k=10 (with <= {index._max_pending} pending overlay docs)", lat(times))

    allowed = {d for d, _ in docs[::100]}
    times = per_query(lambda q: index.search(q, 10, allowed.__contains__), queries)
    row("fulltext", "query k=10, filter passing 1%", lat(times))

    index.flush()
    commit_times = []
    for i in range(200):
        marker = f"commit{i}marker"
        t0 = time.perf_counter()
        index.upsert([(f"c-{i}", f"{sentence()} {marker}")])
        index.flush()  # tantivy commit + wait for merges + reader reload
        commit_times.append((time.perf_counter() - t0) * 1e3)
    row("fulltext", "upsert one + commit + reload (per-doc commit)", lat(commit_times))

    stats_times = timed(index.stats, 3)
    row("fulltext", "stats() (terms walk, first call)", f"{stats_times[0]:7.1f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--vectors", type=int, default=100_000)
    parser.add_argument("--dim", type=int, default=384)
    parser.add_argument("--docs", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=500)
    parser.add_argument("--skip", choices=["ann", "fulltext"], default=None)
    args = parser.parse_args()
    if args.skip != "ann":
        bench_vectors(args.vectors, args.dim, args.queries)
    if args.skip != "fulltext":
        bench_fulltext(args.docs, args.queries)
    print("\n| section | measurement | result |\n|---|---|---|")
    for section, what, value in ROWS:
        print(f"| {section} | {what} | {' '.join(value.split())} |")


if __name__ == "__main__":
    main()
