"""Each agent's memories ordered by event time within their session: who came just before/after.

Recall uses it for "the neighbours of a hit": in a conversation the answer to a question is often
the next turn ("Melanie: What did you research?" → "Caroline: Adoption agencies."), which shares
few words with the question. dakera-api.md §8 defines session-adjacent memories as those of the
same session within ±5 minutes; here a memory's neighbours are the nearest earlier and the
nearest later memory of the same session (``session_id``, ``None`` being one session of its own)
whose event time differs from its own by at most :data:`NEIGHBOUR_WINDOW_SECONDS`. Memories with
*equal* event times (a chat log stored with only each session's date) are ordered by their
insertion number ``seq``: the order the client stored them in, one turn after another or in one
batch. Memories stored before insertion numbers existed (``seq`` 0) that share an event time have
no order between them, so they are not each other's neighbours.

Kept incrementally (bisect into per-session sorted lists) by ``AgentMemories`` under the agent's
lock, so a lookup is O(log n) and a write never rebuilds anything.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable

from dakera_server.engine.memory.models import Memory

__all__ = ["NEIGHBOUR_WINDOW_SECONDS", "Timeline"]

NEIGHBOUR_WINDOW_SECONDS = 300


class Timeline:
    """``(event_time, seq, id)`` per session, sorted. Not thread-safe: the agent's lock guards
    it."""

    def __init__(self) -> None:
        self._sessions: dict[str | None, list[tuple[int, int, str]]] = {}
        self._placed: dict[str, tuple[str | None, int, int]] = {}

    def add(self, memory: Memory) -> None:
        """Place ``memory`` (replacing where an earlier version of the same id was)."""
        self.remove(memory.id)
        place = (memory.session_id, memory.event_time, memory.seq)
        bisect.insort(self._sessions.setdefault(place[0], []), (place[1], place[2], memory.id))
        self._placed[memory.id] = place

    def remove(self, memory_id: str) -> None:
        """Forget ``memory_id`` if placed."""
        place = self._placed.pop(memory_id, None)
        if place is None:
            return
        entries = self._sessions[place[0]]
        entry = (place[1], place[2], memory_id)
        index = bisect.bisect_left(entries, entry)
        if index < len(entries) and entries[index] == entry:
            del entries[index]
        if not entries:
            del self._sessions[place[0]]

    def neighbours(
        self, memory_id: str, allow: Callable[[str], bool], radius: int = 1
    ) -> list[list[str]]:
        """Per distance 1..radius, the earlier and later memory of the same session within the
        window that ``allow`` accepts."""
        place = self._placed.get(memory_id)
        if place is None:
            return []
        entries = self._sessions[place[0]]
        when, seq = place[1], place[2]
        index = bisect.bisect_left(entries, (when, seq, memory_id))
        rings: list[list[str]] = []
        for step in (-1, 1):
            position, anchor = index, (when, seq)
            for distance in range(radius):
                found = self._nearest(entries, position, step, *anchor)
                if found is None:
                    break
                position, other = found
                anchor = (entries[position][0], entries[position][1])
                while len(rings) <= distance:
                    rings.append([])
                if allow(other):
                    rings[distance].append(other)
        return rings

    @staticmethod
    def _nearest(
        entries: list[tuple[int, int, str]], index: int, step: int, when: int, seq: int
    ) -> tuple[int, str] | None:
        """The first entry from ``index`` in direction ``step`` that is ordered against the
        memory at ``index``: a different event time within the window, or the same event time
        with both insertion numbers known.

        Entries of the same event time that are not ordered against this one (either number
        unknown) form one contiguous run in that direction (unknown numbers sort first), so the
        run is skipped with one bisect: an agent whose thousands of memories were stored in the
        same second before insertion numbers existed costs O(log n) here, not a scan."""
        position = index + step
        if not 0 <= position < len(entries):
            return None
        other_when, other_seq, other = entries[position]
        if other_when == when and not (seq and other_seq):
            if step < 0:
                position = bisect.bisect_left(entries, (when,)) - 1
            else:
                position = bisect.bisect_left(entries, (when + 1,))
            if not 0 <= position < len(entries):
                return None
            other_when, _, other = entries[position]
        if abs(other_when - when) > NEIGHBOUR_WINDOW_SECONDS:
            return None
        return position, other

    def __len__(self) -> int:
        return len(self._placed)
