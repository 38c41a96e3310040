"""Micro-batching (``engine/text/batcher.py``): shared passes give the one-at-a-time vectors.

The contract tests of ``test_embeddings.py`` also run against a ``MicroBatcher``; here are its
own promises: concurrent callers share passes, each gets exactly its rows, a lone caller never
waits for the window, big calls bypass the queue, and one caller's refused text fails only that
caller. Timing (how much CPU batching saves) is measured in ``bench/load.py``, not here.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dakera_server.engine.text.batcher import MicroBatcher
from dakera_server.engine.text.embedding import EmbeddingProvider
from dakera_server.engine.text.minilm import MiniLMProvider
from dakera_server.errors import InvalidInput
from tests.engine.text.test_embeddings import (
    FAKE_DIM,
    _FakeServer,
    fake_server,  # noqa: F401  (the fixture, shared with the provider contract tests)
    fake_vector,
    remote,
    unit,
)

TOLERANCE = 1e-6  # cosine between a batched vector and the one-at-a-time vector

# Texts of very different token counts (one word to past the 256-token cut), in several scripts,
# so one pass pads short texts next to long ones.
WORDS = st.sampled_from(
    "the user likes dark roast coffee Lisbon März 東京 🎉 renew TLS certificates "
    "x a meeting at 10:30 https://example.org/a?b=c don't self-hosted".split()
)
SHORT = st.lists(WORDS, min_size=0, max_size=30).map(" ".join)
LONG = st.lists(WORDS, min_size=150, max_size=300).map(" ".join)
TEXTS = st.one_of(SHORT, SHORT, SHORT, LONG)


def cosine(a: npt.NDArray[Any], b: npt.NDArray[Any]) -> float:
    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    return float(a64 @ b64 / (np.linalg.norm(a64) * np.linalg.norm(b64)))


def concurrently(calls: Sequence[Callable[[], Any]]) -> list[Any]:
    """Run every call on its own thread, released together; results (or exceptions) in order."""
    results: list[Any] = [None] * len(calls)
    gate = threading.Barrier(len(calls))

    def run(i: int) -> None:
        gate.wait()
        try:
            results[i] = calls[i]()
        except Exception as exc:
            results[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    return results


@pytest.fixture(scope="module")
def minilm() -> MiniLMProvider:
    return MiniLMProvider.shared()


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(texts=st.lists(TEXTS, min_size=2, max_size=8))
def test_one_pass_over_mixed_lengths_equals_one_at_a_time(
    minilm: MiniLMProvider, texts: list[str]
) -> None:
    together = minilm.embed(texts)
    for i, text in enumerate(texts):
        alone = minilm.embed([text])
        assert cosine(together.vectors[i], alone.vectors[0]) >= 1 - TOLERANCE
        assert together.content_tokens[i] == alone.content_tokens[0]
        assert together.embedded_tokens[i] == alone.embedded_tokens[0]


@settings(max_examples=5, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(texts=st.lists(TEXTS, min_size=2, max_size=12))
def test_concurrent_callers_get_their_own_vectors(minilm: MiniLMProvider, texts: list[str]) -> None:
    batcher = MicroBatcher(minilm, window=0.005, passes=1)
    got = concurrently([lambda t=t: batcher.embed([t]) for t in texts])
    for text, batch in zip(texts, got, strict=True):
        assert not isinstance(batch, Exception), batch
        alone = minilm.embed([text])
        assert batch.vectors.shape == (1, minilm.dimension)
        assert batch.vectors.flags.c_contiguous
        assert cosine(batch.vectors[0], alone.vectors[0]) >= 1 - TOLERANCE
        assert batch.content_tokens == alone.content_tokens
    assert batcher.texts_batched == len(texts)


def test_concurrent_calls_share_passes(minilm: MiniLMProvider) -> None:
    batcher = MicroBatcher(minilm, window=0.005, passes=1)
    texts = [f"question number {i} about the garden" for i in range(24)]
    got = concurrently([lambda t=t: batcher.embed_one(t) for t in texts])
    assert all(isinstance(v, np.ndarray) for v in got)
    assert batcher.texts_batched == len(texts)
    # With one pass at a time, every caller arriving while one runs joins the next: 24 callers
    # released together cannot need 24 passes.
    assert batcher.passes_run < len(texts)


def test_calls_with_several_texts_keep_their_rows_together(minilm: MiniLMProvider) -> None:
    batcher = MicroBatcher(minilm, window=0.005, passes=1)
    groups = [[f"group {g} text {i}" for i in range(g % 3 + 1)] for g in range(9)]
    got = concurrently([lambda g=g: batcher.embed(g) for g in groups])
    for group, batch in zip(groups, got, strict=True):
        expected = minilm.embed(group).vectors
        assert batch.vectors.shape == expected.shape
        for row, want in zip(batch.vectors, expected, strict=True):
            assert cosine(row, want) >= 1 - TOLERANCE


def test_a_lone_caller_does_not_wait_for_the_window(minilm: MiniLMProvider) -> None:
    # A window of a minute: if a lone call waited for company, this would take a minute.
    batcher = MicroBatcher(minilm, window=60.0, passes=2)
    started = time.monotonic()
    for i in range(3):
        batcher.embed_one(f"alone {i}")
    assert time.monotonic() - started < 30
    assert batcher.passes_run == 3


def test_big_calls_and_batching_off_go_straight_through(minilm: MiniLMProvider) -> None:
    batcher = MicroBatcher(minilm, window=0.002, passes=1, direct_above=8)
    batch = batcher.embed([f"memory {i}" for i in range(20)])
    assert len(batch) == 20 and batcher.passes_run == 0
    off = MicroBatcher(minilm, window=0.0, passes=1)
    concurrently([lambda i=i: off.embed_one(f"text {i}") for i in range(6)])
    assert off.passes_run == 0
    assert len(off.embed([])) == 0
    no_slots = MicroBatcher(minilm, window=0.002, passes=0)  # DAKERA_EMBEDDING_PASSES=0
    concurrently([lambda i=i: no_slots.embed_one(f"text {i}") for i in range(6)])
    assert no_slots.passes_run == 0


def test_the_batcher_is_an_embedding_provider(minilm: MiniLMProvider) -> None:
    batcher = MicroBatcher(minilm, window=0.002, passes=1)
    assert isinstance(batcher, EmbeddingProvider)
    assert (batcher.model_name, batcher.dimension, batcher.max_tokens) == (
        minilm.model_name,
        minilm.dimension,
        minilm.max_tokens,
    )


# --- errors stay with their caller: a remote provider that refuses one text -----------------


@pytest.fixture
def poison_server(request: pytest.FixtureRequest) -> _FakeServer:
    server: _FakeServer = request.getfixturevalue("fake_server")
    server.requests.clear()
    return server


def test_a_refused_text_fails_only_its_caller(poison_server: _FakeServer) -> None:
    # "poison" mode answers 413 for any request holding a text with POISON, and takes 0.2 s per
    # request, so callers arriving meanwhile queue up and share the next pass.
    provider = remote(poison_server, "poison")
    batcher = MicroBatcher(provider, window=0.002, passes=1)
    try:
        first = threading.Thread(target=batcher.embed_one, args=("warm-up holds the pass",))
        first.start()
        time.sleep(0.05)  # the first pass is in flight: the next callers queue behind it
        texts = ["fine one", "POISON text", "fine two", "fine three"]
        got = concurrently([lambda t=t: batcher.embed([t]) for t in texts])
        first.join()
    finally:
        provider.close()
    for text, result in zip(texts, got, strict=True):
        if "POISON" in text:
            assert isinstance(result, InvalidInput), result
        else:
            assert not isinstance(result, Exception), result
            assert result.vectors.shape == (1, FAKE_DIM)
            assert cosine(result.vectors[0], unit(fake_vector(text))) >= 1 - TOLERANCE
    sent = [r["body"]["input"] for r in poison_server.requests if r["mode"] == "poison"]
    # The four queued callers went out as one request, refused, then one request each.
    assert any(len(inputs) == len(texts) for inputs in sent), sent
    assert ["POISON text"] in sent
