"""Micro-batching: texts that need an embedding at the same moment share one forward pass.

One MiniLM forward pass costs about the same for one short text as for several (it streams all
~90 MB of weights for a handful of tokens; ARCHITECTURE "Known traps"), so sixteen concurrent
recalls each embedding its query alone pay sixteen times what one pass over the sixteen
queries costs. :class:`MicroBatcher` wraps any :class:`EmbeddingProvider` and gathers the small
``embed`` calls of concurrent requests (recall queries, single stores, vector text routes):

* a caller that finds no pass running starts one at once with whatever is queued (usually only
  its own text): a lone caller waits for nothing;
* a caller that finds a pass running queues its texts. When every pass slot is busy (the
  server's default is one slot, ``DAKERA_EMBEDDING_PASSES=1``) the queue fills until a pass
  ends, and the thread that ends it hands the whole queue to its head at once (group commit:
  the wait is bounded by the pass in flight, and the busier the server, the bigger the batches);
  with more slots, the head of the queue waits at most ``window`` (``BATCH_WINDOW_SECONDS``)
  for company before it starts a pass on a free slot;
* a pass takes at most ``max_batch`` texts; calls bigger than ``direct_above`` texts (batch
  stores, re-embedding) skip the queue: they are batches already.

Why one slot by default: measured side by side under the same load (``bench/load.py --variant``,
docs/benchmarks.md), two slots with a 2 ms window cost 8-13 % more server CPU per request at
16-64 clients than one slot (two half-size passes stream the weights twice), for no gain in
throughput on two cores.

No thread of its own: the caller at the head of the queue runs the pass on its request thread,
and every other caller of the pass sleeps on its own lock (no herd wakes at each pass).

The vectors are those of a one-at-a-time call up to float rounding: the MiniLM pass runs its
dense layers on the real tokens only and masks padded keys out of attention, so batching
changes only BLAS blocking (``tests/engine/text/test_batcher.py`` checks cosine >= 1 - 1e-6).
An error is a caller's own: when a pass over several callers' texts fails with a
:class:`~dakera_server.errors.DakeraError` (a remote provider refusing one text), each caller's
texts are embedded again on their own and only the offending call fails.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from dakera_server.engine.text.embedding import EmbeddingBatch, EmbeddingProvider
from dakera_server.errors import DakeraError, Unavailable

__all__ = ["BATCH_WINDOW_SECONDS", "DEFAULT_MAX_BATCH", "MicroBatcher"]

DEFAULT_MAX_BATCH = 32  # MiniLM's own chunk size (minilm.BATCH_SIZE): one pass, no splitting
DEFAULT_DIRECT_ABOVE = 8  # a call with more texts than this is a batch already
BATCH_WINDOW_SECONDS = 0.002  # with more than one pass slot: how long a free slot waits


class _Call:
    """One caller's texts, and what it is waiting for: to lead a pass, or its result."""

    __slots__ = ("arrived", "error", "group", "result", "signalled", "texts", "wake")

    def __init__(self, texts: list[str]) -> None:
        self.texts = texts
        self.arrived = time.monotonic()
        # Released once, when this caller is made leader or its result is in: a bare lock is
        # one C call to signal, where threading.Event.set runs a Condition in Python (the
        # profile of a busy server showed the wake-ups as a tenth of its GIL time).
        self.wake = threading.Lock()
        self.wake.acquire()
        self.signalled = False
        self.group: list[_Call] | None = None  # set when this caller must run the pass
        self.result: EmbeddingBatch | None = None
        self.error: BaseException | None = None

    @property
    def done(self) -> bool:
        return self.result is not None or self.error is not None

    def outcome(self) -> EmbeddingBatch:
        if self.error is not None:
            raise self.error
        assert self.result is not None
        return self.result


class MicroBatcher:
    """An :class:`EmbeddingProvider` that merges concurrent small calls into shared passes.

    Same contract as the provider it wraps (see the module docstring for how and why);
    ``passes`` bounds how many passes run at once and ``window`` (seconds) is how long a free
    slot waits for company while another pass runs; ``passes=0`` or ``window=0`` disables
    batching (every call goes straight through).
    """

    def __init__(
        self,
        inner: EmbeddingProvider,
        *,
        window: float,
        passes: int,
        max_batch: int = DEFAULT_MAX_BATCH,
        direct_above: int = DEFAULT_DIRECT_ABOVE,
    ) -> None:
        self.inner = inner
        self.model_name = inner.model_name
        self.dimension = inner.dimension
        self.max_tokens = inner.max_tokens
        self._off = window <= 0 or passes <= 0
        self._window = max(0.0, window)
        self._passes = max(1, passes)
        self._max_batch = max(1, max_batch)
        self._direct_above = min(direct_above, self._max_batch)
        self._lock = threading.Lock()
        self._queue: deque[_Call] = deque()
        self._queued_texts = 0
        self._running = 0
        self.passes_run = 0
        """Forward passes run through the queue (a test and the benchmark read it)."""
        self.texts_batched = 0
        """Texts embedded through the queue."""

    # ------------------------------------------------------------------ the provider interface
    def embed(self, texts: Sequence[str]) -> EmbeddingBatch:
        """Embed ``texts``, sharing a forward pass with concurrent callers when there are any."""
        if not texts or len(texts) > self._direct_above or self._off:
            return self.inner.embed(texts)
        call = _Call(list(texts))
        with self._lock:
            self._queue.append(call)
            self._queued_texts += len(call.texts)
            self._maybe_lead(call, at_arrival=True)
        while not call.signalled:
            timeout = self._window_left(call)
            if call.wake.acquire(timeout=-1 if timeout is None else timeout):
                break
            with self._lock:
                self._maybe_lead(call, at_arrival=False)
        if call.group is not None:
            self._run(call.group)
        return call.outcome()

    def embed_one(self, text: str) -> npt.NDArray[np.float32]:
        """Embed one text (through the queue); a 1-D unit vector."""
        vector: npt.NDArray[np.float32] = self.embed([text]).vectors[0]
        return vector

    # ------------------------------------------------------------------ queueing
    def _window_left(self, call: _Call) -> float | None:
        """How long ``call`` may sleep before it should look at leading again (None: until
        woken). Only the head of the queue has a window, and only while a slot is free."""
        with self._lock:
            if call.signalled or not self._queue or self._queue[0] is not call:
                return None
            if self._running >= self._passes:
                return None  # the thread ending a pass hands the queue over
            return max(0.0, call.arrived + self._window - time.monotonic())

    def _maybe_lead(self, call: _Call, *, at_arrival: bool) -> None:
        """Start a pass with ``call`` leading if the rules allow it now (lock held)."""
        if call.signalled or self._running >= self._passes or not self._queue:
            return
        head = self._queue[0]
        full = self._queued_texts >= self._max_batch
        alone = self._running == 0 and at_arrival and head is call
        window_over = time.monotonic() >= head.arrived + self._window
        if alone or full or window_over:
            self._start_pass(call)

    def _start_pass(self, leader: _Call) -> None:
        """Take up to ``max_batch`` texts from the queue head for ``leader`` (lock held)."""
        group: list[_Call] = []
        taken = 0
        while self._queue and (not group or taken + len(self._queue[0].texts) <= self._max_batch):
            member = self._queue.popleft()
            group.append(member)
            taken += len(member.texts)
        if leader not in group:
            # Whoever filled the batch leads the head's group; it stays queued for the next.
            leader = group[0]
        self._queued_texts -= taken
        self._running += 1
        leader.group = group
        _signal(leader)

    def _run(self, group: list[_Call]) -> None:
        """Run one pass for ``group`` (on the leader's thread), deliver, hand the queue on."""
        try:
            self._compute(group)
        finally:
            for member in group:
                if not member.done:  # only after an unexpected error the leader re-raises
                    member.error = Unavailable("the embedding pass failed; try again")
            with self._lock:
                self._running -= 1
                self.passes_run += 1
                self.texts_batched += sum(len(m.texts) for m in group)
                if self._queue and self._running < self._passes:
                    self._start_pass(self._queue[0])
            for member in group:
                if member.group is None:
                    _signal(member)

    def _compute(self, group: list[_Call]) -> None:
        """Embed the group's texts in one call and hand each member its rows."""
        texts = [text for member in group for text in member.texts]
        try:
            batch = self.inner.embed(texts)
        except DakeraError as exc:
            if len(group) == 1:
                group[0].error = exc
                return
            for member in group:  # whose text was it? each on its own
                try:
                    member.result = self.inner.embed(member.texts)
                except DakeraError as own:
                    member.error = own
            return
        start = 0
        for member in group:
            stop = start + len(member.texts)
            member.result = EmbeddingBatch(
                vectors=batch.vectors[start:stop],
                content_tokens=batch.content_tokens[start:stop],
                embedded_tokens=batch.embedded_tokens[start:stop],
            )
            start = stop


def _signal(call: _Call) -> None:
    """Wake ``call``, once. Only one thread ever signals a call: whoever makes it a leader
    (under the batcher's lock), or else the leader of the pass it is part of."""
    if not call.signalled:
        call.signalled = True
        call.wake.release()
