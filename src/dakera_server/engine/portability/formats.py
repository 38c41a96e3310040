"""Import formats: detect, parse and map every row to one canonical memory record.

Formats (``docs/portability.md`` has the field mapping of each):

* ``jsonl`` – one memory object per line (this server's export; also a JSON array of them, or
  ``{"data": [...]}``); gzip-compressed input is accepted too.
* ``csv`` – a header row, then one memory per row; ``tags`` and ``metadata`` cells hold JSON
  (a plain ``a,b`` tag list is accepted).
* ``mem0`` – a Mem0 ``get_all()`` answer: ``{"results": [...]}`` (v1.1), ``{"memories": [...]}``
  or a bare list of ``{"id","memory","hash","metadata","categories","created_at",...}``.
* ``zep`` – a Zep session's messages: ``{"messages": [{"uuid","role","role_type","content",
  "metadata","created_at",...}], "session_id"?}``.
* ``openmemory`` – an OpenMemory backup zip (``memories.jsonl.gz``, else ``memories.json``).

A row that cannot be read becomes a ``RowError`` with its 1-based row number (the line number of
``jsonl``, the data row of ``csv``, the item index of the JSON documents), never an exception:
one bad row never stops the others.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import re
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson

from dakera_server.engine.rules import MAX_TAG_CHARS
from dakera_server.errors import InvalidInput

__all__ = [
    "DAKERA_KEY",
    "FORMATS",
    "ParsedRow",
    "RowError",
    "detect_format",
    "iso",
    "parse_rows",
    "unix_seconds",
]

FORMATS = ("jsonl", "csv", "mem0", "zep", "openmemory")
DAKERA_KEY = "dakera"  # the sub-object of mem0/zep metadata that carries our own fields
MAX_CSV_FIELD = 16 * 1024 * 1024
TAG_UNSAFE = re.compile(r"[^\w.:/@#+\-]+")
CANONICAL = (
    "id", "content", "memory_type", "importance", "tags", "metadata", "session_id",
    "created_at", "updated_at", "last_accessed_at", "access_count", "expires_at", "ttl_seconds",
    "event_time",
)  # fmt: skip


@dataclass(frozen=True)
class RowError:
    """A row that could not be read: its number and why (never its content)."""

    row: int
    message: str


@dataclass(frozen=True)
class ParsedRow:
    """One input row mapped to the canonical record (keys of ``CANONICAL``)."""

    row: int
    record: dict[str, Any]


def unix_seconds(value: Any) -> Any:
    """An ISO-8601 string or a number as integer Unix seconds (other values unchanged)."""
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int | float):
        return int(value)
    if isinstance(value, str) and value.strip():
        text = value.strip()
        if re.fullmatch(r"-?\d+", text):
            return int(text)
        try:
            moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            return value
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        seconds = int(moment.timestamp())
        # Zep writes "0001-01-01T00:00:00Z" for "never": no time at all, not a bad row.
        return seconds if seconds > 0 else None
    return value


def iso(seconds: int | None) -> str | None:
    """Unix seconds as ISO-8601 UTC (what Mem0 and Zep documents carry)."""
    if seconds is None:
        return None
    return datetime.fromtimestamp(seconds, UTC).isoformat().replace("+00:00", "Z")


def _tag(label: Any) -> str | None:
    """A category or role name made into a valid tag (spaces become '-')."""
    if not isinstance(label, str):
        return None
    text = TAG_UNSAFE.sub("-", label.strip().lower()).strip("-")
    return text[:MAX_TAG_CHARS] or None


# ---------------------------------------------------------------------- detection
def detect_format(data: bytes) -> str:
    """The format of ``data`` from its first bytes and shape."""
    if data[:4] == b"PK\x03\x04":
        return "openmemory"
    text = data.lstrip()[:1]
    if text == b"{":
        try:
            document = orjson.loads(data)
        except orjson.JSONDecodeError:
            return "jsonl"  # several objects, one per line
        if isinstance(document, dict):
            if "messages" in document:
                return "zep"
            if "results" in document or "memories" in document:
                return "mem0"
        return "jsonl"
    if text == b"[":
        try:
            document = orjson.loads(data)
        except orjson.JSONDecodeError:
            return "jsonl"
        first = document[0] if isinstance(document, list) and document else None
        if isinstance(first, dict) and "memory" in first and "content" not in first:
            return "mem0"
        return "jsonl"
    return "csv"


# ---------------------------------------------------------------------- parsing
def parse_rows(data: bytes, fmt: str | None) -> tuple[str, Iterator[ParsedRow | RowError]]:
    """``(format, rows)`` of an input file; a bad format name or unreadable file is a 400."""
    if data[:2] == b"\x1f\x8b":
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError):
            raise InvalidInput("the gzip-compressed input is damaged") from None
    chosen = detect_format(data) if fmt in (None, "", "auto") else fmt
    if chosen not in FORMATS:
        raise InvalidInput(f"format '{chosen}' is not one of {', '.join(FORMATS)}")
    if chosen == "openmemory":
        return chosen, _openmemory(data)
    if chosen == "jsonl":
        return chosen, _jsonl(data)
    if chosen == "csv":
        return chosen, _csv(data)
    document = _document(data)
    if chosen == "mem0":
        return chosen, _mem0(document)
    return chosen, _zep(document)


def _document(data: bytes) -> Any:
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:
        raise InvalidInput("the file is not one JSON document") from None


def _native(number: int, item: Any) -> ParsedRow | RowError:
    if not isinstance(item, dict):
        return RowError(number, "a row must be a JSON object")
    record = {k: item[k] for k in CANONICAL if k in item}
    if "content" not in record and isinstance(item.get("text"), str):
        record["content"] = item["text"]
    return ParsedRow(number, record)


def _jsonl(data: bytes) -> Iterator[ParsedRow | RowError]:
    stripped = data.lstrip()
    if stripped[:1] == b"[" or (stripped[:1] == b"{" and b'"data"' in stripped[:4096]):
        try:
            document = orjson.loads(data)
        except orjson.JSONDecodeError:
            document = None
        items = document if isinstance(document, list) else None
        if isinstance(document, dict) and isinstance(document.get("data"), list):
            items = document["data"]
        if items is not None:
            for number, item in enumerate(items, 1):
                yield _native(number, item)
            return
    for number, line in enumerate(data.splitlines(), 1):
        if not line.strip():
            continue
        try:
            item = orjson.loads(line)
        except orjson.JSONDecodeError:
            yield RowError(number, "invalid JSON")
            continue
        yield _native(number, item)


def _csv(data: bytes) -> Iterator[ParsedRow | RowError]:
    csv.field_size_limit(MAX_CSV_FIELD)
    text = data.decode("utf-8-sig", errors="replace")
    reader = csv.DictReader(io.StringIO(text, newline=""))
    try:
        for number, cells in enumerate(reader, 1):
            if None in cells:
                yield RowError(number, "the row has more cells than the header")
                continue
            record: dict[str, Any] = {}
            for name in CANONICAL:
                value = cells.get(name)
                if value is None or value == "":
                    continue
                record[name] = _csv_cell(name, value)
            if isinstance(record.get("tags"), RowError) or isinstance(
                record.get("metadata"), RowError
            ):
                yield RowError(number, "'tags' or 'metadata' is not valid JSON")
                continue
            yield ParsedRow(number, record)
    except csv.Error:
        yield RowError(reader.line_num, "the CSV is malformed from this row on")


def _csv_cell(name: str, value: str) -> Any:
    if name == "metadata":
        try:
            return orjson.loads(value)
        except orjson.JSONDecodeError:
            return RowError(0, "")
    if name == "tags":
        if value.lstrip().startswith("["):
            try:
                return orjson.loads(value)
            except orjson.JSONDecodeError:
                return RowError(0, "")
        return [t.strip() for t in value.split(",") if t.strip()]
    if name == "importance":
        try:
            return float(value)
        except ValueError:
            return value
    if name in ("created_at", "updated_at", "last_accessed_at", "access_count", "expires_at",
                "ttl_seconds"):  # fmt: skip
        return unix_seconds(value)
    return value


def _carried(metadata: Any) -> tuple[dict[str, Any] | None, dict[str, Any]]:
    """Split a Mem0/Zep ``metadata`` into the user's part and our carried fields."""
    if not isinstance(metadata, dict):
        return None, {}
    ours = metadata.get(DAKERA_KEY)
    rest = {k: v for k, v in metadata.items() if k != DAKERA_KEY}
    return rest or None, ours if isinstance(ours, dict) else {}


def _mem0(document: Any) -> Iterator[ParsedRow | RowError]:
    items = document
    if isinstance(document, dict):
        items = document.get("results", document.get("memories"))
    if not isinstance(items, list):
        raise InvalidInput("a mem0 document holds a 'results' or 'memories' list")
    for number, item in enumerate(items, 1):
        if not isinstance(item, dict):
            yield RowError(number, "a row must be a JSON object")
            continue
        metadata, ours = _carried(item.get("metadata"))
        record: dict[str, Any] = {
            "id": item.get("id"),
            "content": item.get("memory", item.get("content")),
            "metadata": metadata,
            "created_at": unix_seconds(item.get("created_at")),
            "updated_at": unix_seconds(item.get("updated_at")),
        }
        tags = [t for t in map(_tag, item.get("categories") or []) if t]
        if tags:
            record["tags"] = tags
        origin = {
            k: item[k] for k in ("user_id", "agent_id", "app_id", "run_id", "hash") if item.get(k)
        }
        if origin and not ours:
            record["metadata"] = {**(metadata or {}), "mem0": origin}
        if isinstance(item.get("run_id"), str) and not ours:
            record["session_id"] = item["run_id"]
        record.update({k: v for k, v in ours.items() if k in CANONICAL})
        yield ParsedRow(number, {k: v for k, v in record.items() if v is not None})


def _zep(document: Any) -> Iterator[ParsedRow | RowError]:
    if not isinstance(document, dict) or not isinstance(document.get("messages"), list):
        raise InvalidInput("a zep document holds a 'messages' list")
    session = document.get("session_id")
    for number, item in enumerate(document["messages"], 1):
        if not isinstance(item, dict):
            yield RowError(number, "a row must be a JSON object")
            continue
        metadata, ours = _carried(item.get("metadata"))
        record: dict[str, Any] = {
            "id": item.get("uuid"),
            "content": item.get("content"),
            "metadata": metadata,
            "created_at": unix_seconds(item.get("created_at")),
            "updated_at": unix_seconds(item.get("updated_at")),
            "session_id": session if isinstance(session, str) else None,
        }
        if not ours:
            roles = [_tag(item.get("role_type")), _tag(item.get("role"))]
            tags = [f"role:{r}" for r in dict.fromkeys(r for r in roles if r and r != "norole")]
            if tags:
                record["tags"] = tags
            zep = {k: item[k] for k in ("role", "role_type", "token_count") if item.get(k)}
            if zep:
                record["metadata"] = {**(metadata or {}), "zep": zep}
        record.update({k: v for k, v in ours.items() if k in CANONICAL})
        yield ParsedRow(number, {k: v for k, v in record.items() if v is not None})


def _openmemory(data: bytes) -> Iterator[ParsedRow | RowError]:
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        names = {n.rsplit("/", 1)[-1]: n for n in archive.namelist() if not n.endswith("/")}
        if "memories.jsonl.gz" in names:
            lines = gzip.decompress(archive.read(names["memories.jsonl.gz"])).splitlines()
            items: list[Any] = [orjson.loads(line) for line in lines if line.strip()]
        elif "memories.json" in names:
            document = orjson.loads(archive.read(names["memories.json"]))
            categories = {c.get("id"): c.get("name") for c in document.get("categories") or []}
            items = [
                {**m, "categories": [categories.get(c) for c in m.get("category_ids") or []]}
                for m in document.get("memories") or []
            ]
        else:
            raise InvalidInput("the zip holds neither memories.jsonl.gz nor memories.json")
    except (zipfile.BadZipFile, OSError, EOFError, orjson.JSONDecodeError, AttributeError):
        raise InvalidInput("the OpenMemory backup zip is damaged or not one") from None
    for number, item in enumerate(items, 1):
        if not isinstance(item, dict):
            yield RowError(number, "a row must be a JSON object")
            continue
        if item.get("state") == "deleted":
            continue
        origin = {k: item[k] for k in ("app", "state") if item.get(k)}
        found = item.get("metadata")
        metadata: dict[str, Any] = found if isinstance(found, dict) else {}
        record = {
            "id": item.get("id"),
            "content": item.get("content"),
            "metadata": {**metadata, "openmemory": origin} if origin else (metadata or None),
            "created_at": unix_seconds(item.get("created_at")),
            "updated_at": unix_seconds(item.get("updated_at")),
            "tags": [t for t in map(_tag, item.get("categories") or []) if t] or None,
        }
        yield ParsedRow(number, {k: v for k, v in record.items() if v is not None})


def content_hash(content: str) -> str:
    """The ``hash`` Mem0 documents carry (MD5 hex of the content, as Mem0 computes it)."""
    return hashlib.md5(content.encode("utf-8"), usedforsecurity=False).hexdigest()
