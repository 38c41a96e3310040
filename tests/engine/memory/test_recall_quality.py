"""The recall-quality ideas kept after the LoCoMo measurements (docs/benchmarks.md), each pinned
by a small deterministic check: query analysis, the session timeline, the fusion boosts, and the
ranking contract (rank_score order, top-k prefixes, filters before neighbours) on a real engine."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dakera_server.engine.access import Caller, Scope
from dakera_server.engine.memory.engine import MemoryEngine
from dakera_server.engine.memory.fusion import DEFAULT_TUNING, RecallTuning, minmax, relevance
from dakera_server.engine.memory.models import EVENT_TIME_KEY, Memory
from dakera_server.engine.memory.query import analyze_query, has_time_expression, speaker_of
from dakera_server.engine.memory.recall import RecallFilters, recall
from dakera_server.engine.memory.timeline import NEIGHBOUR_WINDOW_SECONDS, Timeline
from dakera_server.engine.memory.writes import NewMemory
from dakera_server.engine.text.embedding import EmbeddingProvider
from dakera_server.storage.sqlite import SqliteStore

ROOT = Caller("root", "root", Scope.SUPER_ADMIN)
JUNE_2023 = int(datetime(2023, 6, 14, 15, 0, tzinfo=UTC).timestamp())
MARCH_2023 = int(datetime(2023, 3, 9, 15, 0, tzinfo=UTC).timestamp())


def memory(
    memory_id: str, content: str, when: int = 0, session: str | None = None, seq: int = 0
) -> Memory:
    return Memory(
        id=memory_id,
        agent_id="a",
        content=content,
        metadata={EVENT_TIME_KEY: when} if when else None,
        session_id=session,
        created_at=1,
        seq=seq,
    )


def ring(
    timeline: Timeline, memory_id: str, allow: Callable[[str], bool] = lambda _id: True
) -> list[str]:
    """The nearest neighbours (distance 1) of ``memory_id``."""
    rings = timeline.neighbours(memory_id, allow)
    return rings[0] if rings else []


# ------------------------------------------------------------------ query analysis
@pytest.mark.parametrize(
    ("query", "asks_when"),
    [
        ("When did Caroline go to the LGBTQ support group?", True),
        ("How long has Caroline had her current group of friends for?", True),
        ("What year did Melanie start painting?", True),
        ("What did Caroline research?", False),
        ("Where has Melanie camped?", False),
    ],
)
def test_when_questions_are_recognised(query: str, asks_when: bool) -> None:
    assert analyze_query(query).asks_when is asks_when


def test_a_month_without_year_means_that_month_of_every_year_in_range() -> None:
    analysis = analyze_query("When did Melanie go camping in June?", range(2022, 2024))
    assert analysis.in_window(JUNE_2023)
    assert analysis.in_window(JUNE_2023 - 365 * 86400)
    assert not analysis.in_window(MARCH_2023)


def test_explicit_years_seasons_and_may_the_verb() -> None:
    assert analyze_query("What happened in October 2023?").in_window(
        int(datetime(2023, 10, 20, tzinfo=UTC).timestamp())
    )
    summer = analyze_query("Did she go to a parade during the summer?", range(2023, 2024))
    assert summer.in_window(int(datetime(2023, 8, 31, 23, tzinfo=UTC).timestamp()))
    assert not summer.in_window(int(datetime(2023, 9, 1, tzinfo=UTC).timestamp()))
    assert analyze_query("Which books may Caroline like?", range(2023, 2024)).windows == ()
    assert analyze_query("How many times in 2022 did they meet?").in_window(
        int(datetime(2022, 12, 31, tzinfo=UTC).timestamp())
    )


def test_names_are_capitalised_words_that_are_not_question_words_or_months() -> None:
    analysis = analyze_query("What did Caroline's friend Mel do in July?")
    assert analysis.names == frozenset({"caroline", "mel"})


@pytest.mark.parametrize(
    ("text", "dated"),
    [
        ("I went to a LGBTQ support group yesterday.", True),
        ("Last Friday I finally took my kids to the pottery workshop", True),
        ("We went camping with my fam two weekends ago", True),
        ("I'm going to a transgender conference this month.", True),
        ("We had a blast at the Pride fest in 2022", True),
        ("That photo is stunning! I love the colours.", False),
        ("My kids are so excited about the trip", False),
    ],
)
def test_time_expressions_in_memories(text: str, dated: bool) -> None:
    assert has_time_expression(text) is dated


def test_speaker_prefix() -> None:
    assert speaker_of("Caroline: I researched adoption agencies") == "caroline"
    assert speaker_of("Dr. Lopez: take two a day") == "dr. lopez"
    assert speaker_of("No speaker here, just text: with a colon") is None


# ------------------------------------------------------------------------ timeline
def test_timeline_neighbours_are_the_nearest_earlier_and_later_of_the_session() -> None:
    timeline = Timeline()
    for index, memory_id in enumerate("abcde"):
        timeline.add(memory(memory_id, "x", 1000 + index, "s1"))
    timeline.add(memory("other", "x", 1002, "s2"))
    assert ring(timeline, "c") == ["b", "d"]
    assert ring(timeline, "a") == ["b"]
    assert ring(timeline, "c", lambda memory_id: memory_id != "b") == ["d"]
    timeline.remove("d")
    assert ring(timeline, "c") == ["b", "e"]
    timeline.add(memory("e", "x", 5000, "s1"))  # moved far away: outside the window
    assert ring(timeline, "c") == ["b"]
    assert len(timeline) == 5


def test_timeline_rings_reach_further_with_a_radius() -> None:
    timeline = Timeline()
    for index, memory_id in enumerate("abcde"):
        timeline.add(memory(memory_id, "x", 1000 + index, "s1"))
    assert timeline.neighbours("c", lambda _id: True, radius=2) == [["b", "d"], ["a", "e"]]
    assert timeline.neighbours("a", lambda _id: True, radius=3) == [["b"], ["c"], ["d"]]
    # A filtered-out memory still counts as a step: the ring after it is two turns away.
    allow_not_b: Callable[[str], bool] = lambda memory_id: memory_id != "b"  # noqa: E731
    assert timeline.neighbours("c", allow_not_b, radius=2) == [["d"], ["a", "e"]]


def test_equal_event_times_without_insertion_order_and_distant_ones_are_not_neighbours() -> None:
    timeline = Timeline()
    timeline.add(memory("a", "x", 1000))
    timeline.add(memory("b", "x", 1000))
    timeline.add(memory("c", "x", 1000 + NEIGHBOUR_WINDOW_SECONDS + 1))
    assert ring(timeline, "a") == []
    assert ring(timeline, "missing") == []


def test_equal_event_times_are_ordered_by_insertion() -> None:
    # A chat log stored with only its session's date: every turn has the same event time, and
    # the order the client stored them in is what makes one turn follow another.
    timeline = Timeline()
    for seq, memory_id in [(3, "third"), (1, "first"), (2, "second"), (4, "fourth")]:
        timeline.add(memory(memory_id, "x", 1000, "s1", seq=seq))
    assert ring(timeline, "second") == ["first", "third"]
    assert ring(timeline, "first") == ["second"]
    assert timeline.neighbours("first", lambda _id: True, radius=2) == [["second"], ["third"]]
    timeline.add(memory("legacy", "x", 1000, "s1"))  # seq 0: no order against the others
    assert ring(timeline, "first") == ["second"]
    assert ring(timeline, "legacy") == []


# -------------------------------------------------------------------------- fusion
def fused(
    memories: dict[str, Memory],
    text_hits: list[tuple[str, float]],
    query: str,
    tuning: RecallTuning = DEFAULT_TUNING,
    neighbours: dict[str, list[str]] | None = None,
) -> dict[str, float]:
    found = relevance(
        [],
        text_hits,
        memories=memories,
        cosines=None,
        fusion="minmax",
        vector_weight=None,
        analysis=analyze_query(query, range(2023, 2024)),
        neighbours=None if neighbours is None else lambda m: [neighbours.get(m, [])],
        tuning=tuning,
    )
    return {memory_id: r.score for memory_id, r in found.items()}


def test_a_when_question_prefers_the_memory_that_dates_the_event() -> None:
    memories = {
        "plain": memory("plain", "Melanie: the pottery class is like therapy"),
        "dated": memory("dated", "Melanie: I signed up for a pottery class yesterday"),
    }
    hits = [("plain", 2.0), ("dated", 2.0), ("far", 0.0)]
    memories["far"] = memory("far", "Melanie: unrelated")
    scores = fused(memories, hits, "When did Melanie sign up for a pottery class?")
    assert scores["dated"] > scores["plain"]
    other = fused(memories, hits, "What did Melanie sign up for?")
    assert other["dated"] == other["plain"]


def test_a_named_month_prefers_memories_of_that_month() -> None:
    memories = {
        "june": memory("june", "Melanie: we went camping", JUNE_2023),
        "march": memory("march", "Melanie: we went camping", MARCH_2023),
        "far": memory("far", "Melanie: unrelated", MARCH_2023),
    }
    hits = [("march", 2.0), ("june", 2.0), ("far", 0.0)]
    scores = fused(memories, hits, "What did Melanie do in June?")
    assert scores["june"] > scores["march"]


def test_the_speaker_named_in_the_question_is_preferred() -> None:
    memories = {
        "mel": memory("mel", "Melanie: adoption agencies are slow"),
        "caro": memory("caro", "Caroline: adoption agencies are slow"),
        "far": memory("far", "Melanie: unrelated"),
    }
    hits = [("mel", 2.0), ("caro", 2.0), ("far", 0.0)]
    scores = fused(memories, hits, "What did Caroline think of adoption agencies?")
    assert scores["caro"] > scores["mel"]


def test_the_turn_after_a_strong_hit_is_lifted_but_never_above_it() -> None:
    memories = {
        "question": memory("question", "Melanie: what did you research?"),
        "answer": memory("answer", "Caroline: adoption agencies"),
        "weak": memory("weak", "Caroline: I research a lot of things"),
        "far": memory("far", "Melanie: unrelated"),
    }
    hits = [("question", 3.0), ("weak", 1.5), ("far", 0.0)]
    off = fused(memories, hits, "research", RecallTuning(neighbour_weight=0.0), {})
    assert "answer" not in off
    tuning = RecallTuning(neighbour_weight=0.7)
    scores = fused(memories, hits, "research", tuning, {"question": ["answer"]})
    assert scores["question"] > scores["answer"] > scores["weak"]


# ------------------------------------------------------- ranking contract on an engine
CORPUS = [
    ("Melanie: Hey Caroline! What have you been up to lately?", 0),
    ("Caroline: I researched adoption agencies for weeks.", 1),
    ("Melanie: That is brave. I signed up for a pottery class yesterday.", 2),
    ("Caroline: Pottery sounds relaxing, I should try it.", 3),
    ("Melanie: We went camping with the kids last weekend.", 4),
    ("Caroline: I went to an LGBTQ support group last Friday.", 5),
    ("Melanie: The kids loved the museum and the dinosaur bones.", 6),
    ("Caroline: My mentor said the counseling course starts in June.", 7),
    ("Melanie: I painted a sunrise over the lake in 2022.", 8),
    ("Caroline: The adoption interview went well, they call me next month.", 9),
]
QUERIES = [
    "What did Caroline research?",
    "When did Melanie sign up for pottery?",
    "Where did Melanie go with the kids?",
    "When did Caroline go to the support group?",
    "What did Melanie paint?",
    "adoption",
]


@pytest.fixture(scope="module")
def engine(
    tmp_path_factory: pytest.TempPathFactory, embedder: EmbeddingProvider
) -> Iterator[MemoryEngine]:
    """A real memory engine (SQLite store, MiniLM) holding CORPUS as one conversation."""
    store = SqliteStore(Path(tmp_path_factory.mktemp("recall-quality")) / "db.sqlite")
    # A fixed clock: recency is part of the rank score, and with real time two recalls a few
    # milliseconds apart could order near-ties (a neighbour lifted to 0.99999 of its seed)
    # differently, which the top-k prefix property below would report as a failure.
    now = JUNE_2023 + 30 * 86_400
    engine = MemoryEngine(
        store, embedder, max_content_bytes=100_000, exact_threshold=10_000, clock=lambda: now
    )
    items = [
        NewMemory(
            agent_id="conv",
            content=text,
            event_time=JUNE_2023 + offset,
            tags=["even" if offset % 2 == 0 else "odd"],
        )
        for text, offset in CORPUS
    ]
    engine.store(ROOT, items)
    yield engine
    store.close()


def contents(engine: MemoryEngine, query: str, top_k: int, **kwargs: object) -> list[str]:
    outcome = recall(engine, ROOT, "conv", query, top_k=top_k, touch=False, **kwargs)  # type: ignore[arg-type]
    return [r.memory.content for r in outcome.results]


def test_the_answer_turn_follows_its_question_into_the_results(engine: MemoryEngine) -> None:
    question = "Melanie: Hey Caroline! What have you been up to lately?"
    answer = "Caroline: I researched adoption agencies for weeks."
    query = "What have you been up to lately?"
    alone = contents(engine, query, 2, tuning=RecallTuning(neighbour_weight=0.0))
    assert alone[0] == question and answer not in alone
    assert contents(engine, query, 2) == [question, answer]


def test_neighbours_respect_filters(engine: MemoryEngine) -> None:
    filters = RecallFilters(tags=("even",))
    found = contents(engine, "What have you been up to lately?", 10, filters=filters)
    assert found
    assert all(CORPUS[[t for t, _ in CORPUS].index(c)][1] % 2 == 0 for c in found)


@settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    query=st.sampled_from(QUERIES),
    tuning=st.builds(
        RecallTuning,
        vector_weight=st.floats(0, 1),
        when_boost=st.floats(0, 1),
        window_boost=st.floats(0, 1),
        speaker_boost=st.floats(0, 1),
        neighbour_weight=st.floats(0, 1),
        neighbour_seeds=st.integers(0, 10),
        neighbour_radius=st.integers(1, 3),
        neighbour_decay=st.floats(0, 1),
    ),
)
def test_rank_order_and_top_k_prefixes_hold_for_any_tuning(
    engine: MemoryEngine, query: str, tuning: RecallTuning
) -> None:
    ten = recall(engine, ROOT, "conv", query, top_k=10, touch=False, tuning=tuning).results
    scores = [r.rank_score for r in ten]
    assert scores == sorted(scores, reverse=True)
    for k in range(1, 10):
        first = recall(engine, ROOT, "conv", query, top_k=k, touch=False, tuning=tuning).results
        assert [r.memory.id for r in first] == [r.memory.id for r in ten[:k]]


def test_min_max_treats_rounding_noise_as_a_tie() -> None:
    # float32 vs float64 BM25 of the same documents differ by ~1e-7: not a ranking signal.
    assert minmax({"a": 3.0000001, "b": 3.0, "c": 3.00000005}) == {"a": 1.0, "b": 1.0, "c": 1.0}
    assert minmax({"a": 0.60000002, "b": 0.6}) == {"a": 1.0, "b": 1.0}
    spread = minmax({"a": 3.0, "b": 2.0, "c": 2.5})
    assert spread == {"a": 1.0, "b": 0.0, "c": 0.5}
