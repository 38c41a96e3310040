"""Backups, restore, import and export at scale (issue 14's targets), against real servers.

    .venv/bin/python bench/portability.py                  # 100,000 memories
    .venv/bin/python bench/portability.py --n 20000        # quicker

Steps, each on ``dakera-server serve`` subprocesses (rate limits off):

1. A data dir pre-filled through the storage layer with ``--n`` memories of one agent
   (``bench/latency.py``'s ``prefill``: generated sentences, vectors from real MiniLM embeddings
   re-used with noise); the server starts on it and its entity backfill is waited for.
2. Store latency idle: ``--probes`` single stores (SDK, one at a time), p50/p95.
3. An online backup while a client keeps storing: the backup's wall time (the route answers
   when the file is complete and fsynced) and the store p50/p95 while it ran; then a backup
   alone, with the server's CPU seconds for it (``/proc/<pid>/stat``: on a shared machine
   wall times swing with the load, CPU seconds much less; restore, import and export report
   theirs too).
4. Export of the big agent as jsonl and csv: memories per second (whole response read).
5. Restore into a fresh server: upload (gzip), restore, poll until completed and
   ``/health/ready`` answers 200 ("ready to serve"): seconds from the restore request.
6. Import of ``--import-rows`` new jsonl rows (embedded on the way, ``BATCH_ROWS`` per batch)
   into a new agent of a fresh server: memories per second from the request to the job's
   ``done`` (the restored server is busy building its HNSW graph in the background).

Prints each number, then ``PORTABILITY_SUMMARY {json}`` with the load average at start and end.
2 shared cores: compare numbers within one run.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import orjson

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.conftest import ROOT_KEY  # noqa: E402
from tests.processes import spawn_server  # noqa: E402

from bench.latency import BASE_EMBEDDED, pct, prefill, wait_for_backfill  # noqa: E402
from bench.textgen import memory_texts  # noqa: E402

AGENT = "big"
HEADERS = {"Authorization": f"Bearer {ROOT_KEY}"}
TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system, every thread) the process has used so far: on a shared machine
    wall times swing with the load, CPU seconds much less."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def store_latency(
    http: httpx.Client, count: int, agent: str, stop: threading.Event | None = None
) -> list[float]:
    """Single stores one after the other; milliseconds each (until ``stop`` when given)."""
    samples = []
    i = 0
    while (stop is None and i < count) or (stop is not None and not stop.is_set()):
        started = time.perf_counter()
        answer = http.post(
            "/v1/memory/store", json={"agent_id": agent, "content": f"probe {i} {agent}"}
        )
        assert answer.status_code == 200, answer.text
        samples.append((time.perf_counter() - started) * 1000.0)
        i += 1
    return samples


def summary(samples: list[float]) -> dict[str, float]:
    return {
        "n": len(samples),
        "p50_ms": round(statistics.median(samples), 2),
        "p95_ms": round(pct(samples, 95), 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--probes", type=int, default=150)
    parser.add_argument("--import-rows", type=int, default=5000)
    args = parser.parse_args()
    # Three data dirs of ~0.5 GB each at 100k memories: removed whatever happens.
    work = Path(tempfile.mkdtemp(prefix="bench-portability-"))
    try:
        run(args, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def run(args: argparse.Namespace, work: Path) -> None:
    """Every step on servers whose data dirs live under ``work``."""
    from dakera_server.engine.portability.imports import BATCH_ROWS
    from dakera_server.engine.text.providers import create_provider

    load_start = os.getloadavg()
    result: dict[str, Any] = {"memories": args.n, "import_batch_rows": BATCH_ROWS}
    base = create_provider("builtin").embed(memory_texts(min(BASE_EMBEDDED, 2000), seed=5)).vectors
    prefill(work / "source", AGENT, args.n, base)
    log = work / "server.log"
    env = {"RATE_LIMIT_RPS": "0", "DAKERA_AUTOPILOT_ENABLED": "false"}
    source = spawn_server(work / "source", log, ready_timeout=900, **env)
    try:
        wait_for_backfill(log)
        with httpx.Client(base_url=source.url, headers=HEADERS, timeout=600) as http:
            store_latency(http, 20, "warmup")
            result["store_idle"] = summary(store_latency(http, args.probes, "idle"))
            print("store idle", result["store_idle"], flush=True)
            stop = threading.Event()
            during: list[float] = []

            def probe() -> None:
                with httpx.Client(base_url=source.url, headers=HEADERS, timeout=600) as own:
                    during.extend(store_latency(own, 0, "during", stop))

            prober = threading.Thread(target=probe)
            prober.start()
            time.sleep(0.5)
            started = time.perf_counter()
            backup = http.post("/v1/admin/backups", json={"name": "bench"}).json()
            result["backup_s"] = round(time.perf_counter() - started, 2)
            stop.set()
            prober.join()
            cpu = cpu_seconds(source.process.pid)
            started = time.perf_counter()
            alone = http.post("/v1/admin/backups", json={"name": "alone"}).json()
            result["backup_alone_s"] = round(time.perf_counter() - started, 2)
            result["backup_alone_server_cpu_s"] = round(cpu_seconds(source.process.pid) - cpu, 2)
            print(
                "backup alone:",
                result["backup_alone_s"],
                "s wall,",
                result["backup_alone_server_cpu_s"],
                "s server CPU",
                alone["size_bytes"],
                flush=True,
            )
            result["backup_bytes"] = backup["size_bytes"]
            result["store_during_backup"] = summary(during)
            result["p95_ratio_during_backup"] = round(
                result["store_during_backup"]["p95_ms"] / result["store_idle"]["p95_ms"], 2
            )
            print("backup", result["backup_s"], "s", backup["size_bytes"], "bytes", flush=True)
            print("store during backup", result["store_during_backup"], flush=True)
            for fmt in ("jsonl", "csv"):
                cpu = cpu_seconds(source.process.pid)
                started = time.perf_counter()
                body = http.get("/v1/export", params={"agent_id": AGENT, "format": fmt}).content
                seconds = time.perf_counter() - started
                rows = body.count(b"\n") - (1 if fmt == "csv" else 0)
                result[f"export_{fmt}_per_s"] = round(rows / seconds)
                used = cpu_seconds(source.process.pid) - cpu
                result[f"export_{fmt}_per_server_cpu_s"] = round(rows / max(used, 1e-3))
                print(f"export {fmt}: {rows} rows in {seconds:.2f} s", flush=True)
            blob = http.get(f"/v1/admin/backups/{backup['backup_id']}/download").content
    finally:
        source.stop()

    target = spawn_server(work / "target", log, ready_timeout=900, **env)
    try:
        with httpx.Client(base_url=target.url, headers=HEADERS, timeout=600) as http:
            uploaded = http.post(
                "/v1/admin/backups/upload",
                content=blob,
                headers={"Content-Type": "application/gzip"},
            ).json()
            cpu = cpu_seconds(target.process.pid)
            started = time.perf_counter()
            job = http.post(
                "/v1/admin/backups/restore", json={"backup_id": uploaded["backup_id"]}
            ).json()
            status = job
            while status["status"] == "running":
                time.sleep(0.05)
                status = http.get(f"/v1/admin/backups/restore/{job['restore_id']}").json()
            while http.get("/health/ready").status_code != 200:
                time.sleep(0.05)
            result["restore_to_ready_s"] = round(time.perf_counter() - started, 2)
            result["restore_server_cpu_s"] = round(cpu_seconds(target.process.pid) - cpu, 2)
            assert status["status"] == "completed", status
            print(
                "restore to ready",
                result["restore_to_ready_s"],
                "s,",
                result["restore_server_cpu_s"],
                "s server CPU",
                status["counts"],
                flush=True,
            )
    finally:
        target.stop()

    # On a server of its own: the restored one builds its 100k HNSW graph in the background.
    importer = spawn_server(work / "importer", log, ready_timeout=900, **env)
    target = importer
    try:
        with httpx.Client(base_url=importer.url, headers=HEADERS, timeout=600) as http:
            texts = memory_texts(args.import_rows, seed=99)
            rows = b"\n".join(orjson.dumps({"content": t, "tags": ["imported"]}) for t in texts)
            cpu = cpu_seconds(target.process.pid)
            started = time.perf_counter()
            job = http.post(
                "/v1/import", params={"agent_id": "imported"}, files={"file": ("rows.jsonl", rows)}
            ).json()
            while job["status"] == "running":
                time.sleep(0.1)
                job = http.get(f"/v1/import/{job['job_id']}/status").json()
            seconds = time.perf_counter() - started
            assert job["imported"] == args.import_rows, job
            result["import_jsonl_per_s"] = round(args.import_rows / seconds)
            used = cpu_seconds(target.process.pid) - cpu
            result["import_jsonl_per_server_cpu_s"] = round(args.import_rows / used)
            print(f"import: {args.import_rows} rows in {seconds:.2f} s", flush=True)
    finally:
        importer.stop()
    result["load_average_start"] = [round(x, 2) for x in load_start]
    result["load_average_end"] = [round(x, 2) for x in os.getloadavg()]
    print("PORTABILITY_SUMMARY " + json.dumps(result))


if __name__ == "__main__":
    main()
