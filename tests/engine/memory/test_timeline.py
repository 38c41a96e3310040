"""The timeline's neighbour lookup, checked against the definition written as a plain scan.

Inputs are wide (any mix of event times, sessions and known or unknown insertion numbers), so
hypothesis draws them; the scan is the docstring of ``Timeline`` read literally."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from dakera_server.engine.memory.models import Memory
from dakera_server.engine.memory.timeline import NEIGHBOUR_WINDOW_SECONDS, Timeline

Entry = tuple[int, int, str]


def memory(index: int, when: int, seq: int, session: str | None) -> Memory:
    return Memory(
        id=f"m{index:04d}",
        agent_id="a",
        content="x",
        seq=seq,
        session_id=session,
        created_at=when,
        updated_at=0,
        last_accessed_at=0,
    )


def scan_neighbours(memories: list[Memory], target: Memory, radius: int) -> list[list[str]]:
    """Step one entry at a time through the session's sorted entries (the old O(n) lookup)."""
    entries = sorted(
        (m.event_time, m.seq, m.id) for m in memories if m.session_id == target.session_id
    )
    index = entries.index((target.event_time, target.seq, target.id))
    rings: list[list[str]] = []
    for step in (-1, 1):
        position, when, seq = index, target.event_time, target.seq
        for distance in range(radius):
            found = None
            probe = position + step
            while 0 <= probe < len(entries):
                other_when, other_seq, other = entries[probe]
                if abs(other_when - when) > NEIGHBOUR_WINDOW_SECONDS:
                    break
                if other_when != when or (seq and other_seq):
                    found = probe, other
                    break
                probe += step
            if found is None:
                break
            position = found[0]
            when, seq = entries[position][0], entries[position][1]
            while len(rings) <= distance:
                rings.append([])
            rings[distance].append(found[1])
    return rings


memories_drawn = st.lists(
    st.tuples(
        st.sampled_from([0, 100, 250, 400, 1_000]),  # few distinct times: many ties
        st.integers(min_value=0, max_value=6),  # 0 = insertion number unknown
        st.sampled_from([None, "s1", "s2"]),
    ),
    min_size=1,
    max_size=40,
)


@settings(max_examples=300, deadline=None)
@given(drawn=memories_drawn, radius=st.integers(min_value=1, max_value=3), data=st.data())
def test_neighbours_match_the_plain_scan(
    drawn: list[tuple[int, int, str | None]], radius: int, data: st.DataObject
) -> None:
    memories = [memory(i, when, seq, session) for i, (when, seq, session) in enumerate(drawn)]
    timeline = Timeline()
    for m in memories:
        timeline.add(m)
    target = data.draw(st.sampled_from(memories))
    assert timeline.neighbours(target.id, lambda _: True, radius) == scan_neighbours(
        memories, target, radius
    )


def test_a_large_run_of_unordered_memories_is_skipped_whole() -> None:
    """10,000 memories stored in one second before insertion numbers existed: the neighbours
    are the memories of the nearest other second on each side (the run is skipped by a bisect;
    its cost is measured in bench/latency.py, not here)."""
    timeline = Timeline()
    for i in range(10_000):
        timeline.add(memory(i, 500, 0, None))
    timeline.add(memory(20_000, 400, 0, None))
    timeline.add(memory(20_001, 600, 0, None))
    rings = timeline.neighbours("m5000", lambda _: True, 2)
    assert rings == [["m20000", "m20001"]]
