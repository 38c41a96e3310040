"""A big MiniLM batch is spread over several threads (``DAKERA_EMBEDDING_THREADS``) without
changing a single bit of its vectors; a helper that fails or is starved of CPU neither fails
nor holds up the batch: the caller computes its chunk."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import numpy as np
import pytest

from dakera_server.engine.text import threads
from dakera_server.engine.text.minilm import BATCH_SIZE, MiniLMProvider
from dakera_server.engine.text.threads import embedding_threads, set_embedding_threads
from dakera_server.errors import Unavailable
from tests.engine.text.test_embeddings import TEXTS


@pytest.fixture
def minilm() -> Iterator[MiniLMProvider]:
    before = threads._embedding_threads
    yield MiniLMProvider.shared()
    set_embedding_threads(before)


def mixed_texts(n: int) -> list[str]:
    """Texts of many lengths, so chunks differ in size and padding."""
    return [f"{TEXTS[i % len(TEXTS)]} (variant {i})" + " and more" * (i % 13) for i in range(n)]


def record_forward_threads(minilm: MiniLMProvider, monkeypatch: pytest.MonkeyPatch) -> set[str]:
    """From now on, the names of the threads that run the model's forward pass."""
    seen: set[str] = set()
    forward = minilm._forward

    def recording(batch: list[list[int]]) -> np.ndarray:
        seen.add(threading.current_thread().name)
        return forward(batch)

    monkeypatch.setattr(minilm, "_forward", recording)
    return seen


def test_parallel_batch_is_bit_identical_and_uses_helpers(
    minilm: MiniLMProvider, monkeypatch: pytest.MonkeyPatch
) -> None:
    texts = mixed_texts(6 * BATCH_SIZE + 5)
    set_embedding_threads(1)
    sequential = minilm.embed(texts)

    seen = record_forward_threads(minilm, monkeypatch)
    set_embedding_threads(3)
    parallel = minilm.embed(texts)
    assert np.array_equal(parallel.vectors, sequential.vectors)
    assert parallel.content_tokens == sequential.content_tokens
    assert parallel.embedded_tokens == sequential.embedded_tokens
    assert threading.current_thread().name in seen
    assert any(name.startswith("dakera-embed") for name in seen), seen


def test_small_batch_stays_on_the_callers_thread(
    minilm: MiniLMProvider, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen = record_forward_threads(minilm, monkeypatch)
    set_embedding_threads(4)
    minilm.embed(TEXTS[:BATCH_SIZE])  # one chunk: nothing to share
    minilm.embed_one("a single query")
    assert seen == {threading.current_thread().name}


def in_helper() -> bool:
    return threading.current_thread().name.startswith("dakera-embed")


def test_a_failing_helper_is_covered_by_the_caller(
    minilm: MiniLMProvider, monkeypatch: pytest.MonkeyPatch
) -> None:
    texts = mixed_texts(8 * BATCH_SIZE)
    set_embedding_threads(1)
    expected = minilm.embed(texts).vectors
    forward = minilm._forward
    failures = []

    def failing_in_helpers(batch: list[list[int]]) -> np.ndarray:
        if in_helper():
            failures.append(len(batch))
            raise Unavailable("helper failed")
        return forward(batch)

    monkeypatch.setattr(minilm, "_forward", failing_in_helpers)
    set_embedding_threads(2)
    for _ in range(20):  # until a helper got to run (it may start after the caller is done)
        assert np.array_equal(minilm.embed(texts).vectors, expected)
        if failures:
            break
    assert failures


def test_a_starved_helper_does_not_hold_the_batch(
    minilm: MiniLMProvider, monkeypatch: pytest.MonkeyPatch
) -> None:
    texts = mixed_texts(8 * BATCH_SIZE)
    set_embedding_threads(1)
    expected = minilm.embed(texts).vectors
    forward = minilm._forward
    release = threading.Event()
    stalled = threading.Event()

    def stalling_in_helpers(batch: list[list[int]]) -> np.ndarray:
        if in_helper():
            stalled.set()
            release.wait(30)  # a helper that gets no CPU for as long as the test lasts
        return forward(batch)

    monkeypatch.setattr(minilm, "_forward", stalling_in_helpers)
    set_embedding_threads(2)
    try:
        for _ in range(20):
            started = time.monotonic()
            assert np.array_equal(minilm.embed(texts).vectors, expected)
            if stalled.is_set():
                assert time.monotonic() - started < 10  # not the helper's 30 s
                break
        assert stalled.is_set()
    finally:
        release.set()


def test_zero_means_one_thread_per_usable_core(minilm: MiniLMProvider) -> None:
    set_embedding_threads(0)
    assert embedding_threads() == threads.usable_cores() >= 1
    set_embedding_threads(2)
    assert embedding_threads() == 2
