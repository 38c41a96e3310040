"""Rate limiting: a global token bucket and per-namespace sliding windows, on ``limits``.

**Global bucket.** ``RATE_LIMIT_RPS`` (R) and ``RATE_LIMIT_BURST`` (B) describe a token bucket
that refills R tokens a second and holds R + B at most in any one second of traffic. ``limits``
has no token bucket and its windows are whole seconds, so the bucket is enforced as the two
envelopes it implies:

* ``R + B`` per 1 second, moving window (an exact sliding log of at most R + B timestamps):
  a spike may use the burst on top of one second's rate;
* ``10·R + B`` per 10 seconds, sliding window counter (two counters): over time the rate falls
  back to about R. The counter weights the previous window's count as if it were spread evenly,
  so it is approximate, but its cost does not grow with R; a moving window there would keep
  10·R + B timestamps and cost O(that) per request (measured: milliseconds on Redis at 10k/s).

(A true bucket would also cap an instantaneous spike at its fill level; whole-second windows
cannot express that.)

The bucket is one per server (or per cluster with Redis), not per key, as ``security.md`` says.

**Per-namespace windows.** A namespace whose memory policy (§4.5) has ``rate_limit_enabled``
gets ``rate_limit_stores_per_minute`` / ``rate_limit_recalls_per_minute`` enforced with the
sliding-window-counter strategy (two counters per window, O(1) memory whatever the rate). One
request is one operation (a batch store counts once). The namespace is read from the path, or
from the ``agent_id`` of the JSON body for agent-memory routes; the body is buffered for that
only while some namespace is rate limited, and only on the store/recall routes.

**Redis keys.** ``limits`` stores a moving window as a Redis list and a window counter as
strings; one key used under two strategies answers ``WRONGTYPE``. Every identifier therefore
names its strategy (``…/moving-window``, ``…/sliding-window-counter``), so keys never collide.

**Cost.** With Redis, a request's windows are checked and counted by one Lua script in one
round trip, atomically (``security/ratewindows.py``); locally, by ``limits``' strategies over
its memory storage.

**Redis down.** With ``DAKERA_REDIS_URL`` set, counts are shared by every process. When Redis
cannot be reached (at start or later) the limiter logs a warning, counts locally in this
process, reports it in ``status()`` (``/health`` shows ``degraded``), and a background probe
switches back to Redis once it answers. It never fails open silently.

Headers on every response that passed this layer: ``X-RateLimit-Limit``, ``-Remaining`` and
``-Reset`` (Unix seconds) of whichever applicable window has the fewest requests left.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from limits import RateLimitItem, RateLimitItemPerMinute, RateLimitItemPerSecond
from limits.errors import StorageError as LimitsStorageError
from limits.storage import RedisStorage
from redis.backoff import NoBackoff
from redis.exceptions import RedisError
from redis.retry import Retry
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from dakera_server.engine.lifecycle.policies import RateLimitPolicy
from dakera_server.errors import RateLimited
from dakera_server.security.headercase import CasedName
from dakera_server.security.ratewindows import (
    MOVING,
    SLIDING,
    LocalWindows,
    Outcome,
    RedisWindows,
    Window,
)
from dakera_server.security.responses import error_response
from dakera_server.security.targets import (
    Operation,
    Target,
    body_agent_id,
    operation_of,
    path_target,
)

__all__ = ["Decision", "RateLimitMiddleware", "RateLimiter"]

logger = logging.getLogger("dakera_server.ratelimit")

LONG_WINDOW_SECONDS = 10
BURST_IDS = ("dakera", "global", "burst", "moving-window")
SUSTAINED_IDS = ("dakera", "global", "sustained", "sliding-window-counter")
REDIS_TIMEOUT_SECONDS = 0.5
PROBE_INTERVAL_SECONDS = 2.0
_LIMIT = CasedName(b"X-RateLimit-Limit")
_REMAINING = CasedName(b"X-RateLimit-Remaining")
_RESET = CasedName(b"X-RateLimit-Reset")


@dataclass(frozen=True)
class Decision:
    """Whether a request may pass, and the window to report in the headers."""

    allowed: bool
    limit: int | None = None
    remaining: int = 0
    reset: float = 0.0
    reason: str = "global"

    def retry_after(self, now: float) -> int:
        """Whole seconds until the refusing window frees a slot (at least 1)."""
        return max(1, math.ceil(self.reset - now))

    def headers(self) -> list[tuple[bytes, bytes]]:
        """The ``X-RateLimit-*`` headers (none when no limit applies).

        Names keep this exact case on the wire (``headercase.py``): the SDK copies the
        headers into a plain dict and looks them up case-sensitively as ``X-RateLimit-Limit``.
        """
        if self.limit is None:
            return []
        return [
            (_LIMIT, str(self.limit).encode()),
            (_REMAINING, str(max(0, self.remaining)).encode()),
            (_RESET, str(math.ceil(self.reset)).encode()),
        ]


class RateLimiter:
    """Counts requests against the global bucket and the namespace windows.

    ``namespace_limits`` returns a namespace's enforced limits (``None`` when it has none);
    ``limits_active`` says whether any namespace has some (a cheap check per request).
    """

    def __init__(
        self,
        *,
        rps: int,
        burst: int,
        redis_url: str | None = None,
        namespace_limits: Callable[[str], RateLimitPolicy | None] = lambda _ns: None,
        limits_active: Callable[[], bool] = lambda: False,
        probe_interval: float = PROBE_INTERVAL_SECONDS,
    ) -> None:
        self.rps = rps
        self.burst = burst
        self.namespace_limits = namespace_limits
        self.limits_active = limits_active
        # The headers report the 1-second window: it binds first unless the rate has stayed
        # above R for seconds, and then a refusal reports the long window.
        self._global: list[Window] = []
        if rps > 0:
            self._global = [
                Window(MOVING, RateLimitItemPerSecond(rps + burst, 1), BURST_IDS, "global"),
                Window(
                    SLIDING,
                    RateLimitItemPerSecond(rps * LONG_WINDOW_SECONDS + burst, LONG_WINDOW_SECONDS),
                    SUSTAINED_IDS,
                    "global",
                    reported=False,
                ),
            ]
        self._per_minute: dict[int, RateLimitItem] = {}
        self._local = LocalWindows()
        self._shared: RedisWindows | None = None
        self._storage: RedisStorage | None = None
        self._redis_up = False
        self._redis_where = ""
        self._changed_at = time.time()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._probe: threading.Thread | None = None
        if redis_url is not None:
            parts = urlsplit(redis_url)
            # Only host and port are ever logged: the URL may carry a password.
            self._redis_where = f"{parts.hostname or parts.path}:{parts.port or 6379}"
            storage = RedisStorage(
                redis_url,
                wrap_exceptions=True,
                socket_connect_timeout=REDIS_TIMEOUT_SECONDS,
                socket_timeout=REDIS_TIMEOUT_SECONDS,
                retry=Retry(NoBackoff(), 0),  # type: ignore[arg-type]
            )
            self._storage = storage
            self._shared = RedisWindows(storage)
            if storage.check():
                self._redis_up = True
                logger.info("rate limits are shared through Redis at %s", self._redis_where)
            else:
                logger.warning(
                    "Redis at %s is unreachable: rate limits are local to this process "
                    "until it answers",
                    self._redis_where,
                )
            self._probe = threading.Thread(
                target=self._probe_loop, args=(probe_interval,), name="dakera-redis-probe"
            )
            self._probe.daemon = True
            self._probe.start()

    # ------------------------------------------------------------------ backend
    def _mark_down(self, exc: BaseException) -> None:
        with self._lock:
            if not self._redis_up:
                return
            self._redis_up = False
            self._changed_at = time.time()
        logger.warning(
            "Redis at %s failed (%s): rate limits are local to this process until it answers",
            self._redis_where,
            type(exc).__name__,
        )

    def _probe_loop(self, interval: float) -> None:
        assert self._storage is not None
        while not self._stop.wait(interval):
            if self._redis_up:
                continue
            if self._storage.check():
                with self._lock:
                    self._redis_up = True
                    self._changed_at = time.time()
                logger.warning(
                    "Redis at %s answers again: rate limits are shared again", self._redis_where
                )

    def _acquire(self, windows: list[Window], consume: bool) -> Outcome:
        shared = self._shared
        if shared is not None and self._redis_up:
            try:
                return shared.acquire(windows, consume)
            except (LimitsStorageError, RedisError, OSError) as exc:
                self._mark_down(exc)
        return self._local.acquire(windows, consume)

    def status(self) -> dict[str, Any]:
        """Where counts live: ``backend`` redis|local, and Redis's state when configured."""
        if self._shared is None:
            return {"backend": "local", "redis": "not_configured", "shared": False}
        return {
            "backend": "redis" if self._redis_up else "local",
            "redis": "connected" if self._redis_up else "unreachable",
            "shared": self._redis_up,
            "since": int(self._changed_at),
        }

    @property
    def degraded(self) -> bool:
        """True when Redis is configured but counts are local."""
        return self._shared is not None and not self._redis_up

    def close(self) -> None:
        """Stop the Redis probe."""
        self._stop.set()
        if self._probe is not None:
            self._probe.join(timeout=5)

    # ----------------------------------------------------------------- deciding
    def _minute(self, amount: int) -> RateLimitItem:
        item = self._per_minute.get(amount)
        if item is None:
            item = self._per_minute[amount] = RateLimitItemPerMinute(amount, 1)
        return item

    def check(
        self, namespace: str | None = None, operation: Operation | None = None, consume: bool = True
    ) -> Decision:
        """Count one request (unless ``consume`` is false) and say whether it may pass.

        The namespace window is added only when the namespace has a policy for ``operation``;
        with Redis, all windows cost one round trip together.
        """
        windows = self._global
        if namespace is not None and operation is not None:
            policy = self.namespace_limits(namespace)
            if policy is not None:
                per_minute = (
                    policy.stores_per_minute if operation == "store" else policy.recalls_per_minute
                )
                if per_minute is not None:
                    ids = ("dakera", "ns", namespace, operation, "sliding-window-counter")
                    reason = f"namespace '{namespace}' {operation}s per minute"
                    windows = [*windows, Window(SLIDING, self._minute(per_minute), ids, reason)]
        if not windows:
            return Decision(True)
        outcome = self._acquire(windows, consume)
        if outcome.refused is not None:
            window, stats = outcome.stats[0]
            return Decision(False, window.item.amount, 0, stats.reset_time, window.reason)
        window, stats = min(outcome.stats, key=lambda pair: pair[1].remaining)  # first on ties
        return Decision(True, window.item.amount, stats.remaining, stats.reset_time, window.reason)


async def _buffered(receive: Receive) -> tuple[bytes, Receive]:
    """Read the whole body, and a ``receive`` that replays it to the next app."""
    messages: list[Message] = []
    chunks: list[bytes] = []
    while True:
        message = await receive()
        messages.append(message)
        if message["type"] != "http.request":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break

    async def replay() -> Message:
        if messages:
            return messages.pop(0)
        return await receive()

    return b"".join(chunks), replay


class RateLimitMiddleware:
    """Pure ASGI layer: 429 with ``Retry-After`` when a window is full; headers otherwise.

    ``exempt_paths`` (health probes, metrics) are never counted, so a busy server still
    answers its orchestrator; they still get the headers.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        limiter: RateLimiter,
        exempt_paths: frozenset[str] = frozenset(),
        exempt_prefixes: tuple[str, ...] = (),
    ) -> None:
        self.app = app
        self.limiter = limiter
        self.exempt_paths = exempt_paths
        # Paths that count their own requests (the MCP endpoint: each tool call is one
        # in-process REST request, counted there), each covering its sub-paths too.
        self.exempt_prefixes = exempt_prefixes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        consume = path not in self.exempt_paths and not any(
            path == p or path.startswith(p + "/") for p in self.exempt_prefixes
        )
        namespace: str | None = None
        operation: Operation | None = None
        if consume and self.limiter.limits_active():
            operation, in_body = operation_of(scope["method"], path)
            if operation is not None:
                if in_body:
                    body, receive = await _buffered(receive)
                    target = Target.of_agent(body_agent_id(body))
                else:
                    target = path_target(path)
                namespace = target.namespace
                scope.setdefault("state", {})["dakera.target"] = target
        decision = self.limiter.check(namespace, operation, consume=consume)
        headers = decision.headers()
        if not decision.allowed:
            wait = decision.retry_after(time.time())
            refusal = RateLimited(
                f"Too many requests. Retry after {wait} second{'s' if wait != 1 else ''}.",
                retry_after=wait,
                details=f"limit: {decision.reason}",
            )
            response = error_response(refusal)
            response.raw_headers.extend(headers)
            await response(scope, receive, send)
            return
        if not headers:
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", ()), *headers]}
            await send(message)

        await self.app(scope, receive, send_with_headers)
