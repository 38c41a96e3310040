"""BM25 full-text index: tantivy in RAM, plus a tiny overlay that makes writes searchable at once.

The index is never written to disk (an on-disk term dictionary would leak plaintext when
encryption at rest is on); it is rebuilt from the store at start-up.

Why an overlay: making one document searchable in tantivy (writer, commit, wait for merges,
reader reload) measured p50 2.4 ms, p95 7 ms and max 350 ms at 100k documents on the project's
2-core machine (a merge landing in the call; ``bench/indexes.py``), while a memory store must
answer in <= 15 ms at p50 including ~6 ms of embedding and be searchable when it returns. So a
small write goes into a pure-Python BM25 overlay (0.03 ms) and into a queue; a timer thread
commits the queue to tantivy in one batch a moment later, then drops those documents from the
overlay. The committed searcher and the overlay are swapped together under one lock, so a search
never sees a document twice or not at all. Overlay documents are scored with tantivy's formula
(``bm25.py``: the same 32-bit steps) over the statistics of the whole current collection,
i.e. the score tantivy gives the document once committed (bit for bit, until deletes
leave dead documents in tantivy's own statistics). Deletes and replacements hide the old
version at once: every tantivy document carries a per-version ``key`` and hits whose key is no
longer live are skipped. Big batches (a start-up rebuild) bypass the overlay and commit
synchronously.

Text analysis: Unicode word split, lower-case, ASCII folding, the NLTK English stop words and the
Snowball English stemmer, registered as a tantivy analyzer and applied to queries through the same
object, so the query parser is never used and no user text can make a search raise.
"""

from __future__ import annotations

import logging
import threading
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import NamedTuple

import tantivy

from dakera_server.engine.text.bm25 import score_postings

__all__ = ["ENGLISH_STOP_WORDS", "FullTextIndex", "FullTextStats", "analyze"]

logger = logging.getLogger(__name__)

# NLTK's English list (179 words) without the apostrophe forms ("don't", "you're"): the
# tokenizer splits those at the apostrophe into pieces that are on the list ("don", "t", "re").
ENGLISH_STOP_WORDS: frozenset[str] = frozenset(
    """
    i me my myself we our ours ourselves you your yours yourself yourselves he him his himself
    she her hers herself it its itself they them their theirs themselves what which who whom
    this that these those am is are was were be been being have has had having do does did
    doing a an the and but if or because as until while of at by for with about against between
    into through during before after above below to from up down in out on off over under again
    further then once here there when where why how all any both each few more most other some
    such no nor not only own same so than too very s t can will just don should now d ll m o re
    ve y ain aren couldn didn doesn hadn hasn haven isn ma mightn mustn needn shan shouldn wasn
    weren won wouldn
    """.split()
)

FLUSH_DELAY_SECONDS = 0.25  # how long a small write may sit in the overlay before its commit
MAX_PENDING_DOCS = 2000  # overlay size that makes the next commit start at once (soft bound)
BULK_DOCS = 1000  # an upsert this large commits synchronously instead of using the overlay
WRITER_HEAP_BYTES = 32_000_000
MAX_TOKEN_CHARS = 40
MAX_QUERY_TERMS = 256  # distinct terms kept from a query: bounds the cost of pasted essays
MAX_TIED_EXTRA = 1_000  # hits tied with the k-th read past it, so ties rank by id

_ANALYZER_NAME = "dakera_en"


def _build_analyzer() -> tantivy.TextAnalyzer:
    return (
        tantivy.TextAnalyzerBuilder(tantivy.Tokenizer.simple())
        .filter(tantivy.Filter.remove_long(MAX_TOKEN_CHARS))
        .filter(tantivy.Filter.lowercase())
        .filter(tantivy.Filter.ascii_fold())
        .filter(tantivy.Filter.custom_stopword(sorted(ENGLISH_STOP_WORDS)))
        .filter(tantivy.Filter.stemmer("english"))
        .build()
    )


_ANALYZER = _build_analyzer()


def analyze(text: str) -> list[str]:
    """The indexed terms of ``text``, in order, exactly as the index sees them."""
    return list(_ANALYZER.analyze(text))


@dataclass(frozen=True)
class FullTextStats:
    """What ``GET .../fulltext/stats`` reports: live documents, distinct indexed terms, and
    the mean number of indexed terms per document (after stop words and stemming)."""

    document_count: int
    unique_terms: int
    avg_doc_length: float


class _Version(NamedTuple):
    key: int
    text: str
    replaces: bool  # an older version may be in tantivy: delete by id before adding


@dataclass
class _PendingDoc:
    terms: Counter[str]
    length: int


class FullTextIndex:
    """A BM25 index of ``(id, text)`` documents, thread-safe, searchable as soon as a write
    returns (see the module docstring for how).

    ``flush_delay`` bounds how long small writes wait before their batched tantivy commit.
    """

    def __init__(
        self, *, flush_delay: float = FLUSH_DELAY_SECONDS, max_pending: int = MAX_PENDING_DOCS
    ) -> None:
        self._flush_delay = flush_delay
        self._max_pending = max_pending
        self._lock = threading.Lock()  # guards every field below except the tantivy writer
        self._flush_lock = threading.Lock()  # one commit at a time
        self._key_of: dict[str, int] = {}  # live id -> key of its current version
        self._id_of: dict[int, str] = {}  # live key -> id
        self._lengths: dict[int, int] = {}  # live key -> indexed term count
        self._total_terms = 0
        self._next_key = 0
        self._pending: dict[int, _PendingDoc] = {}  # not yet in the committed searcher
        self._postings: dict[str, dict[int, int]] = {}  # overlay term -> {key: term freq}
        self._queue: dict[str, _Version | None] = {}  # id -> version to commit, None = delete
        self._timer: threading.Timer | None = None
        self._generation = 0
        self._unique_terms: tuple[int, int] | None = None  # (generation, count) cache
        self._index, self._schema = self._new_index()
        self._searcher = self._index.searcher()

    @staticmethod
    def _new_index() -> tuple[tantivy.Index, tantivy.Schema]:
        builder = tantivy.SchemaBuilder()
        # Deletes go by a term on this raw text field: deleting by an unsigned field
        # silently matches nothing (ARCHITECTURE "Known traps").
        builder.add_text_field("id", tokenizer_name="raw", index_option="basic")
        builder.add_unsigned_field("key", fast=True)
        builder.add_text_field("body", tokenizer_name=_ANALYZER_NAME, index_option="freq")
        schema = builder.build()
        index = tantivy.Index(schema)  # no path: RAM only
        index.register_tokenizer(_ANALYZER_NAME, _ANALYZER)
        index.config_reader(reload_policy="Manual")
        return index, schema

    # --- writes -------------------------------------------------------------------------------

    def upsert(self, docs: Sequence[tuple[str, str]]) -> None:
        """Index or replace each ``(id, text)``; a repeated id keeps its last text.

        Every document is searchable, and every replaced version gone, when this returns.
        """
        latest = {id_: text for id_, text in docs}
        if not latest:
            return
        prepared = [(id_, text, analyze(text)) for id_, text in latest.items()]
        if len(prepared) >= BULK_DOCS:
            with self._flush_lock:
                with self._lock:
                    for id_, text, terms in prepared:
                        self._enqueue(id_, text, len(terms))
                self._flush_locked()
            return
        with self._lock:
            for id_, text, terms in prepared:
                key = self._enqueue(id_, text, len(terms))
                counts = Counter(terms)
                self._pending[key] = _PendingDoc(counts, len(terms))
                for term, freq in counts.items():
                    self._postings.setdefault(term, {})[key] = freq
            self._schedule_locked()

    def delete(self, ids: Iterable[str]) -> int:
        """Remove these ids; returns how many existed. They stop matching immediately."""
        removed = 0
        with self._lock:
            for id_ in ids:
                if self._unregister(id_):
                    self._queue[id_] = None
                    removed += 1
            if removed:
                self._schedule_locked()
        return removed

    def clear(self) -> None:
        """Drop every document (the index is rebuilt empty)."""
        with self._flush_lock, self._lock:
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
            self._index, self._schema = self._new_index()
            self._searcher = self._index.searcher()
            self._key_of.clear()
            self._id_of.clear()
            self._lengths.clear()
            self._pending.clear()
            self._postings.clear()
            self._queue.clear()
            self._total_terms = 0
            self._generation += 1

    def flush(self) -> None:
        """Commit queued writes to tantivy now (the overlay empties). Never needed for
        correctness; used before stats, by benchmarks and at shutdown."""
        with self._flush_lock:
            self._flush_locked()

    def _enqueue(self, id_: str, text: str, length: int) -> int:
        """Make ``id_`` live under a new key and queue that version for the next commit."""
        # A new id needs no delete-by-term before its add (saves a term lookup per document
        # in a bulk load); a known or queued one may have a committed version to remove.
        replaces = id_ in self._key_of or id_ in self._queue
        self._unregister(id_)
        key = self._next_key
        self._next_key += 1
        self._key_of[id_] = key
        self._id_of[key] = id_
        self._lengths[key] = length
        self._total_terms += length
        self._queue[id_] = _Version(key, text, replaces)
        return key

    def _unregister(self, id_: str) -> bool:
        key = self._key_of.pop(id_, None)
        if key is None:
            return False
        del self._id_of[key]
        self._total_terms -= self._lengths.pop(key)
        self._drop_pending(key)
        return True

    def _drop_pending(self, key: int) -> None:
        doc = self._pending.pop(key, None)
        if doc is None:
            return
        for term in doc.terms:
            postings = self._postings[term]
            del postings[key]
            if not postings:
                del self._postings[term]

    def _schedule_locked(self) -> None:
        if self._timer is not None:
            return
        delay = 0.0 if len(self._pending) >= self._max_pending else self._flush_delay
        self._timer = threading.Timer(delay, self._background_flush)
        self._timer.daemon = True
        self._timer.start()

    def _background_flush(self) -> None:
        with self._flush_lock:
            with self._lock:
                self._timer = None
            try:
                self._flush_locked()
            except (ValueError, OSError, RuntimeError):
                # The queue was put back; the overlay keeps serving the documents until the
                # next write schedules another attempt.
                logger.exception("full-text commit failed")

    def _flush_locked(self) -> None:
        """Commit the queue (caller holds ``_flush_lock``) and swap in the new searcher."""
        with self._lock:
            queue, self._queue = self._queue, {}
            index = self._index
        if not queue:
            return
        try:
            threads = 2 if len(queue) >= BULK_DOCS else 1
            writer = index.writer(heap_size=WRITER_HEAP_BYTES, num_threads=threads)
            for id_, version in queue.items():
                if version is None or version.replaces:
                    writer.delete_documents_by_term("id", id_)
                if version is not None:
                    doc = tantivy.Document()
                    doc.add_text("id", id_)
                    doc.add_unsigned("key", version.key)
                    doc.add_text("body", version.text)
                    writer.add_document(doc)
            writer.commit()
            # Waiting for merges keeps the segment count low; dropping a writer mid-merge
            # cancels it and segments pile up (hundreds after a few hundred small commits).
            writer.wait_merging_threads()
            index.reload()
            searcher = index.searcher()
        except (ValueError, OSError, RuntimeError):
            with self._lock:
                for id_, version in queue.items():
                    self._queue.setdefault(id_, version)
            raise
        with self._lock:
            if index is not self._index:  # cleared meanwhile
                return
            self._searcher = searcher
            self._generation += 1
            for version in queue.values():
                if version is not None:
                    self._drop_pending(version.key)
            if self._queue:
                self._schedule_locked()

    # --- reads --------------------------------------------------------------------------------

    def search(
        self, query: str, k: int, allow: Callable[[str], bool] | None = None
    ) -> list[tuple[str, float]]:
        """BM25 top ``k`` as ``(id, score)``, best first; any text is a valid query.

        Query terms are OR-ed (a document matching more of them scores higher). An empty or
        all-stop-word query returns ``[]``. ``allow`` filters before the top-``k`` cut: when at
        least ``k`` matching ids pass it, ``k`` results come back.
        """
        terms = list(dict.fromkeys(analyze(query)))[:MAX_QUERY_TERMS]
        if not terms or k <= 0:
            return []
        with self._lock:
            searcher, schema = self._searcher, self._schema
            overlay = {t: list(self._postings[t].items()) for t in terms if t in self._postings}
            overlay_lengths = {
                key: self._pending[key].length for p in overlay.values() for key, _ in p
            }
            doc_count, total_terms = len(self._key_of), self._total_terms
        results = self._score_overlay(
            searcher, overlay, overlay_lengths, doc_count, total_terms, allow
        )
        results.extend(self._search_committed(searcher, schema, terms, k, allow))
        results.sort(key=lambda hit: (-hit[1], hit[0]))  # ties by id: one order either way
        return results[:k]

    def _score_overlay(
        self,
        searcher: tantivy.Searcher,
        overlay: dict[str, list[tuple[int, int]]],
        lengths: dict[int, int],
        doc_count: int,
        total_terms: int,
        allow: Callable[[str], bool] | None,
    ) -> list[tuple[str, float]]:
        scores = score_postings(
            overlay, lengths, doc_count, total_terms, lambda term: searcher.doc_freq("body", term)
        )
        out = []
        for key, score in scores.items():
            id_ = self._id_of.get(key)
            if id_ is not None and (allow is None or allow(id_)):
                out.append((id_, float(score)))
        return out

    def _search_committed(
        self,
        searcher: tantivy.Searcher,
        schema: tantivy.Schema,
        terms: list[str],
        k: int,
        allow: Callable[[str], bool] | None,
    ) -> list[tuple[str, float]]:
        if searcher.num_docs == 0:
            return []
        query = tantivy.Query.boolean_query(
            [
                (tantivy.Occur.Should, tantivy.Query.term_query(schema, "body", t, "freq"))
                for t in terms
            ]
        )
        out: list[tuple[str, float]] = []
        offset, page = 0, max(2 * k, 32)
        kth: float | None = None  # the k-th surviving score, once reached
        # Hits of replaced or deleted versions (not yet committed away) and hits ``allow``
        # rejects are skipped, so page on until k survive or the matches run out. Hits tied
        # with the k-th are read too (up to a bound): tantivy breaks ties by its own document
        # order, the caller by id, and the overlay cannot know tantivy's order.
        while True:
            hits = searcher.search(query, limit=page, count=False, offset=offset).hits
            keys = searcher.fast_field_values("key", [address for _, address in hits])
            for (score, _), key in zip(hits, keys, strict=True):
                if kth is not None and (score < kth or len(out) >= k + MAX_TIED_EXTRA):
                    return out
                id_ = self._id_of.get(key) if isinstance(key, int) else None
                if id_ is None or (allow is not None and not allow(id_)):
                    continue
                out.append((id_, float(score)))
                if len(out) == k:
                    kth = score
            if len(hits) < page:
                return out
            offset += page
            # Each page re-ranks from the top, so size the next one from the pass rate seen
            # so far: a selective filter gets to "score everything" in one or two rounds.
            rate = max(len(out), 1) / offset
            page = max(4 * page, int(2 * (k - len(out)) / rate))

    def stats(self) -> FullTextStats:
        """Live document count, distinct indexed terms and mean indexed terms per document.

        Commits pending writes first so ``unique_terms`` counts exactly the live documents.
        """
        self.flush()
        with self._lock:
            count, total, generation = len(self._key_of), self._total_terms, self._generation
            searcher = self._searcher
            cached = self._unique_terms
        if cached is not None and cached[0] == generation:
            unique = cached[1]
        else:
            # Filtering by all-docs makes tantivy count only live documents per term, so terms
            # left behind by deleted-but-unmerged documents are not counted.
            terms = searcher.terms_with_prefix("body", "", filter_query=tantivy.Query.all_query())
            unique = sum(1 for _, freq in terms if freq > 0)
            with self._lock:
                self._unique_terms = (generation, unique)
        return FullTextStats(count, unique, total / count if count else 0.0)

    def __len__(self) -> int:
        return len(self._key_of)

    def __contains__(self, id: object) -> bool:
        return id in self._key_of
