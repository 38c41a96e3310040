"""What an import request carries: the file and its options, from any of the body forms.

* ``multipart/form-data`` (the SDK, ``dakera-api.md`` §4.7): the first file part is the file;
  text parts named ``agent_id``, ``format`` or ``conflict`` are options too.
* ``application/json``: ``{"data": [...] | "...", "agent_id"?, "format"?, "conflict"?}`` (the
  older SDKs' JSON body), or the document itself (``{"memories": [...]}``, ``{"messages":
  [...]}``, a list of memory objects).
* anything else (``text/csv``, ``application/x-ndjson``, ``application/zip``, gzip, plain
  text): the body is the file.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import orjson

from dakera_server.errors import InvalidInput

__all__ = ["ImportUpload", "read_upload"]

BOUNDARY = re.compile(r'boundary="?([^";]+)"?', re.IGNORECASE)
DISPOSITION_NAME = re.compile(rb'\bname="([^"]*)"', re.IGNORECASE)
OPTIONS = ("agent_id", "format", "conflict")


@dataclass
class ImportUpload:
    """The file's bytes and the options found in the body."""

    data: bytes
    options: dict[str, str] = field(default_factory=dict)


def read_upload(body: bytes, content_type: str) -> ImportUpload:
    """Split a request body into the import file and its options (400 when there is none)."""
    media = content_type.split(";", 1)[0].strip().lower()
    if media == "multipart/form-data":
        return _multipart(body, content_type)
    if media == "application/json" and body.lstrip()[:1] == b"{":
        try:
            document = orjson.loads(body)
        except orjson.JSONDecodeError:
            raise InvalidInput("malformed JSON body") from None
        if isinstance(document, dict) and "data" in document:
            options = {k: document[k] for k in OPTIONS if isinstance(document.get(k), str)}
            data = document["data"]
            if isinstance(data, str):
                return ImportUpload(data.encode("utf-8"), options)
            if isinstance(data, list):
                lines = b"\n".join(orjson.dumps(item) for item in data)
                return ImportUpload(lines, options)
            return ImportUpload(orjson.dumps(data), options)
    return ImportUpload(body)


def _multipart(body: bytes, content_type: str) -> ImportUpload:
    match = BOUNDARY.search(content_type)
    if match is None:
        raise InvalidInput("the multipart body has no boundary")
    delimiter = b"--" + match.group(1).encode("latin-1")
    options: dict[str, str] = {}
    found: bytes | None = None
    for part in body.split(delimiter)[1:]:
        if part.startswith(b"--"):
            break
        head, separator, content = part.partition(b"\r\n\r\n")
        if not separator:
            continue
        if content.endswith(b"\r\n"):
            content = content[:-2]
        name = DISPOSITION_NAME.search(head)
        is_file = b"filename=" in head.lower()
        if is_file and found is None:
            found = content
        elif name is not None and name.group(1).decode("latin-1") in OPTIONS:
            options[name.group(1).decode("latin-1")] = content.decode("utf-8", "replace")
    if found is None:
        raise InvalidInput("the multipart body has no file part")
    return ImportUpload(found, options)
