"""Speed and recall of the two in-memory search indexes (engine/ann.py, engine/text/fulltext.py).

    .venv/bin/python bench/indexes.py                     # 100k x 384 vectors, 100k documents
    .venv/bin/python bench/indexes.py --vectors 20000 --docs 20000 --queries 200   # quick run
    .venv/bin/python bench/indexes.py --skip fulltext \
        --vectors-file bench/.cache/vectors-minilm-102000.npy   # real MiniLM vectors

Vectors are clustered (1000 centroids + Gaussian noise, unit length; --noise sets the noise
per dimension relative to the centroid spread): random Gaussian vectors make every ANN index
look broken (ARCHITECTURE "Known traps"). --vectors-file uses real embeddings instead (rows
[0, n) are indexed, the next --queries rows are the queries). Recall@10 is measured against
exact brute force over the same vectors. Documents are sentences drawn from a Zipf-distributed
30k-word vocabulary; queries are 2-4 of those words.

The full-text part compares the two ways a store can make a document searchable before it
returns: the overlay (what FullTextIndex does: upsert, then the search sees it) and a tantivy
commit + reader reload per document (what the overlay avoids), on a big and a small index.
Run it on an idle machine: every figure here is CPU-bound on 2 cores.
"""

from __future__ import annotations

import argparse
import itertools
import os
import random
import statistics
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from dakera_server.engine.ann import (
    SELECTIVE_MAX_FRACTION,
    SELECTIVE_MAX_IDS,
    AdaptiveIndex,
    ExactIndex,
    HnswIndex,
)
from dakera_server.engine.text.fulltext import FullTextIndex

F32 = npt.NDArray[np.float32]
ROWS: list[tuple[str, str, str]] = []


def row(section: str, what: str, value: str) -> None:
    ROWS.append((section, what, value))
    print(f"  {what:<54} {value}", flush=True)


def per_query(fn: Callable[[Any], object], queries: Sequence[Any]) -> list[float]:
    """Milliseconds of ``fn(q)`` for each query."""
    out = []
    for q in queries:
        t0 = time.perf_counter()
        fn(q)
        out.append((time.perf_counter() - t0) * 1e3)
    return out


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def lat(values: list[float], worst: bool = False) -> str:
    text = f"p50 {statistics.median(values):7.3f} ms   p95 {pct(values, 0.95):7.3f} ms"
    return f"{text}   max {max(values):7.2f} ms" if worst else text


# --- vectors ---------------------------------------------------------------------------------


def load_vectors(args: argparse.Namespace) -> tuple[F32, F32, str]:
    if args.vectors_file:
        data = np.load(args.vectors_file).astype(np.float32)
        n = min(args.vectors, data.shape[0] - args.queries)
        return data[:n], data[n : n + args.queries], f"real embeddings from {args.vectors_file}"
    rng = np.random.default_rng(7)
    centres = rng.standard_normal((1000, args.dim)).astype(np.float32)

    def clustered(count: int) -> F32:
        labels = rng.integers(0, centres.shape[0], count)
        noise = args.noise * rng.standard_normal((count, args.dim)).astype(np.float32)
        points = centres[labels] + noise
        return (points / np.linalg.norm(points, axis=1, keepdims=True)).astype(np.float32)

    return clustered(args.vectors), clustered(args.queries), f"clustered, noise {args.noise}"


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


def exact_latency(ids: list[str], vectors: F32, queries: F32, size: int) -> list[float]:
    exact = ExactIndex(vectors.shape[1], "cosine", capacity=size)
    exact.upsert(ids[:size], vectors[:size])
    return per_query(lambda q: exact.search(q, 10), queries[:100])


def bench_vectors(args: argparse.Namespace) -> None:
    vectors, queries, source = load_vectors(args)
    n, dim = vectors.shape
    print(f"\nvector index: {n} x {dim} ({source}), cosine, {len(queries)} queries")
    ids = [f"mem-{i:07d}" for i in range(n)]
    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    qunit = queries / np.linalg.norm(queries, axis=1, keepdims=True)
    similarity = qunit @ unit.T
    truth_ids = [{ids[j] for j in r} for r in np.argsort(-similarity, axis=1)[:, :10]]

    hnsw = HnswIndex(dim, "cosine", capacity=n)
    t0 = time.perf_counter()
    for i in range(0, n, 1000):
        hnsw.upsert(ids[i : i + 1000], vectors[i : i + 1000])
    build = time.perf_counter() - t0
    row("ann", f"HNSW insert, batches of 1000 ({n} total)", f"{n / build:8.0f} vectors/s")
    single = []
    for i in range(300):
        t0 = time.perf_counter()
        hnsw.upsert([f"one-{i}"], queries[i % len(queries)].reshape(1, -1))
        single.append((time.perf_counter() - t0) * 1e3)
    row("ann", "HNSW insert one vector", lat(single))
    hnsw.delete([f"one-{i}" for i in range(300)])

    for ef in (16, 32, 64, 128, 256):
        times, found = [], 0
        for q, want in zip(queries, truth_ids, strict=True):
            t0 = time.perf_counter()
            hits = hnsw.search(q, 10) if ef == 64 else hnsw.search(q, 10, ef=ef)
            times.append((time.perf_counter() - t0) * 1e3)
            found += len(want & {h for h, _ in hits})
        recall = found / (10 * len(queries))
        qps = 1e3 / statistics.mean(times)
        row(
            "ann",
            f"HNSW k=10 ef={ef:<3}",
            f"{lat(times)}   {qps:6.0f} QPS   recall@10 {recall:.3f}",
        )

    for fraction in (0.5, 0.1, 0.05, 0.01, 0.002):
        step = round(1 / fraction)
        allowed = set(ids[::step])
        mask = np.zeros(n, dtype=bool)
        mask[::step] = True
        times, found, short = [], 0, 0
        for qi, q in enumerate(queries[:100]):
            t0 = time.perf_counter()
            hits = hnsw.search(q, 10, allowed.__contains__)
            times.append((time.perf_counter() - t0) * 1e3)
            short += len(hits) < 10
            want = np.argsort(-np.where(mask, similarity[qi], -9.0))[:10]
            found += len({ids[j] for j in want} & {h for h, _ in hits})
        cut = max(SELECTIVE_MAX_IDS, SELECTIVE_MAX_FRACTION * n)
        path = "exact rows" if fraction * n < cut else "hnswlib filter"
        row(
            "ann",
            f"HNSW k=10, filter passing {fraction:.1%} ({path})",
            f"{lat(times)}   recall@10 {found / 1000:.3f}   short answers {short}",
        )

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
    del restored, blob, hnsw

    for size in sorted({min(n, 10_000), n}):
        row("ann", f"Exact k=10 over {size}", lat(exact_latency(ids, vectors, queries, size)))

    size = min(n, 10_000)
    adaptive = AdaptiveIndex(dim, "cosine", exact_threshold=size - 1)
    adaptive.upsert(ids[: size - 1], vectors[: size - 1])
    t0 = time.perf_counter()
    adaptive.upsert(ids[size - 1 : size], vectors[size - 1 : size])
    switch = time.perf_counter() - t0
    row("ann", f"Adaptive switch exact->HNSW at {size} (that one call)", f"{switch:6.2f} s")


# --- full text -------------------------------------------------------------------------------


def make_vocabulary(rng: random.Random, size: int) -> list[str]:
    syllables = "ka lo mi ter san vel dor qui ne ras po lin bu fe gor hal jun mek tos wa".split()
    words: set[str] = set()
    while len(words) < size:
        words.add("".join(rng.choice(syllables) for _ in range(rng.randint(2, 4))))
    return sorted(words)


def per_doc_commit(index: FullTextIndex, make: Callable[[], str], count: int) -> list[float]:
    """Upsert one document and force the tantivy commit + reload, as a no-overlay design would."""
    index.flush()
    times = []
    for i in range(count):
        t0 = time.perf_counter()
        index.upsert([(f"c-{i}", make())])
        index.flush()
        times.append((time.perf_counter() - t0) * 1e3)
    return times


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

    row(
        "fulltext",
        "query k=10 (all committed)",
        lat(per_query(lambda q: index.search(q, 10), queries)),
    )

    overlay: list[float] = []
    for i in range(300):
        marker = f"fresh{i}marker"
        t0 = time.perf_counter()
        index.upsert([(f"new-{i}", f"{sentence()} {marker}")])
        hits = index.search(marker, 1)
        overlay.append((time.perf_counter() - t0) * 1e3)
        assert hits and hits[0][0] == f"new-{i}"
    row("fulltext", "upsert one + search finds it (overlay, shipped)", lat(overlay, worst=True))

    def upsert_one() -> None:
        index.upsert([("same", sentence())])

    row(
        "fulltext",
        "upsert one (cost on the store path)",
        lat(per_query(lambda _: upsert_one(), range(300))),
    )
    row(
        "fulltext",
        f"query k=10 (<= {index._max_pending} docs pending in overlay)",
        lat(per_query(lambda q: index.search(q, 10), queries)),
    )
    allowed = {d for d, _ in docs[::100]}
    row(
        "fulltext",
        "query k=10, filter passing 1%",
        lat(per_query(lambda q: index.search(q, 10, allowed.__contains__), queries)),
    )
    commits = per_doc_commit(index, sentence, 200)
    row(
        "fulltext",
        f"upsert one + commit + reload, {n} docs (not shipped)",
        lat(commits, worst=True),
    )

    small = FullTextIndex()
    small.upsert(docs[:500])
    commits = per_doc_commit(small, sentence, 200)
    row(
        "fulltext", "upsert one + commit + reload, 500 docs (not shipped)", lat(commits, worst=True)
    )

    t0 = time.perf_counter()
    stats = index.stats()
    row(
        "fulltext",
        "stats() (term dictionary walk, uncached)",
        f"{(time.perf_counter() - t0) * 1e3:7.1f} ms   {stats.unique_terms} terms",
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--vectors", type=int, default=100_000)
    parser.add_argument("--dim", type=int, default=384)
    parser.add_argument("--noise", type=float, default=0.5)
    parser.add_argument("--vectors-file", default=None, help="an .npy of real embeddings")
    parser.add_argument("--docs", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=500)
    parser.add_argument("--skip", choices=["ann", "fulltext"], default=None)
    args = parser.parse_args()
    load = os.getloadavg()[0]
    print(f"load average at start: {load:.1f} on {os.cpu_count()} CPUs")
    if args.skip != "ann":
        bench_vectors(args)
    if args.skip != "fulltext":
        bench_fulltext(args.docs, args.queries)
    print(f"\nload average at end: {os.getloadavg()[0]:.1f}")
    print("\n| section | measurement | result |\n|---|---|---|")
    for section, what, value in ROWS:
        print(f"| {section} | {what} | {' '.join(value.split())} |")


if __name__ == "__main__":
    main()
