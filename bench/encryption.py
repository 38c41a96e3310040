"""Issue 6: the cost of encryption at rest, side by side, and key-rotation throughput.

    .venv/bin/python bench/encryption.py            # 2,000 memories, 50,000 raw vectors
    .venv/bin/python bench/encryption.py --memories 500 --vectors 10000   # quicker

Two servers run one after the other on the same workload (one plaintext, one with
DAKERA_ENCRYPTION_KEY): store p50/p95 and recall p50/p95 through the SDK. Then the encrypted
one rotates its key over every record (memories, vectors, sessions, events) and the rate is
records re-encrypted per second. Targets: encryption ≤ 10 % slower; rotation ≥ 20,000 records/s.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx
from dakera import DakeraClient

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.conftest import ROOT_KEY  # noqa: E402
from tests.processes import spawn_server  # noqa: E402

from bench.latency import pct  # noqa: E402
from bench.textgen import memory_texts, queries  # noqa: E402

KEY = "bench encryption passphrase"


def workload(url: str, memories: int, vectors: int) -> dict[str, float]:
    client = DakeraClient(url, api_key=ROOT_KEY, timeout=300)
    store_ms = []
    for text in memory_texts(memories):
        t0 = time.perf_counter()
        client.store_memory("enc-bench", text)
        store_ms.append((time.perf_counter() - t0) * 1000)
    recall_ms = []
    for query in queries(300):
        t0 = time.perf_counter()
        client.recall("enc-bench", query, top_k=10)
        recall_ms.append((time.perf_counter() - t0) * 1000)
    client.close()
    with httpx.Client(
        base_url=url, headers={"Authorization": f"Bearer {ROOT_KEY}"}, timeout=300
    ) as http:
        for start in range(0, vectors, 5000):
            batch = [
                {"id": f"v{i}", "values": [1.0, float(i % 97), 0.5, 0.25]}
                for i in range(start, min(vectors, start + 5000))
            ]
            http.post("/v1/namespaces/encbench/vectors", json={"vectors": batch}).raise_for_status()
    return {
        "store_p50_ms": statistics.median(store_ms),
        "store_p95_ms": pct(store_ms, 0.95),
        "recall_p50_ms": statistics.median(recall_ms),
        "recall_p95_ms": pct(recall_ms, 0.95),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--memories", type=int, default=2000)
    parser.add_argument("--vectors", type=int, default=50_000)
    args = parser.parse_args()
    results: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for label, env in (("plaintext", {}), ("encrypted", {"DAKERA_ENCRYPTION_KEY": KEY})):
            server = spawn_server(work / label, work / f"{label}.log", **env)
            try:
                results[label] = workload(server.url, args.memories, args.vectors)
                if label == "encrypted":
                    with httpx.Client(
                        base_url=server.url,
                        headers={"Authorization": f"Bearer {ROOT_KEY}"},
                        timeout=600,
                    ) as http:
                        t0 = time.perf_counter()
                        answer = http.post(
                            "/v1/admin/encryption/rotate-key", json={"new_key": KEY + " v2"}
                        )
                        elapsed = time.perf_counter() - t0
                        answer.raise_for_status()
                        rotated = answer.json()["rotated"]
                        results[label]["rotated_records"] = rotated
                        results[label]["rotation_s"] = elapsed
                        results[label]["rotation_records_per_s"] = rotated / elapsed
            finally:
                server.stop()
    plain, enc = results["plaintext"], results["encrypted"]
    print("| measure | plaintext | encrypted | ratio |\n|---|---|---|---|")
    for key in ("store_p50_ms", "store_p95_ms", "recall_p50_ms", "recall_p95_ms"):
        print(f"| {key} | {plain[key]:.2f} | {enc[key]:.2f} | {enc[key] / plain[key]:.3f} |")
    print(
        f"| rotation | {enc['rotated_records']:.0f} records | {enc['rotation_s']:.2f} s | "
        f"{enc['rotation_records_per_s']:.0f} records/s |"
    )
    summary = {"plaintext": plain, "encrypted": enc}
    print("SUMMARY " + json.dumps(summary, default=lambda v: round(v, 3)))


if __name__ == "__main__":
    main()
