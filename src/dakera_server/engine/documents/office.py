"""DOCX through ``python-docx``: paragraphs and tables in body order, headings from styles.

The container is checked by ``limits.check_zip`` before python-docx reads any part. Headings
are the paragraphs styled ``Heading 1``-``Heading 9`` (their level) or ``Title`` (names the
document); a table becomes one block per row, cells joined with `` | ``.
"""

from __future__ import annotations

import re
import zipfile

import docx
from docx.opc.exceptions import PackageNotFoundError
from docx.table import Table
from docx.text.paragraph import Paragraph

from dakera_server.engine.documents.blocks import Block, Extracted, Outline
from dakera_server.engine.documents.limits import ImportLimits, check_zip
from dakera_server.errors import InvalidInput, UnprocessableContent

__all__ = ["extract_docx"]

HEADING_STYLE = re.compile(r"^heading\s*([1-9])$", re.IGNORECASE)


def extract_docx(data: bytes, limits: ImportLimits) -> Extracted:
    """The document's blocks with heading paths; the core title or a ``Title`` paragraph
    names it."""
    archive = check_zip(data, limits)
    try:
        document = docx.Document(archive.fp)
    except (PackageNotFoundError, KeyError, ValueError, zipfile.BadZipFile):
        raise UnprocessableContent("the file is not a readable DOCX document") from None
    title = (document.core_properties.title or "").strip() or None
    outline = Outline()
    blocks: list[Block] = []
    size = 0

    def add(text: str) -> None:
        nonlocal size
        size += len(text.encode("utf-8"))
        limits.check_text(size)
        blocks.append(Block(text, outline.path))

    for item in document.iter_inner_content():
        if isinstance(item, Paragraph):
            text = " ".join(item.text.split())
            style = (item.style.name if item.style is not None else "") or ""
            level = HEADING_STYLE.match(style)
            if style.lower() == "title" and text:
                title = title or text
            elif level is not None and text:
                outline.enter(int(level.group(1)), text)
            elif text:
                add(text)
        elif isinstance(item, Table):
            for row in item.rows:
                cells = [" ".join(cell.text.split()) for cell in row.cells]
                text = " | ".join(dict.fromkeys(c for c in cells if c))
                if text:
                    add(text)
    if not blocks:
        raise InvalidInput("the document has no text to import")
    return Extracted(blocks, title=title)
