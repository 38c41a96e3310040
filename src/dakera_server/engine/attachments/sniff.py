"""What the bytes of an upload are, and whether they match the media type the client declared.

Served files must never be taken for something else by a browser (an "image" that is really
HTML would run script on the API's origin), so every upload's declared type is checked against
the leading bytes before it is stored: a signature type (PDF, PNG, JPEG, GIF, WebP, WAV, ZIP
containers such as DOCX, gzip, MP3, Ogg, FLAC) must carry its signature, a text type must be
text, and a type we hold no signature for must not look like a known format or like HTML.
Downloads add ``Content-Disposition: attachment`` and ``nosniff`` on top (api layer).
"""

from __future__ import annotations

import re

from dakera_server.errors import InvalidInput, UnsupportedMediaType

__all__ = ["HEAD_BYTES", "check_declared", "detect", "normalize_media_type"]

HEAD_BYTES = 4096
MEDIA_TYPE = re.compile(r"^[a-z0-9][a-z0-9!#$&^_.+-]{0,126}/[a-z0-9][a-z0-9!#$&^_.+-]{0,126}$")
CHARSET = re.compile(r"^[a-z0-9][a-z0-9_.:-]{0,39}$")
SIGNATURES: tuple[tuple[bytes, int, str], ...] = (
    (b"%PDF-", 0, "application/pdf"),
    (b"\x89PNG\r\n\x1a\n", 0, "image/png"),
    (b"\xff\xd8\xff", 0, "image/jpeg"),
    (b"GIF87a", 0, "image/gif"),
    (b"GIF89a", 0, "image/gif"),
    (b"PK\x03\x04", 0, "application/zip"),
    (b"\x1f\x8b", 0, "application/gzip"),
    (b"ID3", 0, "audio/mpeg"),
    (b"OggS", 0, "audio/ogg"),
    (b"fLaC", 0, "audio/flac"),
)
# The detected family each declared type must belong to.
EXPECTED: dict[str, frozenset[str]] = {
    "application/pdf": frozenset({"application/pdf"}),
    "image/png": frozenset({"image/png"}),
    "image/jpeg": frozenset({"image/jpeg"}),
    "image/gif": frozenset({"image/gif"}),
    "image/webp": frozenset({"image/webp"}),
    **dict.fromkeys(
        ("audio/wav", "audio/x-wav", "audio/wave", "audio/vnd.wave"), frozenset({"audio/wav"})
    ),
    **dict.fromkeys(("application/gzip", "application/x-gzip"), frozenset({"application/gzip"})),
    "audio/mpeg": frozenset({"audio/mpeg"}),
    "audio/ogg": frozenset({"audio/ogg"}),
    "audio/flac": frozenset({"audio/flac"}),
}
ZIP_TYPES = ("application/zip", "application/epub+zip")
ZIP_PREFIXES = ("application/vnd.openxmlformats-officedocument.", "application/vnd.oasis.")
TEXT = frozenset({"text/plain", "text/html", "text/xml"})
TEXT_APPLICATION = ("application/json", "application/xml", "application/javascript")
HTML_STARTS = (
    b"<!doctype html", b"<html", b"<head", b"<script", b"<iframe", b"<h1", b"<div", b"<font",
    b"<table", b"<a", b"<style", b"<title", b"<b", b"<body", b"<br", b"<p", b"<!--", b"<svg",
    b"<img", b"<form", b"<meta", b"<link", b"<object", b"<embed",
)  # fmt: skip


def normalize_media_type(value: str | None) -> str:
    """``type/subtype`` in lower case, with its ``charset`` parameter if one was given
    (``application/octet-stream`` when nothing was declared); 400 for a malformed type."""
    if value is None or not value.strip():
        return "application/octet-stream"
    main, *params = value.split(";")
    media = main.strip().lower()
    if not MEDIA_TYPE.fullmatch(media):
        raise InvalidInput("the Content-Type header is not a valid media type")
    for param in params:
        name, _, raw = param.partition("=")
        if name.strip().lower() == "charset":
            charset = raw.strip().strip('"').lower()
            if not CHARSET.fullmatch(charset):
                raise InvalidInput("the Content-Type charset is not valid")
            return f"{media}; charset={charset}"
    return media


def detect(head: bytes) -> str:
    """The type the leading bytes show: a signature type, ``text/html``, ``text/xml``,
    ``text/plain`` (UTF-8 without NUL), or ``application/octet-stream``."""
    for signature, offset, media in SIGNATURES:
        if head[offset : offset + len(signature)] == signature:
            return media
    if head[:4] == b"RIFF" and head[8:12] == b"WAVE":
        return "audio/wav"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    if b"\x00" in head or not _is_utf8(head):
        return "application/octet-stream"
    start = head.lstrip(b" \t\r\n\x0c\xef\xbb\xbf").lower()
    if start.startswith(b"<?xml"):
        return "text/html" if b"<html" in start or b"<svg" in start else "text/xml"
    for tag in HTML_STARTS:
        if start.startswith(tag) and start[len(tag) : len(tag) + 1] in (b" ", b">", b"/", b""):
            return "text/html"
    return "text/plain"


def _is_utf8(head: bytes) -> bool:
    for cut in range(4):  # the head may end inside a multi-byte character
        try:
            head[: len(head) - cut].decode("utf-8")
            return True
        except UnicodeDecodeError:
            continue
    return False


def check_declared(declared: str, head: bytes) -> None:
    """Refuse (415) an upload whose bytes are not of the declared type."""
    media = declared.split(";", 1)[0]
    found = detect(head)
    if media == "application/octet-stream":
        return
    if media in EXPECTED:
        ok = found in EXPECTED[media]
    elif media in ZIP_TYPES or media.startswith(ZIP_PREFIXES):
        ok = found == "application/zip"
    elif (
        media.startswith("text/") or media in TEXT_APPLICATION or media.endswith(("+json", "+xml"))
    ):
        ok = found in TEXT
    else:  # no signature known: it must at least not be a known format or markup
        ok = found in ("application/octet-stream", "text/plain")
    if not ok:
        raise UnsupportedMediaType(
            f"the bytes are not {media}: they look like {found}; upload them with their "
            "real Content-Type"
        )
