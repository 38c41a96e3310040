"""Document import throughput and attachment streaming memory.

    .venv/bin/python bench/documents.py                      # both parts, defaults below
    .venv/bin/python bench/documents.py --pages 60 --words 250,450
    .venv/bin/python bench/documents.py --skip-import --sizes 1,32,128

Part 1, import: a text PDF of ``--pages`` pages (fpdf2, ``--words`` words per page, one
outline entry per page) is uploaded to a ``dakera-server serve`` subprocess and imported
through ``POST .../attachments/{ref}/document``; the time runs from the import request to the
job's ``Completed`` (extraction, chunking, embedding every chunk, the store commit, graph
edges). Side by side in the same run, in this process: pypdf extraction alone, and MiniLM
embedding alone of the very chunks the server made. Pages per second for each.

Part 2, streaming: files of ``--sizes`` MiB are uploaded (streamed from a generator, no
Content-Length) and downloaded (read and dropped chunk by chunk) against a server with
encryption at rest on; the server's peak resident memory (``VmHWM`` of ``/proc/<pid>/status``)
is printed after each. Flat peaks across sizes mean neither direction holds a file in memory.

Wall-clock rates depend on what else runs; each rate is also given per CPU-second of the
process doing the work (the server's ``/proc`` CPU time for the import), which a shared machine
barely changes: with two dedicated cores an import runs at up to twice its per-CPU-second rate
(the embedding batch is spread over both). Prints ``DOCUMENTS_SUMMARY {json}``; note the load
average printed with every number.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.conftest import ROOT_KEY  # noqa: E402
from tests.files import make_pages  # noqa: E402
from tests.processes import spawn_server  # noqa: E402

from dakera_server.config import Settings  # noqa: E402
from dakera_server.engine.documents.chunker import ChunkPlan, chunk_document  # noqa: E402
from dakera_server.engine.documents.extract import extract  # noqa: E402
from dakera_server.engine.documents.importer import ImportRequest, prepare  # noqa: E402
from dakera_server.engine.documents.limits import ImportLimits  # noqa: E402
from dakera_server.engine.text.providers import create_provider  # noqa: E402
from dakera_server.engine.text.threads import (  # noqa: E402
    limit_numeric_threads,
    set_embedding_threads,
)

HEADERS = {"Authorization": f"Bearer {ROOT_KEY}"}
LANES = {"DAKERA_ATTACHMENTS": "true", "DAKERA_DOCUMENTS": "true"}
MIB = 1 << 20


def load() -> str:
    return "/".join(f"{x:.2f}" for x in os.getloadavg())


def peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (``/proc/<pid>/stat``)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def wait_job(http: httpx.Client, job_id: str, agent: str) -> dict[str, Any]:
    while True:
        job = http.get(f"/v1/memory/documents/jobs/{job_id}", params={"agent_id": agent}).json()
        if job["status"] in ("Completed", "Failed", "Cancelled"):
            return dict(job)
        time.sleep(0.05)


def import_bench(pages: int, words: int, tmp: Path) -> dict[str, Any]:
    data = make_pages(pages, words_per_page=words)
    settings = Settings()
    limits = ImportLimits(
        settings.document_max_pages, settings.document_max_text_bytes, settings.document_max_chunks
    )
    # The server's own defaults (engine/core.py): one BLAS thread, a batch over every core.
    limit_numeric_threads(settings.numeric_threads)
    set_embedding_threads(settings.embedding_threads)
    embedder = create_provider("builtin")
    prepared = prepare(
        ImportRequest(agent_id="bench", data=data, media_type="application/pdf"),
        defaults=ChunkPlan(settings.document_chunk_tokens, settings.document_chunk_overlap_tokens),
        model_window=embedder.max_tokens,
        limits=limits,
        max_content_bytes=settings.max_memory_content_bytes,
        now=int(time.time()),
        text_only=False,
    )
    started, cpu = time.perf_counter(), time.process_time()
    extracted = extract("pdf", data, limits)
    extract_s = time.perf_counter() - started
    extract_cpu = time.process_time() - cpu
    chunks = chunk_document(extracted, prepared.plan)
    texts = [" › ".join(("Part", *c.path)) + "\n\n" + c.text for c in chunks]
    embedder.embed(texts[:4])  # warm
    started, cpu = time.perf_counter(), time.process_time()
    embedder.embed(texts)
    embed_s = time.perf_counter() - started
    embed_cpu = time.process_time() - cpu

    data_dir = tmp / f"import-{pages}-{words}"
    server = spawn_server(data_dir, tmp / f"import-{pages}-{words}.log", **LANES)
    try:
        with httpx.Client(base_url=server.url, headers=HEADERS, timeout=600) as http:
            space = "_dakera_agent_bench"
            ref = http.post(
                f"/v1/namespaces/{space}/attachments",
                content=data,
                headers={"Content-Type": "application/pdf"},
            ).json()["attachment_ref"]
            # Warm the server's model and graph on a small import first.
            warm = http.post(
                "/v1/memory/documents", json={"agent_id": "warm", "content": "w " * 50}
            )
            wait_job(http, warm.json()["job_id"], "warm")
            began_load = load()
            cpu_before = cpu_seconds(server.process.pid)
            started = time.perf_counter()
            accepted = http.post(
                f"/v1/namespaces/{space}/attachments/{ref}/document", json={"agent_id": "bench"}
            ).json()
            job = wait_job(http, accepted["job_id"], "bench")
            import_s = time.perf_counter() - started
            import_cpu_s = cpu_seconds(server.process.pid) - cpu_before
            assert job["status"] == "Completed", job
            detail = http.get(
                f"/v1/memory/documents/{accepted['document_id']}", params={"agent_id": "bench"}
            ).json()
    finally:
        server.stop()
    return {
        "pages": pages,
        "words_per_page": words,
        "chunks": detail["document"]["chunk_count"],
        "tokens_per_chunk_budget": prepared.plan.max_tokens,
        "extract_pages_per_s": round(pages / extract_s, 1),
        "embed_only_pages_per_s": round(pages / embed_s, 1),
        "extract_pages_per_cpu_s": round(pages / extract_cpu, 1),
        "embed_only_pages_per_cpu_s": round(pages / embed_cpu, 1),
        "import_pages_per_s": round(pages / import_s, 1),
        "import_s": round(import_s, 2),
        # Load-independent: pages per CPU-second of the server; the import spreads its
        # embedding over both cores, so 2 dedicated cores give at most twice this.
        "import_pages_per_cpu_s": round(pages / import_cpu_s, 1),
        "import_cpu_s": round(import_cpu_s, 2),
        "load_before": began_load,
        "load_after": load(),
    }


def stream_bench(sizes: list[int], tmp: Path) -> list[dict[str, Any]]:
    server = spawn_server(
        tmp / "stream",
        tmp / "stream.log",
        DAKERA_ENCRYPTION_KEY="bench passphrase 123",
        DAKERA_MAX_ATTACHMENT_BYTES=str(max(sizes) * MIB + MIB),
        **LANES,
    )
    pid = server.process.pid
    rows = []
    try:
        with httpx.Client(base_url=server.url, headers=HEADERS, timeout=600) as http:
            http.get("/v1/namespaces/bench/attachments")
            baseline = peak_rss_mib(pid)
            for size in sizes:

                def body(size: int = size) -> Iterator[bytes]:
                    block = os.urandom(MIB)
                    for _ in range(size):
                        yield block

                started = time.perf_counter()
                answer = http.post(
                    "/v1/namespaces/bench/attachments",
                    content=body(),
                    headers={"Content-Type": "application/octet-stream"},
                )
                assert answer.status_code == 201, answer.text
                upload_s = time.perf_counter() - started
                after_upload = peak_rss_mib(pid)
                ref = answer.json()["attachment_ref"]
                started = time.perf_counter()
                received = 0
                with http.stream("GET", f"/v1/namespaces/bench/attachments/{ref}") as response:
                    for chunk in response.iter_bytes():
                        received += len(chunk)
                download_s = time.perf_counter() - started
                assert received == size * MIB
                rows.append(
                    {
                        "mib": size,
                        "upload_mib_per_s": round(size / upload_s, 1),
                        "download_mib_per_s": round(size / download_s, 1),
                        "peak_rss_mib_baseline": round(baseline, 1),
                        "peak_rss_mib_after_upload": round(after_upload, 1),
                        "peak_rss_mib_after_download": round(peak_rss_mib(pid), 1),
                        "load": load(),
                    }
                )
                print(json.dumps(rows[-1]), flush=True)
    finally:
        server.stop()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pages", type=int, default=60)
    parser.add_argument("--words", default="250,450", help="words per page, comma-separated")
    parser.add_argument("--sizes", default="1,16,64,256", help="MiB per file, comma-separated")
    parser.add_argument("--skip-import", action="store_true")
    parser.add_argument("--skip-stream", action="store_true")
    args = parser.parse_args()
    summary: dict[str, Any] = {"cpus": os.cpu_count(), "load_at_start": load()}
    with tempfile.TemporaryDirectory(prefix="dakera-docbench-") as folder:
        tmp = Path(folder)
        if not args.skip_import:
            summary["import"] = []
            for words in (int(w) for w in args.words.split(",")):
                row = import_bench(args.pages, words, tmp)
                summary["import"].append(row)
                print(json.dumps(row), flush=True)
        if not args.skip_stream:
            summary["stream"] = stream_bench([int(s) for s in args.sizes.split(",")], tmp)
    print("DOCUMENTS_SUMMARY " + json.dumps(summary))


if __name__ == "__main__":
    main()
