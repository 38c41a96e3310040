"""Which extractor reads which media type, and the checks that run before an import is accepted.

``precheck`` runs in the request (so a bomb or an unreadable container is a 400 and no job is
ever created); ``extract`` runs in the import job.
"""

from __future__ import annotations

from dakera_server.engine.documents.blocks import Extracted
from dakera_server.engine.documents.html import extract_html
from dakera_server.engine.documents.limits import ImportLimits, check_zip
from dakera_server.engine.documents.office import extract_docx
from dakera_server.engine.documents.pdf import count_pages, extract_pdf
from dakera_server.engine.documents.textual import extract_markdown, extract_plain
from dakera_server.errors import UnprocessableContent, UnsupportedMediaType

__all__ = ["FILE_MEDIA_TYPES", "TEXT_MEDIA_TYPES", "document_kind", "extract", "precheck"]

PDF = "application/pdf"
DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
TEXT_MEDIA_TYPES = ("text/plain", "text/markdown", "text/html")
FILE_MEDIA_TYPES = (*TEXT_MEDIA_TYPES, PDF, DOCX)
KINDS = {
    "text/plain": "text",
    "text/markdown": "markdown",
    "text/x-markdown": "markdown",
    "text/html": "html",
    "application/xhtml+xml": "html",
    PDF: "pdf",
    DOCX: "docx",
}


def document_kind(media_type: str, *, text_only: bool) -> str:
    """``text``, ``markdown``, ``html``, ``pdf`` or ``docx`` for a media type (415 otherwise)."""
    media = media_type.split(";", 1)[0].strip().lower()
    kind = KINDS.get(media)
    allowed = TEXT_MEDIA_TYPES if text_only else FILE_MEDIA_TYPES
    if kind is None or (text_only and kind in ("pdf", "docx")):
        raise UnsupportedMediaType(
            f"media type '{media}' cannot be imported as a document; use one of "
            + ", ".join(allowed)
        )
    return kind


def _decode(data: bytes) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise UnprocessableContent("the document is not valid UTF-8 text") from None


def precheck(kind: str, data: bytes, limits: ImportLimits) -> int | None:
    """The checks that need no extraction: text size, PDF page count, ZIP directory.
    Returns the page count of a PDF."""
    if kind in ("text", "markdown", "html"):
        limits.check_text(len(data))
    if kind == "pdf":
        return count_pages(data, limits, inflate=True)
    if kind == "docx":
        check_zip(data, limits)
    return None


def extract(kind: str, data: bytes, limits: ImportLimits) -> Extracted:
    """The document's blocks (every limit enforced on the way)."""
    if kind == "pdf":
        extracted = extract_pdf(data, limits)
    elif kind == "docx":
        extracted = extract_docx(data, limits)
    elif kind == "html":
        extracted = extract_html(_decode(data))
    elif kind == "markdown":
        extracted = extract_markdown(_decode(data))
    else:
        extracted = extract_plain(_decode(data))
    limits.check_text(extracted.text_bytes)
    return extracted
