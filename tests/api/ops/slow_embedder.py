"""A stand-in OpenAI-compatible embedding endpoint that is slow on request.

It is outside the server (like Ollama or TEI would be), so making it slow is a legitimate way
to make a recall slow: any input text containing ``SLOW_MARKER`` is answered after
``SLOW_SECONDS``. Vectors are deterministic per text.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import numpy as np

DIMENSION = 32
SLOW_MARKER = "[slow]"
SLOW_SECONDS = 1.5  # far above the threshold below, so a loaded machine cannot blur them


def vector_of(text: str) -> list[float]:
    seed = int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little")
    return [float(v) for v in np.random.default_rng(seed).normal(size=DIMENSION)]


class _Handler(BaseHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        texts = body["input"] if isinstance(body["input"], list) else [body["input"]]
        if any(SLOW_MARKER in t for t in texts):
            time.sleep(SLOW_SECONDS)
        data = [
            {"object": "embedding", "index": i, "embedding": vector_of(t)}
            for i, t in enumerate(texts)
        ]
        raw = json.dumps({"object": "list", "data": data, "model": body.get("model")}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)


@contextmanager
def slow_embedder() -> Iterator[str]:
    """Serve the endpoint on a free loopback port; yields its base URL."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        host, port = server.server_address[:2]
        yield f"http://{host!s}:{port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
