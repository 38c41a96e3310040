"""What the whole layer stack adds to a request, side by side with the layers off.

    .venv/bin/python bench/layers.py                    # 1000 requests x 7 rounds
    .venv/bin/python bench/layers.py --requests 300     # quick run

The stack is the list ``create_app`` builds, in request order: security headers → CORS →
body-size limit → [audit, off by default] → authentication → rate limiting → input validation.
Requests are made directly over ASGI (no sockets, whose cost would hide tens of microseconds);
rounds are interleaved so machine noise hits every row alike; the median of the per-round
means of *CPU time* per request is reported (the machine is shared: wall time would mostly
measure the other tenants). Bodies are realistic: a store of a ~600-character chat memory
with tags and metadata, and a recall with a question.

1. The stack alone around a trivial app that reads the body and answers 200, built from the
   very list ``create_app`` makes, one layer added per row.
2. The served app on POST /v1/memory/recall (an agent holding 300 memories) and POST
   /v1/memory/store, with the stack vs. with only a stub that sets the caller (what auth
   leaves behind). Embeddings are a cheap deterministic hash so the model's 5 ms do not drown
   the difference; each store goes to a new agent (so neither row pays for an index the other
   grew) and still pays a durable SQLite commit, which makes that row noisier.

Rate limits are raised (RPS 1,000,000) so nothing is refused but every request is counted.
Target (issue 5): the whole stack adds at most 0.5 ms per request. The machine has 2 cores
shared with other work: compare rows of one run, not across runs.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import itertools
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import orjson

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.layers_ratelimit_audit import (  # noqa: E402
    KEY,
    ROOT_CALLER,
    Row,
    call,
    ok,
    request,
    stacks,
    table,
)
from dakera_server.app import create_app  # noqa: E402
from dakera_server.config import Settings  # noqa: E402
from dakera_server.engine.core import Engine  # noqa: E402
from dakera_server.engine.memory.engine import NewMemory  # noqa: E402
from dakera_server.engine.text.embedding import EmbeddingBatch  # noqa: E402

AGENT = "bench-agent"
CONTENT = (
    "Caroline told me she went to the LGBTQ support group last Tuesday; it was 'so powerful' "
    "and she's thinking about counseling as a career. She also mentioned the charity race on "
    "May 20th -- her friend Melanie ran it in 28 min. We talked about adoption agencies, her "
    "mom's recipe for lemon bars (2 cups flour; 1 cup sugar) and a trip to Lisbon in June. "
    "Follow-up: send her the link https://example.org/counseling-programs?city=boston&level=ma "
    "and remind her about the pottery class on Saturday at 10:30."
)
STORE = orjson.dumps(
    {
        "agent_id": AGENT,
        "content": CONTENT,
        "importance": 0.7,
        "memory_type": "episodic",
        "tags": ["caroline", "career", "events"],
        "metadata": {"source": "chat", "speaker": "Caroline", "turn": 17, "lang": "en"},
    }
)
RECALL = orjson.dumps(
    {"agent_id": AGENT, "query": "What career is Caroline thinking about?", "top_k": 10}
)


class HashEmbeddings:
    """Deterministic unit vectors from word hashes: cheap, so the layers are what differs."""

    model_name = "hash-384"
    dimension = 384
    max_tokens = 256

    def embed(self, texts: Sequence[str]) -> EmbeddingBatch:
        vectors = np.zeros((len(texts), self.dimension), dtype=np.float32)
        for row, text in enumerate(texts):
            for word in text.lower().split():
                digest = hashlib.blake2b(word.encode(), digest_size=4).digest()
                vectors[row, int.from_bytes(digest, "little") % self.dimension] += 1.0
            vectors[row] /= max(float(np.linalg.norm(vectors[row])), 1e-9)
        counts = [len(t.split()) for t in texts]
        return EmbeddingBatch(vectors, counts, counts)

    def embed_one(self, text: str) -> npt.NDArray[np.float32]:
        vector: npt.NDArray[np.float32] = self.embed([text]).vectors[0]
        return vector


STORES = itertools.count()


def fresh_agent(body: bytes) -> bytes:
    """A store goes to a new agent each time, so no row pays for an index the others grew."""
    if body is not STORE:
        return body
    return body.replace(AGENT.encode(), f"{AGENT}-{next(STORES)}".encode(), 1)


def run(rows: dict[str, Row], n: int, rounds: int) -> dict[str, float]:
    """Median over rounds of the mean CPU µs per request of each row, rows interleaved.

    CPU time of this process rather than wall time: on a shared machine the wall clock mostly
    measures the other tenants. (Everything runs in this one thread; the server's background
    thread is idle.)
    """
    results: dict[str, list[float]] = {name: [] for name in rows}

    async def measure(app: Any, scope: dict[str, Any], body: bytes, count: int) -> float:
        started = time.process_time()
        for _ in range(count):
            status = await call(app, scope, fresh_agent(body))
            assert status == 200, status
        return (time.process_time() - started) / count * 1e6

    async def main() -> None:
        for app, scope, body in rows.values():
            await measure(app, scope, body, max(20, n // 10))  # warm up
        for round_number in range(rounds):
            # alternate the order, so slow drifts (caches, the store growing) hit both rows
            order = list(rows.items())[:: 1 if round_number % 2 == 0 else -1]
            for name, (app, scope, body) in order:
                results[name].append(await measure(app, scope, body, n))

    asyncio.run(main())
    return {name: statistics.median(values) for name, values in results.items()}


def build(data: Path) -> Any:
    """The served app with its layers, limits raised, an agent with 300 memories loaded."""
    settings = Settings(
        data_dir=data,
        root_api_key=KEY,
        rate_limit_rps=1_000_000,
        rate_limit_burst=1_000_000,
        grpc_enabled=False,
    )
    engine = Engine(settings, embedder=HashEmbeddings())  # type: ignore[arg-type]
    app = create_app(settings, engine=engine)
    engine.load()
    words = CONTENT.split()
    memories = [
        NewMemory(agent_id=AGENT, content=" ".join(words[i % 40 : i % 40 + 25]) + f" #{i}")
        for i in range(300)
    ]
    engine.memories.store(ROOT_CALLER, memories, [])
    return app


def wrap(layers: Sequence[Any], app: Any) -> Any:
    for layer in reversed(layers):
        app = layer.cls(app, *layer.args, **layer.kwargs)
    return app


def alone(app: Any, n: int, rounds: int) -> None:
    stack = list(app.user_middleware)
    store, recall = (
        request("POST", "/v1/memory/store", STORE),
        request("POST", "/v1/memory/recall", RECALL),
    )
    rows: dict[str, Row] = {"trivial app, no layer (store body)": (ok, *store)}
    for count in range(1, len(stack) + 1):
        name = stack[count - 1].cls.__name__.replace("Middleware", "")
        rows[f"+ {name} (and every layer above)"] = (wrap(stack[:count], ok), *store)
    rows["whole stack, recall body"] = (wrap(stack, ok), *recall)
    table(
        f"1. The stack alone around a trivial app, CPU time (median of {rounds} rounds x {n})",
        run(rows, n, rounds),
    )


def served(app: Any, n: int, rounds: int) -> None:
    bare, full = stacks(app)
    store, recall = (
        request("POST", "/v1/memory/store", STORE),
        request("POST", "/v1/memory/recall", RECALL),
    )
    for title, row in (("POST /v1/memory/recall", recall), ("POST /v1/memory/store", store)):
        rows: dict[str, Row] = {
            f"{title}, no layers (caller stub)": (bare, *row),
            f"{title}, whole stack": (full, *row),
        }
        table(
            f"2. Served app, {title}, CPU time (median of {rounds} rounds x {n})",
            run(rows, n, rounds),
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        app = build(Path(folder))
        try:
            alone(app, args.requests, args.rounds)
            served(app, max(50, args.requests // 5), args.rounds)
        finally:
            app.state.rate_limiter.close()
            app.state.engine.close()


if __name__ == "__main__":
    main()
