"""Splitting a document into chunks a retrieval model can embed whole.

``structure`` (the default): a chunk never crosses a heading, so each one belongs to exactly one
section and its breadcrumb is true. Within a section, whole paragraphs are packed up to the
token budget; a paragraph too long for one chunk is cut at sentence ends, and a sentence too
long at word boundaries. Each chunk after the first of a section starts with the last
``overlap`` tokens of the one before, so a fact that straddles a cut is whole in one of them.
``fixed``: token windows over the whole text with the same overlap; headings are plain text.

Token counts are estimated from the text (words, punctuation, long words split the way
WordPiece splits them, ~1.3 tokens per English word); budgets keep a margin under the
embedding model's window so an estimate that runs low does not cut a chunk's tail off.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from dakera_server.engine.documents.blocks import Extracted

__all__ = ["Chunk", "ChunkPlan", "chunk_document", "estimate_tokens"]

WORD = re.compile(r"\S+")
PUNCT = re.compile(r"[^\w\s]")
SENTENCE_END = re.compile(r"[.!?…:;][\"')\]]*$")


def estimate_tokens(text: str) -> int:
    """About how many WordPiece tokens ``text`` makes (never fewer than its words)."""
    return sum(_word_tokens(w) for w in WORD.findall(text))


def _word_tokens(word: str) -> int:
    punct = len(PUNCT.findall(word))
    letters = len(word) - punct
    return max(1, punct + (1 if letters else 0) + max(0, letters - 6) // 4)


@dataclass(frozen=True)
class ChunkPlan:
    """How to cut: token budget of a chunk's text, overlap, and strategy."""

    max_tokens: int
    overlap_tokens: int
    strategy: str = "structure"


@dataclass(frozen=True)
class Chunk:
    """One chunk: its text, where it sits (heading path, pages, characters of the text)."""

    text: str
    path: tuple[str, ...]
    char_start: int
    char_end: int
    page_start: int | None
    page_end: int | None


@dataclass(frozen=True)
class _Word:
    start: int  # offset in the extracted text
    end: int
    tokens: int
    page: int | None
    paragraph_end: bool  # last word of its block
    sentence_end: bool


def chunk_document(doc: Extracted, plan: ChunkPlan) -> list[Chunk]:
    """The chunks of ``doc`` in reading order."""
    text = doc.text
    sections: list[tuple[tuple[str, ...], list[_Word]]] = []
    for block, offset in zip(doc.blocks, doc.offsets, strict=True):
        words = _words(block.text, offset, block.page)
        if not words:
            continue
        path = block.path if plan.strategy == "structure" else ()
        if sections and sections[-1][0] == path:
            sections[-1][1].extend(words)
        else:
            sections.append((path, words))
    chunks: list[Chunk] = []
    for path, words in sections:
        for first, last in _windows(words, plan):
            pages = [w.page for w in words[first : last + 1] if w.page is not None]
            start, end = words[first].start, words[last].end
            chunks.append(
                Chunk(
                    text=text[start:end],
                    path=path,
                    char_start=start,
                    char_end=end,
                    page_start=min(pages) if pages else None,
                    page_end=max(pages) if pages else None,
                )
            )
    return chunks


def _words(text: str, offset: int, page: int | None) -> list[_Word]:
    found = list(WORD.finditer(text))
    return [
        _Word(
            offset + m.start(),
            offset + m.end(),
            _word_tokens(m.group()),
            page,
            i == len(found) - 1,
            SENTENCE_END.search(m.group()) is not None,
        )
        for i, m in enumerate(found)
    ]


def _windows(words: list[_Word], plan: ChunkPlan) -> list[tuple[int, int]]:
    """(first, last) word indexes of each chunk of one section, with overlap."""
    budget = max(8, plan.max_tokens)
    overlap = min(plan.overlap_tokens, budget // 4)
    windows: list[tuple[int, int]] = []
    first = 0
    while first < len(words):
        used = 0
        last = first
        best = -1  # the latest good cut: a paragraph end, else a sentence end
        best_rank = 0
        while last < len(words) and used + words[last].tokens <= budget:
            used += words[last].tokens
            rank = 2 if words[last].paragraph_end else 1 if words[last].sentence_end else 0
            if rank and (rank >= best_rank or last - best > 8):
                best, best_rank = last, rank
            last += 1
        if last >= len(words):
            windows.append((first, len(words) - 1))
            break
        # Whole paragraphs when they fit (structure), a sentence end otherwise, else the budget.
        cut = best if best >= first and plan.strategy == "structure" else last - 1
        cut = max(cut, first)
        windows.append((first, cut))
        next_first = cut + 1
        if overlap:
            back, carried = cut, 0
            while back > first and carried + words[back].tokens <= overlap:
                carried += words[back].tokens
                back -= 1
            next_first = max(first + 1, back + 1) if carried else cut + 1
        first = next_first
    return windows
