"""Change-log retention: records older than ``RETENTION_SECONDS`` are deleted, once per cluster.

Without it the log grows with every write forever. Pruning is always safe for coherence: a node
whose cursor for a group lies below the pruned horizon gets ``None`` from ``changes_after`` and
reloads that whole group from its rows (``Follower._catch_up``); only a node silent for longer
than the retention pays that reload. A node that is following keeps its cursors within seconds
of the heads, far inside an hour.

The horizon is a change number, not a time: every ``PRUNE_EVERY_SECONDS`` the pruner notes the
log's latest number, and prunes up to the newest note older than the retention. Notes live in
the process; whichever node holds the ``change-log-prune`` lock (``Store.exclusive``) prunes by
its own, and a node that just started prunes only once its first note has aged.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from contextlib import AbstractContextManager

from dakera_server.storage.base import ChangeLog

__all__ = ["PRUNE_EVERY_SECONDS", "RETENTION_SECONDS", "ChangeLogPruner"]

RETENTION_SECONDS = 3600.0
PRUNE_EVERY_SECONDS = 60.0
LOCK_NAME = "change-log-prune"


class ChangeLogPruner:
    """Notes the log's head now and then; prunes what is older than the retention."""

    def __init__(
        self,
        log: ChangeLog,
        exclusive: Callable[[str], AbstractContextManager[bool]],
        *,
        retention: float = RETENTION_SECONDS,
        every: float = PRUNE_EVERY_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.log = log
        self.exclusive = exclusive
        self.retention = retention
        self.every = every
        self.clock = clock
        self._notes: deque[tuple[float, int]] = deque()
        self._last_tick: float | None = None
        self.pruned = 0  # change records deleted by this node (metrics, tests)

    def due(self) -> bool:
        """Whether ``tick`` has work (the follower's loop asks between wake-ups)."""
        return self._last_tick is None or self.clock() - self._last_tick >= self.every

    def tick(self) -> int:
        """Note the head; prune up to the newest note past the retention. Returns how many
        records this call deleted (0 when another node holds the lock)."""
        now = self.clock()
        self._last_tick = now
        self._notes.append((now, self.log.latest()))
        horizon = None
        while self._notes and now - self._notes[0][0] >= self.retention:
            horizon = self._notes.popleft()[1]
        if horizon is None or horizon <= 0:
            return 0
        with self.exclusive(LOCK_NAME) as mine:
            if not mine:
                return 0
            deleted = self.log.prune(horizon)
        self.pruned += deleted
        return deleted
