"""What every extractor produces: the document as a sequence of blocks with their place in it.

A block is a heading or a run of text (a paragraph, a list item, a table row, a code block).
Each text block carries the heading path above it and, for paged formats, its page, which is
what a chunk reports (``heading_path``, ``page_start``/``page_end``) and what its breadcrumb is
made of. ``Extracted.text`` joins the text blocks with blank lines; chunk character ranges are
offsets into it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from dakera_server.errors import InvalidInput

__all__ = ["Block", "Extracted", "Outline"]


@dataclass(frozen=True)
class Block:
    """A run of text under ``path`` (headings outermost first), on ``page`` (1-based)."""

    text: str
    path: tuple[str, ...]
    page: int | None = None


@dataclass
class Outline:
    """Builds heading paths while walking a document: ``enter(level, title)`` at a heading."""

    stack: list[tuple[int, str]] = field(default_factory=list)

    def enter(self, level: int, title: str) -> None:
        """A heading of ``level`` (1 = top) closes every heading at its level or deeper."""
        while self.stack and self.stack[-1][0] >= level:
            self.stack.pop()
        self.stack.append((level, " ".join(title.split())))

    @property
    def path(self) -> tuple[str, ...]:
        """The current heading path."""
        return tuple(title for _, title in self.stack if title)


@dataclass
class Extracted:
    """A document's blocks, its own title (if it names one) and page count (paged formats)."""

    blocks: list[Block]
    title: str | None = None
    pages: int | None = None
    offsets: list[int] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.blocks = [b for b in self.blocks if b.text.strip()]
        if not self.blocks:
            raise InvalidInput("the document has no text to import")
        position = 0
        self.offsets = []
        for block in self.blocks:
            self.offsets.append(position)
            position += len(block.text) + 2

    @property
    def text(self) -> str:
        """The extracted text (blocks joined by blank lines); chunk ranges index into it."""
        return "\n\n".join(block.text for block in self.blocks)

    @property
    def text_bytes(self) -> int:
        """Size of the extracted text in UTF-8."""
        return sum(len(b.text.encode("utf-8")) + 2 for b in self.blocks)
