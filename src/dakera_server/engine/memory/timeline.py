"""Each agent's memories ordered by event time within their session: who came just before/after.

Recall uses it for "the neighbours of a hit": in a conversation the answer to a question is often
the next turn ("Melanie: What did you research?" → "Caroline: Adoption agencies."), which shares
few words with the question. dakera-api.md §8 defines session-adjacent memories as those of the
same session within ±5 minutes; here a memory's neighbours are the nearest earlier and the
nearest later memory of the same session (``session_id``, ``None`` being one session of its own)
whose event time differs from its own by at most :data:`NEIGHBOUR_WINDOW_SECONDS`. Memories with
*equal* event times are not neighbours: without an order between them, "next" means nothing.

Kept incrementally (bisect into per-session sorted lists) by ``AgentMemories`` under the agent's
lock, so a lookup is O(log n) and a write never rebuilds anything.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable

from dakera_server.engine.memory.models import Memory

__all__ = ["NEIGHBOUR_WINDOW_SECONDS", "Timeline"]

NEIGHBOUR_WINDOW_SECONDS = 300
_LAST = "\U0010ffff"


class Timeline:
    """``(event_time, id)`` per session, sorted. Not thread-safe: the agent's lock guards it."""

    def __init__(self) -> None:
        self._sessions: dict[str | None, list[tuple[int, str]]] = {}
        self._placed: dict[str, tuple[str | None, int]] = {}

    def add(self, memory: Memory) -> None:
        """Place ``memory`` (replacing where an earlier version of the same id was)."""
        self.remove(memory.id)
        place = (memory.session_id, memory.event_time)
        bisect.insort(self._sessions.setdefault(place[0], []), (place[1], memory.id))
        self._placed[memory.id] = place

    def remove(self, memory_id: str) -> None:
        """Forget ``memory_id`` if placed."""
        place = self._placed.pop(memory_id, None)
        if place is None:
            return
        entries = self._sessions[place[0]]
        index = bisect.bisect_left(entries, (place[1], memory_id))
        if index < len(entries) and entries[index] == (place[1], memory_id):
            del entries[index]
        if not entries:
            del self._sessions[place[0]]

    def neighbours(self, memory_id: str, allow: Callable[[str], bool]) -> list[str]:
        """The nearest earlier and later memory of the same session within the window that
        ``allow`` accepts (zero, one or two ids)."""
        place = self._placed.get(memory_id)
        if place is None:
            return []
        entries = self._sessions[place[0]]
        when = place[1]
        out = []
        before = bisect.bisect_left(entries, (when, ""))
        if before > 0:
            earlier, other = entries[before - 1]
            if when - earlier <= NEIGHBOUR_WINDOW_SECONDS and allow(other):
                out.append(other)
        after = bisect.bisect_right(entries, (when, _LAST))
        if after < len(entries):
            later, other = entries[after]
            if later - when <= NEIGHBOUR_WINDOW_SECONDS and allow(other):
                out.append(other)
        return out

    def __len__(self) -> int:
        return len(self._placed)
