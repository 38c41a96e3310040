"""HTML: headings and text blocks in document order, through ``selectolax`` (Lexbor).

Scripts, styles, templates and other non-content elements are dropped before anything is
read; nothing is ever rendered or executed. Block elements (paragraphs, list items, table
cells, preformatted text, quotes…) become blocks under the heading path that ``h1``-``h6`` build;
a block nested in another taken block is part of the outer one's text. A page with no block
elements still yields its body text.
"""

from __future__ import annotations

from selectolax.lexbor import LexborHTMLParser, LexborNode

from dakera_server.engine.documents.blocks import Block, Extracted, Outline

__all__ = ["extract_html"]

DROPPED = "script, style, noscript, template, svg, math, iframe, object, embed, head > meta"
HEADINGS = frozenset({"h1", "h2", "h3", "h4", "h5", "h6"})
BLOCKS = "h1, h2, h3, h4, h5, h6, p, li, pre, blockquote, td, th, dt, dd, figcaption, caption"


def extract_html(markup: str) -> Extracted:
    """The page's blocks; the ``<title>`` (else the first ``h1``) names it."""
    tree = LexborHTMLParser(markup)
    title_node = tree.css_first("title")
    title = _text(title_node) if title_node is not None else None
    for node in tree.css(DROPPED):
        node.decompose()
    root = tree.body if tree.body is not None else tree.root
    outline = Outline()
    blocks: list[Block] = []
    taken: set[int] = set()
    if root is not None:
        for node in root.css(BLOCKS):
            if _inside(node, taken):
                continue
            taken.add(node.mem_id)
            text = _text(node)
            if not text:
                continue
            if node.tag in HEADINGS:
                if title is None and node.tag == "h1":
                    title = text
                outline.enter(int(node.tag[1]), text)
            else:
                blocks.append(Block(text, outline.path))
        if not blocks:
            blocks.append(Block(_text(root), ()))
    return Extracted(blocks, title=title or None)


def _inside(node: LexborNode, taken: set[int]) -> bool:
    parent = node.parent
    while parent is not None:
        if parent.mem_id in taken:
            return True
        parent = parent.parent
    return False


def _text(node: LexborNode) -> str:
    if node.tag == "pre":
        return (node.text(deep=True) or "").strip()
    return " ".join((node.text(deep=True, separator=" ") or "").split())
