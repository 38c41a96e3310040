"""The chunker: chunks lie inside the text in reading order, keep to the budget, cover every
word, never cross a heading (structure), and overlap by at most the overlap asked for."""

from __future__ import annotations

import itertools

from hypothesis import given, settings
from hypothesis import strategies as st

from dakera_server.engine.documents.blocks import Block, Extracted
from dakera_server.engine.documents.chunker import ChunkPlan, chunk_document, estimate_tokens
from dakera_server.engine.documents.textual import extract_markdown

WORDS = st.text(alphabet="abcdefghijklmnopqrstuvwxyz.,", min_size=1, max_size=14)
PARAGRAPHS = st.lists(WORDS, min_size=1, max_size=60).map(" ".join)
SECTIONS = st.lists(
    st.tuples(
        st.sampled_from(["Intro", "Setup", "Usage"]), st.lists(PARAGRAPHS, min_size=1, max_size=4)
    ),
    min_size=1,
    max_size=4,
)


def build(sections: list[tuple[str, list[str]]]) -> Extracted:
    return Extracted([Block(p, (title,)) for title, paragraphs in sections for p in paragraphs])


@settings(max_examples=60, deadline=None)
@given(SECTIONS, st.integers(16, 120), st.integers(0, 40), st.sampled_from(["structure", "fixed"]))
def test_chunks_cover_the_text_within_budget(
    sections: list[tuple[str, list[str]]], budget: int, overlap: int, strategy: str
) -> None:
    doc = build(sections)
    text = doc.text
    chunks = chunk_document(doc, ChunkPlan(budget, overlap, strategy))
    words = {m for m in range(len(text)) if not text[m].isspace()}
    covered: set[int] = set()
    previous_start = -1
    for chunk in chunks:
        assert chunk.text == text[chunk.char_start : chunk.char_end]
        assert chunk.char_start > previous_start  # reading order, always moving on
        previous_start = chunk.char_start
        longest_word = max(estimate_tokens(w) for w in chunk.text.split())
        assert estimate_tokens(chunk.text) <= max(budget, longest_word)
        covered.update(range(chunk.char_start, chunk.char_end))
        if strategy == "structure":
            assert len(chunk.path) == 1
    assert words <= covered


def test_sections_are_never_mixed() -> None:
    doc = extract_markdown("# T\n\n## A\n\nalpha one.\n\n## B\n\nbeta two.\n\n### C\n\ngamma.\n")
    chunks = chunk_document(doc, ChunkPlan(200, 20))
    assert [(c.path, c.text) for c in chunks] == [
        (("T", "A"), "alpha one."),
        (("T", "B"), "beta two."),
        (("T", "B", "C"), "gamma."),
    ]


def test_long_paragraphs_cut_at_sentences_with_overlap() -> None:
    sentences = [f"Sentence number {i} talks about grinder burrs." for i in range(40)]
    doc = Extracted([Block(" ".join(sentences), ("Guide",))])
    chunks = chunk_document(doc, ChunkPlan(60, 10))
    assert len(chunks) > 3
    for chunk in chunks[:-1]:
        assert chunk.text.endswith(".")
    for before, after in itertools.pairwise(chunks):
        assert after.char_start < before.char_end  # they overlap
        assert estimate_tokens(doc.text[after.char_start : before.char_end]) <= 10


def test_markdown_code_is_not_a_heading() -> None:
    doc = extract_markdown("# Guide\n\n```\n# not a heading\n```\n\nText.\n")
    assert doc.title == "Guide"
    assert {b.path for b in doc.blocks} == {("Guide",)}
