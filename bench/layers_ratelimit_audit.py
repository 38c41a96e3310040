"""What rate limiting and audit logging add to a request, and the whole layer stack on vs off.

Called directly over ASGI (no sockets: network and client costs would hide tens of
microseconds), rounds interleaved so machine noise hits every row alike, median of the
per-round means of *wall* time reported (a Redis round trip is waiting, not CPU):

1. the two layers alone around a trivial app that answers 200 (their own cost, nothing else),
   with the rate limits counted in memory and (``--redis``) in Redis, side by side;
2. the served app from ``create_app`` on ``GET /v1/auth/whoami`` and on a recall the engine
   answers at once (an agent with no memories, whose namespace has a recall window): the whole
   layer stack (headers, CORS, body limit, auth, rate limit, validation; audit where named) vs
   only a stub that sets the caller, with limits in memory, on Redis, and on Redis + audit;
3. ``RateLimiter.check()`` alone, with the number of Redis script calls (``EVALSHA``, from
   ``INFO commandstats``) per check: the round trips a request costs.

    .venv/bin/python bench/layers_ratelimit_audit.py --redis          # 2000 requests x 7 rounds
    .venv/bin/python bench/layers_ratelimit_audit.py --requests 500   # quick run, memory only

``--redis`` starts a throwaway ``redis-server`` on loopback (the binary must be installed).
Limits are set high enough that nothing is refused (RPS 20,000): every request is counted, and
the windows hold as many timestamps as a server configured that high would at that rate.

Target (issue 5): the whole layer stack adds at most 0.5 ms per request. The machine has 2 cores
shared with other work, so the numbers are noisy; compare rows of one run, not across runs.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import redis
from starlette.middleware import Middleware

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.processes import free_port  # noqa: E402

from dakera_server.app import create_app  # noqa: E402
from dakera_server.config import Settings  # noqa: E402
from dakera_server.engine.access import Caller, Scope  # noqa: E402
from dakera_server.engine.core import Engine  # noqa: E402
from dakera_server.engine.lifecycle.policies import RateLimitPolicy  # noqa: E402
from dakera_server.engine.text.embedding import EmbeddingBatch  # noqa: E402
from dakera_server.security.audit import AuditMiddleware, AuditWriter  # noqa: E402
from dakera_server.security.ratelimit import RateLimiter, RateLimitMiddleware  # noqa: E402

KEY = "bench-root-key-0123456789abcdef0123456789"
RPS = 20_000
ROOT_CALLER = Caller("root", "root", Scope.SUPER_ADMIN)
CLOSERS: list[Callable[[], None]] = []


class NoEmbeddings:
    """The routes measured here never embed; this avoids loading the model."""

    model_name = "none"
    dimension = 8
    max_tokens = 8

    def embed(self, texts: list[str]) -> EmbeddingBatch:
        raise RuntimeError("not used by this benchmark")

    def embed_one(self, text: str) -> Any:
        raise RuntimeError("not used by this benchmark")


# ------------------------------------------------------------------------- requests
def request(method: str, path: str, body: bytes = b"") -> tuple[dict[str, Any], bytes]:
    headers = [
        (b"host", b"127.0.0.1"),
        (b"authorization", f"Bearer {KEY}".encode()),
        (b"user-agent", b"dakera-py/0.14.1"),
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
    ]
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": headers,
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 3300),
    }
    return scope, body


async def call(app: Any, scope: dict[str, Any], body: bytes) -> int:
    sent = False
    status = 0

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        await asyncio.sleep(3600)
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]

    await app({**scope, "state": {}}, receive, send)
    return status


async def mean_us(app: Any, scope: dict[str, Any], body: bytes, n: int) -> float:
    started = time.perf_counter()
    for _ in range(n):
        status = await call(app, scope, body)
        assert status == 200, status
    return (time.perf_counter() - started) / n * 1e6


Row = tuple[Any, dict[str, Any], bytes]


def run(rows: dict[str, Row], n: int, rounds: int) -> dict[str, float]:
    results: dict[str, list[float]] = {name: [] for name in rows}

    async def main() -> None:
        for app, scope, body in rows.values():
            await mean_us(app, scope, body, max(50, n // 10))  # warm up
        for _ in range(rounds):
            for name, (app, scope, body) in rows.items():
                results[name].append(await mean_us(app, scope, body, n))

    asyncio.run(main())
    return {name: statistics.median(values) for name, values in results.items()}


def table(title: str, medians: dict[str, float]) -> None:
    print(f"\n{title}")
    print(f"  {'configuration':<64} {'µs/request':>10} {'added':>8}")
    base = next(iter(medians.values()))
    for index, (name, value) in enumerate(medians.items()):
        added = "" if index == 0 else f"{value - base:+8.1f}"
        print(f"  {name:<64} {value:>10.1f} {added:>8}")


def grouped(title: str, medians: dict[str, float]) -> None:
    """Rows grouped by the words before ':'; each group's first row ("… (baseline)") is the
    baseline of the rows after it."""
    print(f"\n{title}")
    print(f"  {'configuration':<70} {'µs/request':>10} {'added':>8}")
    bases: dict[str, float] = {}
    for name, value in medians.items():
        group = name.split(":", 1)[0]
        base = bases.setdefault(group, value)
        added = "" if name.endswith("(baseline)") else f"{value - base:+8.1f}"
        print(f"  {name:<70} {value:>10.1f} {added:>8}")


# --------------------------------------------------------------------- layers alone
async def ok(scope: dict[str, Any], receive: Any, send: Any) -> None:
    await receive()
    body = b'{"ok":true}'
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"application/json")],
        }
    )
    await send({"type": "http.response.body", "body": body})


def limiter(**options: Any) -> RateLimiter:
    made = RateLimiter(**options)
    CLOSERS.append(made.close)
    return made


def writer(path: Path) -> AuditWriter:
    made = AuditWriter(path)
    CLOSERS.append(made.close)
    return made


def alone(folder: Path, redis_url: str | None, n: int, rounds: int) -> None:
    whoami = request("GET", "/v1/auth/whoami")
    policy = RateLimitPolicy(stores_per_minute=None, recalls_per_minute=10_000_000)
    recall = request("POST", "/v1/memory/recall", orjson.dumps({"agent_id": "b", "query": "x"}))
    on = {"rps": RPS, "burst": 0}
    windowed = {"namespace_limits": lambda _ns: policy, "limits_active": lambda: True}
    backends: list[tuple[str, dict[str, Any]]] = [("memory", {})]
    if redis_url is not None:
        backends.append(("Redis", {"redis_url": redis_url}))
    rows: dict[str, Row] = {
        "GET: trivial app, no layer (baseline)": (ok, *whoami),
        "GET: + rate limit layer, global limit off": (
            RateLimitMiddleware(ok, limiter=limiter(rps=0, burst=0)),
            *whoami,
        ),
    }
    for label, backend in backends:
        rows[f"GET: + rate limit layer, global bucket ({label})"] = (
            RateLimitMiddleware(ok, limiter=limiter(**on, **backend)),
            *whoami,
        )
    rows["GET: + audit layer (no bodies)"] = (
        AuditMiddleware(ok, writer=writer(folder / "1")),
        *whoami,
    )
    for label, backend in backends:
        rows[f"GET: + audit (no bodies) + global bucket ({label})"] = (
            AuditMiddleware(
                RateLimitMiddleware(ok, limiter=limiter(**on, **backend)),
                writer=writer(folder / f"2{label}"),
            ),
            *whoami,
        )
    rows["POST recall: trivial app, no layer (baseline)"] = (ok, *recall)
    for label, backend in backends:
        rows[f"POST recall: + rate limit layer, bucket + namespace window ({label})"] = (
            RateLimitMiddleware(ok, limiter=limiter(**on, **windowed, **backend)),
            *recall,
        )
    for label, backend in backends:
        rows[f"POST recall: + audit with bodies + bucket + namespace window ({label})"] = (
            AuditMiddleware(
                RateLimitMiddleware(ok, limiter=limiter(**on, **windowed, **backend)),
                writer=writer(folder / f"3{label}"),
                request_body=True,
                response_body=True,
            ),
            *recall,
        )
    grouped(
        f"1. The layers alone around a trivial ASGI app, wall time "
        f"(median of {rounds} rounds x {n})",
        run(rows, n, rounds),
    )


# -------------------------------------------------------------------- served app
class CallerStub:
    """What authentication leaves on the scope: the caller. Stands in for the whole stack."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        scope.setdefault("state", {})["caller"] = ROOT_CALLER
        await self.app(scope, receive, send)


def stacks(app: Any) -> tuple[Any, Any]:
    """(bare, full): the app's own ASGI stack with only the stub, and with every layer."""
    layers = app.user_middleware
    app.user_middleware = [Middleware(CallerStub)]
    bare = app.build_middleware_stack()
    app.user_middleware = layers
    full = app.build_middleware_stack()

    def entry(stack: Any) -> Any:
        async def call(scope: dict[str, Any], receive: Any, send: Any) -> None:
            scope["app"] = app
            await stack(scope, receive, send)

        return call

    return entry(bare), entry(full)


def build(data: Path, **overrides: Any) -> Any:
    """The served app over ``data`` (its own engine), agent ``b`` with a recall window."""
    settings = Settings(data_dir=data, root_api_key=KEY, grpc_enabled=False, **overrides)
    engine = Engine(settings, embedder=NoEmbeddings())  # type: ignore[arg-type]
    app = create_app(settings, engine=engine)
    engine.load()
    for layer in app.user_middleware:
        if layer.cls is AuditMiddleware:
            CLOSERS.append(layer.kwargs["writer"].close)
    CLOSERS.append(app.state.rate_limiter.close)
    CLOSERS.append(engine.close)
    engine.policies.put(
        ROOT_CALLER,
        "_dakera_agent_b",
        {"rate_limit_enabled": True, "rate_limit_recalls_per_minute": 10_000_000},
    )
    return app


def served(folder: Path, redis_url: str | None, n: int, rounds: int) -> None:
    """The whole stack of ``create_app`` on vs off (a stub that sets the caller), per backend."""
    whoami = request("GET", "/v1/auth/whoami")
    recall = request("POST", "/v1/memory/recall", orjson.dumps({"agent_id": "b", "query": "x"}))
    limits = {"rate_limit_rps": RPS, "rate_limit_burst": 0}
    audit = {"audit_enabled": True, "audit_log_path": folder / "served.jsonl"}
    memory_app = build(folder / "m", **limits)
    bare, memory_stack = stacks(memory_app)
    configurations: list[tuple[str, Any]] = [("rate limits in memory", memory_stack)]
    if redis_url is not None:
        _, redis_stack = stacks(build(folder / "r", **limits, redis_url=redis_url))
        _, audited = stacks(build(folder / "ra", **limits, **audit, redis_url=redis_url))
        configurations += [("rate limits on Redis", redis_stack), ("Redis + audit", audited)]
    rows: dict[str, Row] = {}
    for method, row in (("GET whoami", whoami), ("POST recall", recall)):
        rows[f"{method}: layers off, caller stub (baseline)"] = (bare, *row)
        for label, stack in configurations:
            rows[f"{method}: whole stack, {label}"] = (stack, *row)
    grouped(
        f"2. The served app (create_app), whole layer stack on vs off, wall time "
        f"(median of {rounds} rounds x {n})",
        run(rows, n, rounds),
    )


def check_alone(redis_url: str | None, rounds: int) -> None:
    """``RateLimiter.check()`` by itself, on fresh limiters, so windows hold what they would."""
    print("\n3. RateLimiter.check() alone, accepted requests (best of rounds)")
    print(f"  {'configuration':<70} {'µs/check':>10} {'Redis calls':>11}")
    backends: list[tuple[str, str | None]] = [("memory", None)]
    if redis_url is not None:
        backends.append(("Redis", redis_url))
    policy = RateLimitPolicy(stores_per_minute=None, recalls_per_minute=10_000_000)
    for label, url in backends:
        for rps, burst, batch, namespace in (
            (100, 50, 150, None),
            (20_000, 0, 5000, None),
            (20_000, 0, 5000, "ns"),
        ):
            best = float("inf")
            calls = ""
            for _ in range(rounds):
                fresh = RateLimiter(
                    rps=rps,
                    burst=burst,
                    redis_url=url,
                    namespace_limits=lambda _ns: policy,
                    limits_active=lambda: True,
                )
                client = None
                if url is not None:
                    client = redis.Redis.from_url(url)
                    client.flushall()
                    fresh.check(consume=False)  # loads the script once
                    client.config_resetstat()
                started = time.perf_counter()
                for _ in range(batch):
                    assert fresh.check(namespace, "recall" if namespace else None).allowed
                best = min(best, (time.perf_counter() - started) / batch * 1e6)
                if client is not None:
                    stats = client.info("commandstats")
                    per_check = stats.get("cmdstat_evalsha", {}).get("calls", 0) / batch
                    calls = f"{per_check:.2f}"
                    client.close()
                fresh.close()
            window = " + namespace window" if namespace else ""
            name = f"{label}, RPS={rps} BURST={burst}{window}: {batch} checks"
            print(f"  {name:<70} {best:>10.1f} {calls:>11}")


def start_redis(folder: Path) -> tuple[subprocess.Popen[bytes], str]:
    binary = shutil.which("redis-server")
    if binary is None:
        raise SystemExit("redis-server is not installed")
    port = free_port()
    process = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--dir", str(folder)],
        stdout=subprocess.DEVNULL,
    )
    time.sleep(0.5)
    return process, f"redis://127.0.0.1:{port}/0"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--redis", action="store_true", help="add rows with limits on Redis")
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="bench-layers-"))
    redis_process = None
    redis_url = None
    try:
        if args.redis:
            redis_process, redis_url = start_redis(folder)
        alone(folder, redis_url, args.requests, args.rounds)
        served(folder, redis_url, max(100, args.requests // 2), args.rounds)
        check_alone(redis_url, args.rounds)
        print("\n(2 shared cores under other load: noisy; compare rows within one run.)")
    finally:
        for close in CLOSERS:
            close()
        if redis_process is not None:
            redis_process.terminate()
            redis_process.wait()
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
