"""Declared media types against the bytes: each signature type needs its signature, text types
need text, and a type without a known signature must not be markup or a known format."""

from __future__ import annotations

import pytest

from dakera_server.engine.attachments.sniff import check_declared, detect, normalize_media_type
from dakera_server.errors import InvalidInput, UnsupportedMediaType
from tests.files import make_docx, make_pdf, make_png, make_wav


@pytest.mark.parametrize(
    ("data", "found"),
    [
        (make_pdf(), "application/pdf"),
        (make_png(), "image/png"),
        (make_wav(), "audio/wav"),
        (make_docx(), "application/zip"),
        (b"\xef\xbb\xbf  <!DOCTYPE html><p>x", "text/html"),
        (b"<?xml version='1.0'?><note/>", "text/xml"),
        (b"<p>short", "text/html"),
        (b"<process> is not a tag we know", "text/plain"),
        ("naïve café".encode(), "text/plain"),
        (b"\x00\x01\x02binary", "application/octet-stream"),
    ],
)
def test_detect(data: bytes, found: str) -> None:
    assert detect(data[:4096]) == found


@pytest.mark.parametrize(
    ("declared", "data"),
    [
        ("application/pdf", make_pdf()),
        ("image/png", make_png()),
        ("audio/x-wav", make_wav()),
        ("application/vnd.openxmlformats-officedocument.wordprocessingml.document", make_docx()),
        ("text/plain", b"<html>served as text, never as a page</html>"),
        ("application/json", b'{"a": 1}'),
        ("application/octet-stream", b"<html>anything goes</html>"),
        ("video/mp4", b"\x00\x00\x00\x18ftypmp42"),
    ],
)
def test_matching_types_pass(declared: str, data: bytes) -> None:
    check_declared(normalize_media_type(declared), data[:4096])


def test_normalize() -> None:
    assert normalize_media_type(None) == "application/octet-stream"
    assert normalize_media_type("Text/Plain; Charset=UTF-8; x=1") == "text/plain; charset=utf-8"
    for bad in ("text", "text/plain\r\nX: y", "a/b c", 'text/plain; charset="a b"'):
        with pytest.raises(InvalidInput):
            normalize_media_type(bad)


def test_html_dressed_as_an_image_is_refused() -> None:
    with pytest.raises(UnsupportedMediaType) as refused:
        check_declared("image/png", b"<html><script>alert(1)</script>")
    assert "text/html" in refused.value.message
