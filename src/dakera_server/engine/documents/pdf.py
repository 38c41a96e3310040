"""PDF through ``pypdf`` (pure Python): text per page, headings from the document outline.

Bomb defences, in the order they act: the page count is read from the page tree and checked
against ``DAKERA_DOCUMENT_MAX_PAGES`` before any page is extracted; every stream pypdf inflates
is capped (``STREAM_CAP``, pypdf's own ``LimitReachedError``); the extracted text is summed
page by page against ``DAKERA_DOCUMENT_MAX_TEXT_BYTES``; extraction stops with 504
``EXTRACTION_TIMEOUT`` after ``max_seconds``. pypdf never calls an external program here
(``jbig2dec_binary=None``).

PDF text carries no headings, but most generated and many authored PDFs have an outline
(bookmarks): each page's blocks get the path of the last outline entries at or before it.
"""

from __future__ import annotations

import io
import re
import time

import pypdf
from pypdf.errors import LimitReachedError, PdfReadError, PyPdfError

from dakera_server.engine.documents.blocks import Block, Extracted, Outline
from dakera_server.engine.documents.limits import ImportLimits
from dakera_server.errors import ExtractionTimeout, InvalidInput, UnprocessableContent

__all__ = ["STREAM_CAP", "count_pages", "extract_pdf"]

# No single stream of a text PDF comes near this (a dense page's content stream is ~10-50 KB);
# pypdf's default is 75 MB per stream.
STREAM_CAP = 16_000_000
PARAGRAPH_BREAK = re.compile(r"\n[ \t]*\n+")
CAPS = pypdf.Configuration().with_overwrites(
    zlib_maximum_output_length=STREAM_CAP,
    lzw_maximum_output_length=STREAM_CAP,
    run_length_maximum_output_length=STREAM_CAP,
    array_based_stream_maximum_output_length=STREAM_CAP,
    jbig2_maximum_output_length=STREAM_CAP,
    jbig2dec_binary=None,
)


def _reader(data: bytes) -> pypdf.PdfReader:
    try:
        return pypdf.PdfReader(io.BytesIO(data), strict=False)
    except LimitReachedError:
        raise _bomb() from None
    except (PdfReadError, PyPdfError, ValueError, KeyError, TypeError):
        raise UnprocessableContent("the file is not a readable PDF") from None


def count_pages(data: bytes, limits: ImportLimits, *, inflate: bool = False) -> int:
    """The page count, checked against the page limit (before the import is accepted).

    With ``inflate``, every page's content stream is also decoded once under the per-stream
    cap, so a stream bomb is refused in the request (zlib runs at ~500 MB/s: a 1,000-page
    text PDF's streams decode in tens of milliseconds).
    """
    with pypdf.apply_configuration(CAPS):
        reader = _reader(data)
        try:
            pages = len(reader.pages)
        except LimitReachedError:
            raise InvalidInput("the PDF page tree is larger than the page limit allows") from None
        except (PdfReadError, PyPdfError, ValueError, KeyError, TypeError):
            raise UnprocessableContent("the file is not a readable PDF") from None
        limits.check_pages(pages)
        for number in range(pages) if inflate else ():
            try:
                contents = reader.pages[number].get_contents()
                if contents is not None:
                    contents.get_data()
            except LimitReachedError:
                raise _bomb() from None
            except (PdfReadError, PyPdfError, ValueError, KeyError, TypeError):
                raise UnprocessableContent(f"page {number + 1} of the PDF is unreadable") from None
    return pages


def _bomb() -> InvalidInput:
    return InvalidInput(
        f"a PDF stream inflates past {STREAM_CAP} bytes; the per-stream decompression limit "
        "stops it (a decompression bomb)"
    )


def extract_pdf(data: bytes, limits: ImportLimits) -> Extracted:
    """Blocks page by page under the outline's heading paths."""
    started = time.monotonic()
    with pypdf.apply_configuration(CAPS):
        reader = _reader(data)
        pages = count_pages(data, limits)
        headings = _outline_by_page(reader)
        title = _title(reader)
        outline = Outline()
        blocks: list[Block] = []
        size = 0
        for number in range(pages):
            for level, heading in headings.get(number, ()):
                outline.enter(level, heading)
            try:
                text = reader.pages[number].extract_text() or ""
            except LimitReachedError:
                raise _bomb() from None
            except (PdfReadError, PyPdfError, ValueError, KeyError, TypeError):
                raise UnprocessableContent(f"page {number + 1} of the PDF is unreadable") from None
            size += len(text.encode("utf-8"))
            limits.check_text(size)
            if time.monotonic() - started > limits.max_seconds:
                raise ExtractionTimeout(
                    f"extracting the PDF's text took longer than {limits.max_seconds:.0f} s"
                )
            for paragraph in PARAGRAPH_BREAK.split(text):
                cleaned = "\n".join(line.strip() for line in paragraph.splitlines()).strip()
                if cleaned:
                    blocks.append(Block(cleaned, outline.path, number + 1))
    if not blocks:
        raise InvalidInput("the PDF has no extractable text (a scanned PDF needs OCR first)")
    return Extracted(blocks, title=title, pages=pages)


def _title(reader: pypdf.PdfReader) -> str | None:
    try:
        meta = reader.metadata
        value = meta.title if meta is not None else None
    except (PdfReadError, PyPdfError, ValueError, KeyError, TypeError):
        return None
    return " ".join(str(value).split()) or None if value else None


def _outline_by_page(reader: pypdf.PdfReader) -> dict[int, list[tuple[int, str]]]:
    """Outline entries by the 0-based page they point at, with their depth (1 = top)."""
    found: dict[int, list[tuple[int, str]]] = {}

    def walk(items: list[object], level: int) -> None:
        for item in items:
            if isinstance(item, list):
                walk(item, level + 1)
                continue
            try:
                page = reader.get_destination_page_number(item)  # type: ignore[arg-type]
                title = str(getattr(item, "title", "") or "")
            except (PdfReadError, PyPdfError, ValueError, KeyError, TypeError, AttributeError):
                continue
            if page is not None and page >= 0 and title.strip():
                found.setdefault(page, []).append((level, title))

    try:
        walk(list(reader.outline), 1)
    except (LimitReachedError, PdfReadError, PyPdfError, ValueError, KeyError, TypeError):
        return {}
    return found
