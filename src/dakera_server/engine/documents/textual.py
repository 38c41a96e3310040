"""Plain text and Markdown: paragraphs, and Markdown's headings through ``markdown-it-py``.

Markdown is parsed (CommonMark) rather than scanned with a regex, so ``#`` inside a code block
or a list is not taken for a heading. A block's text is its source lines, which keeps list
markers, tables and code as the author wrote them. A YAML front matter ``title:`` names the
document; otherwise the first top-level heading does.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from markdown_it import MarkdownIt

from dakera_server.engine.documents.blocks import Block, Extracted, Outline

__all__ = ["extract_markdown", "extract_plain"]

PARAGRAPH_BREAK = re.compile(r"\n[ \t]*\n+")
FRONT_MATTER = re.compile(r"\A---[ \t]*\n(.*?)\n---[ \t]*\n", re.DOTALL)
TITLE_LINE = re.compile(r"^title:[ \t]*(.+?)[ \t]*$", re.MULTILINE)
# One parser, built once: "commonmark" plus tables, no HTML rendering (we never render).
_PARSER = MarkdownIt("commonmark").enable("table")


def extract_plain(text: str) -> Extracted:
    """Paragraphs of plain text (blank lines separate them; form feeds separate pages)."""
    pages = text.split("\f")
    blocks = []
    for number, page in enumerate(pages, start=1):
        for paragraph in PARAGRAPH_BREAK.split(page.replace("\r\n", "\n")):
            blocks.append(Block(paragraph.strip(), (), number if len(pages) > 1 else None))
    return Extracted(blocks, pages=len(pages) if len(pages) > 1 else None)


def extract_markdown(text: str) -> Extracted:
    """Markdown blocks with heading paths; the title from front matter or the first ``#``."""
    source = text.replace("\r\n", "\n")
    title = None
    matter = FRONT_MATTER.match(source)
    if matter is not None:
        found = TITLE_LINE.search(matter.group(1))
        title = found.group(1).strip("'\"") if found else None
        source = source[matter.end() :]
    lines = source.split("\n")
    outline = Outline()
    blocks: list[Block] = []
    tokens = _PARSER.parse(source)
    index = 0
    while index < len(tokens):
        token = tokens[index]
        if token.type == "heading_open":
            level = int(token.tag[1:])
            heading = tokens[index + 1].content if index + 1 < len(tokens) else ""
            if level == 1 and title is None and not blocks:
                title = " ".join(heading.split())
            outline.enter(level, heading)
            index += 3
            continue
        if token.level == 0 and token.map is not None and token.nesting >= 0:
            start, end = token.map
            chunk = "\n".join(lines[start:end]).strip()
            if chunk:
                blocks.append(Block(chunk, outline.path))
            index = _after(tokens, index)
            continue
        index += 1
    return Extracted(blocks, title=title)


def _after(tokens: Sequence[object], index: int) -> int:
    """The index past the block that opens at ``index`` (its matching close)."""
    token = tokens[index]
    if getattr(token, "nesting", 0) == 0:
        return index + 1
    depth = 0
    while index < len(tokens):
        depth += getattr(tokens[index], "nesting", 0)
        index += 1
        if depth == 0:
            return index
    return index
