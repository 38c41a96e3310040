"""The limits every import runs under, and the checks that stop decompression bombs early.

A small file can expand into gigabytes: a PDF content stream of zeros compresses about 1000:1,
a ZIP entry (DOCX is a ZIP) about the same. Each limit is checked as early as the format allows
(a ZIP's central directory before any entry is inflated; a PDF's page count before any page is
read; every inflated stream against a cap inside pypdf) and is refused with a 400 that names
the limit and the setting that raises it, before anything is stored.
"""

from __future__ import annotations

import io
import zipfile
from dataclasses import dataclass

from dakera_server.errors import InvalidInput

__all__ = ["MAX_ZIP_ENTRIES", "MAX_ZIP_RATIO", "ImportLimits", "check_zip"]

# A real DOCX compresses its XML 5-20:1 (measured on python-docx output and Office files);
# 100:1 leaves room for very repetitive documents and still stops a bomb at its first entry.
MAX_ZIP_RATIO = 100
MAX_ZIP_ENTRIES = 10_000
# Entries this small are never a threat whatever their ratio (a 1 KB part of zeros).
RATIO_FLOOR_BYTES = 1 << 20


@dataclass(frozen=True)
class ImportLimits:
    """Per-document limits (from the settings of the same names)."""

    max_pages: int
    max_text_bytes: int
    max_chunks: int
    max_seconds: float = 120.0

    def check_pages(self, pages: int) -> None:
        """400 when a PDF has more pages than ``DAKERA_DOCUMENT_MAX_PAGES``."""
        if pages > self.max_pages:
            raise InvalidInput(
                f"the PDF has {pages} pages; the page limit is {self.max_pages} "
                "(DAKERA_DOCUMENT_MAX_PAGES)"
            )

    def check_text(self, size: int) -> None:
        """400 when the extracted text passes ``DAKERA_DOCUMENT_MAX_TEXT_BYTES``."""
        if size > self.max_text_bytes:
            raise InvalidInput(
                f"the document expands to more than {self.max_text_bytes} bytes of text; "
                "the text size limit is DAKERA_DOCUMENT_MAX_TEXT_BYTES"
            )


def check_zip(data: bytes, limits: ImportLimits) -> zipfile.ZipFile:
    """Open a ZIP container after checking its directory against the limits.

    ``zipfile`` never inflates an entry past the size its directory declares, so checking the
    declared sizes bounds what reading the entries can cost.
    """
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, ValueError):
        raise InvalidInput("the file is not a valid ZIP/DOCX container") from None
    entries = archive.infolist()
    if len(entries) > MAX_ZIP_ENTRIES:
        raise InvalidInput(
            f"the DOCX holds {len(entries)} entries; the entry limit is {MAX_ZIP_ENTRIES}"
        )
    total = 0
    for entry in entries:
        total += entry.file_size
        if total > limits.max_text_bytes:
            raise InvalidInput(
                f"the DOCX expands to more than {limits.max_text_bytes} bytes; the "
                "uncompressed size limit is DAKERA_DOCUMENT_MAX_TEXT_BYTES"
            )
        packed = max(entry.compress_size, 1)
        if entry.file_size > RATIO_FLOOR_BYTES and entry.file_size / packed > MAX_ZIP_RATIO:
            raise InvalidInput(
                f"a DOCX entry expands {entry.file_size // packed}:1; the compression ratio "
                f"limit is {MAX_ZIP_RATIO}:1 (a decompression bomb)"
            )
    return archive
