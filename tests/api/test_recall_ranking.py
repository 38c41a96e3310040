"""Recall ranking through the SDK: the query-intent and session-neighbour signals reach clients,
and the ordering contract still holds with them (rank_score order, top-k prefixes)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from dakera.models import BatchStoreMemoryItem, BatchStoreMemoryRequest

JUNE = int(datetime(2023, 6, 20, 14, 0, tzinfo=UTC).timestamp())
MARCH = int(datetime(2023, 3, 20, 14, 0, tzinfo=UTC).timestamp())


def store(client: Any, agent_id: str, items: list[tuple[str, int]]) -> list[str]:
    answer = client.store_memories_batch(
        BatchStoreMemoryRequest(
            agent_id=agent_id,
            memories=[BatchStoreMemoryItem(content=c, event_time=t) for c, t in items],
        )
    )
    return [m.id for m in answer.stored]


def test_a_named_month_picks_the_memory_whose_event_time_is_in_it(
    client: Any, agent_id: str
) -> None:
    march, june, _ = store(
        client,
        agent_id,
        [
            ("Melanie: We went camping by the lake with the kids.", MARCH),
            ("Melanie: We went camping by the lake with the kids!", JUNE),
            ("Caroline: The adoption agency called back.", JUNE + 86_400),
        ],
    )
    ranked = client.recall(agent_id, "When did Melanie go camping in June?", top_k=3).memories
    assert [m.id for m in ranked][:2] == [june, march]
    ranked = client.recall(agent_id, "When did Melanie go camping in March?", top_k=3).memories
    assert [m.id for m in ranked][:2] == [march, june]


def test_the_reply_to_a_matching_turn_is_recalled_with_it(client: Any, agent_id: str) -> None:
    ids = store(
        client,
        agent_id,
        [
            ("Melanie: Hey Caroline! What have you been up to lately?", JUNE),
            ("Caroline: I researched adoption agencies for weeks.", JUNE + 1),
            ("Melanie: I signed up for a pottery class yesterday.", JUNE + 2),
            ("Caroline: Pottery sounds relaxing, I should try it.", JUNE + 3),
            ("Melanie: We went camping with the kids last weekend.", JUNE + 4),
            ("Caroline: I went to an LGBTQ support group last Friday.", JUNE + 5),
        ],
    )
    answer = client.recall(agent_id, "What have you been up to lately?", top_k=2)
    assert [m.id for m in answer.memories] == ids[:2]
    scores = [m.score for m in answer.memories]
    assert scores == sorted(scores, reverse=True)
    assert answer.rerank_report is not None


def test_top_k_prefixes_are_stable_with_every_signal_on(client: Any, agent_id: str) -> None:
    store(
        client,
        agent_id,
        [
            (f"Speaker{i % 3}: note {i} about camping, pottery and June plans", JUNE + i)
            for i in range(15)
        ],
    )
    for query in ("When did Speaker1 go camping in June?", "What did Speaker2 say about pottery?"):
        ten = [m.id for m in client.recall(agent_id, query, top_k=10).memories]
        for k in range(1, 10):
            assert [m.id for m in client.recall(agent_id, query, top_k=k).memories] == ten[:k]


CHAT = [
    "Melanie: Hey Caroline! What have you been up to lately?",
    "Caroline: I researched adoption agencies for weeks.",
    "Melanie: I signed up for a pottery class yesterday.",
    "Caroline: Pottery sounds relaxing, I should try it.",
    "Melanie: We went camping with the kids last weekend.",
    "Caroline: I went to an LGBTQ support group last Friday.",
]


@pytest.mark.parametrize("one_at_a_time", [True, False])
def test_turns_that_share_their_session_date_keep_their_order(
    client: Any, agent_id: str, one_at_a_time: bool
) -> None:
    # Most clients send only the session's date (or none): every turn has the same event time.
    # The order they were stored in still makes the reply follow its question into the results.
    if one_at_a_time:
        ids = [client.store_memory(agent_id, text, event_time=JUNE)["id"] for text in CHAT]
    else:
        ids = store(client, agent_id, [(text, JUNE) for text in CHAT])
    answer = client.recall(agent_id, "What have you been up to lately?", top_k=2)
    assert [m.id for m in answer.memories] == ids[:2]
    stored = client.get_memory(agent_id, ids[1])
    assert stored["content"] == CHAT[1] and "seq" not in stored  # insertion order stays internal
