"""Counting one request against its rate-limit windows, locally or in Redis in one round trip.

A request is checked against up to three windows (the global bucket's 1-second moving window
and 10-second sliding-window counter, and its namespace's per-minute counter when the namespace
has a policy). Two backends count them, with the same ``limits`` strategies and data layout:

* ``LocalWindows``: ``limits``' strategies over its ``MemoryStorage`` (this process only). A hit
  per window, then the stats of the windows the headers report; microseconds.
* ``RedisWindows``: one Lua script, registered on the Redis client of ``limits``'
  ``RedisStorage``, that checks every window and, only when all pass, counts the request in
  each: one ``EVALSHA`` round trip per request instead of one per ``limits`` call (three or
  more), and atomic, so two processes can never both take the last slot of a window, and a
  request refused by one window is not counted in another. The script does what ``limits``'
  own ``acquire_moving_window.lua`` / ``moving_window.lua`` / ``acquire_sliding_window.lua`` /
  ``sliding_window.lua`` do, on the same keys (``LIMITS:<item key>``, and ``{key}`` /
  ``{key}/-1`` for a counter), with the same values, so ``limits``' strategies read exactly
  what it wrote (a test checks this), and the window stats are computed here with ``limits``'
  formulas.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any

from limits import RateLimitItem
from limits.storage import MemoryStorage, RedisStorage
from limits.strategies import MovingWindowRateLimiter, SlidingWindowCounterRateLimiter
from limits.util import WindowStats

__all__ = ["MOVING", "SLIDING", "LocalWindows", "Outcome", "RedisWindows", "Window"]

MOVING = "moving-window"
SLIDING = "sliding-window-counter"


@dataclass(frozen=True)
class Window:
    """One limit a request counts against; ``reported`` windows may appear in the headers."""

    strategy: str  # MOVING or SLIDING
    item: RateLimitItem
    ids: tuple[str, ...]
    reason: str
    reported: bool = True


@dataclass(frozen=True)
class Outcome:
    """The refusing window and its stats, or (``refused`` None) the reported windows' stats."""

    refused: Window | None
    stats: list[tuple[Window, WindowStats]]


class LocalWindows:
    """``limits`` strategies over ``MemoryStorage``: the limits of this process alone."""

    def __init__(self) -> None:
        storage = MemoryStorage()
        self._strategies = {
            MOVING: MovingWindowRateLimiter(storage),
            SLIDING: SlidingWindowCounterRateLimiter(storage),
        }

    def acquire(self, windows: list[Window], consume: bool) -> Outcome:
        """Count one request in each window in turn; stop at the first that is full."""
        for window in windows:
            strategy = self._strategies[window.strategy]
            if consume and not strategy.hit(window.item, *window.ids):
                return Outcome(
                    window, [(window, strategy.get_window_stats(window.item, *window.ids))]
                )
        return Outcome(
            None,
            [
                (w, self._strategies[w.strategy].get_window_stats(w.item, *w.ids))
                for w in windows
                if w.reported
            ],
        )


# KEYS: per window, a moving window's list, or a counter's previous and current keys.
# ARGV: now (seconds), consume (0|1), then per window: kind (1 moving, 2 counter), limit, expiry.
# Returns {index of the refusing window or 0, then 4 strings per window checked}: a moving
# window's count and oldest timestamp; a counter's previous count, its ttl (ms), current count,
# its ttl (ms). Windows after a refusing one are not checked. Without ``consume`` (health probes)
# nothing is counted and nothing is refused: only the stats are read.
SCRIPT = """
local now = tonumber(ARGV[1])
local consume = ARGV[2] == '1'
local states = {}
local refused = 0
local k = 1
for i = 1, (#ARGV - 2) / 3 do
  local kind = tonumber(ARGV[3 * i])
  local limit = tonumber(ARGV[3 * i + 1])
  local expiry = tonumber(ARGV[3 * i + 2])
  local state
  if kind == 1 then
    local key = KEYS[k]
    k = k + 1
    local since = now - expiry
    local low, high, found = 0, limit - 1, -1
    while low <= high do
      local mid = math.floor((low + high) / 2)
      local value = tonumber(redis.call('lindex', key, mid))
      if value and value >= since then
        found = mid
        low = mid + 1
      else
        high = mid - 1
      end
    end
    local oldest = ARGV[1]
    if found >= 0 then oldest = redis.call('lindex', key, found) end
    state = {kind, limit, expiry, key, found + 1, oldest}
    if consume and found + 1 >= limit then refused = i end
  else
    local previous, current = KEYS[k], KEYS[k + 1]
    k = k + 2
    local ms = expiry * 1000
    local ttl = tonumber(redis.call('pttl', current))
    if ttl > 0 and ttl < ms then
      redis.call('rename', current, previous)
      redis.call('set', current, 0, 'PX', ttl + ms)
    end
    local pc = tonumber(redis.call('get', previous)) or 0
    local pt = math.max(tonumber(redis.call('pttl', previous)), 0)
    local cc = tonumber(redis.call('get', current)) or 0
    local ct = math.max(tonumber(redis.call('pttl', current)), 0)
    state = {kind, limit, expiry, current, pc, pt, cc, ct}
    if consume and math.floor(pc * pt / ms) + cc + 1 > limit then refused = i end
  end
  states[i] = state
  if refused > 0 then break end
end
if consume and refused == 0 then
  for _, s in ipairs(states) do
    if s[1] == 1 then
      redis.call('lpush', s[4], ARGV[1])
      redis.call('ltrim', s[4], 0, s[2] - 1)
      redis.call('expire', s[4], s[3])
      if s[5] == 0 then s[6] = ARGV[1] end
      s[5] = s[5] + 1
    else
      if redis.call('exists', s[4]) == 1 then
        redis.call('incrby', s[4], 1)
      else
        redis.call('set', s[4], 1, 'PX', s[3] * 2000)
        s[8] = s[3] * 2000
      end
      s[7] = s[7] + 1
    end
  end
end
local out = {refused}
for _, s in ipairs(states) do
  if s[1] == 1 then
    table.insert(out, tostring(s[5]))
    table.insert(out, s[6])
    table.insert(out, '0')
    table.insert(out, '0')
  else
    for j = 5, 8 do table.insert(out, tostring(s[j])) end
  end
end
return out
"""


class RedisWindows:
    """Every window of a request checked and counted by one Lua script: one round trip."""

    def __init__(self, storage: RedisStorage) -> None:
        self.storage = storage
        self._script = storage.get_connection().register_script(SCRIPT.encode())
        self._keys: dict[Window, list[str]] = {}

    def _window_keys(self, window: Window) -> list[str]:
        keys = self._keys.get(window)
        if keys is None:
            key = window.item.key_for(*window.ids)
            if window.strategy == MOVING:
                keys = [self.storage.prefixed_key(key)]
            else:  # limits' layout: previous ``{key}/-1``, current ``{key}`` (one cluster slot)
                keys = [
                    self.storage.prefixed_key(f"{{{key}}}/-1"),
                    self.storage.prefixed_key(f"{{{key}}}"),
                ]
            if len(self._keys) < 10_000:  # namespace windows come and go; bound the cache
                self._keys[window] = keys
        return keys

    def acquire(self, windows: list[Window], consume: bool) -> Outcome:
        """One ``EVALSHA``: check all windows, count the request in each when all pass."""
        now = time.time()
        keys: list[str] = []
        args: list[Any] = [repr(now), 1 if consume else 0]
        for window in windows:
            keys.extend(self._window_keys(window))
            args.extend(
                (
                    1 if window.strategy == MOVING else 2,
                    window.item.amount,
                    window.item.get_expiry(),
                )
            )
        reply = self._script(keys=keys, args=args)
        refused = int(reply[0])
        stats = [
            (window, _stats(window, reply[1 + 4 * i : 5 + 4 * i], now))
            for i, window in enumerate(windows[: refused or len(windows)])
        ]
        if refused:
            return Outcome(windows[refused - 1], [stats[refused - 1]])
        return Outcome(None, [(w, s) for w, s in stats if w.reported])


def _stats(window: Window, values: list[Any], now: float) -> WindowStats:
    """``limits``' ``get_window_stats`` of one window, from the values the script returned."""
    amount, expiry = window.item.amount, window.item.get_expiry()
    if window.strategy == MOVING:
        count, oldest = int(values[0]), float(values[1])
        return WindowStats(oldest + expiry, amount - count)
    previous, previous_ttl = int(values[0]), float(values[1]) / 1000
    current, current_ttl = int(values[2]), float(values[3]) / 1000
    weighted = previous * previous_ttl / expiry + current
    remaining = max(0, amount - math.floor(weighted))
    if not (previous or current):
        return WindowStats(now, remaining)
    previous_reset = previous_ttl % (expiry / previous) if previous else math.inf
    current_reset = current_ttl % expiry if current else math.inf
    return WindowStats(now + min(previous_reset, current_reset), remaining)
