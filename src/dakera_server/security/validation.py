"""Input validation layer (always on): every string that can reach the engine is checked.

What is checked, before the route handler runs:

* the JSON body, read once (bytes are replayed unchanged to the app): nesting depth ≤ 32 (a
  top-level object is depth 1), every object key at any depth, every string value at any
  depth; newline-delimited JSON line by line; ``text/*`` bodies as free text;
* query parameters and path parameters (matched against the app's route templates);
* the request headers the server reads (keys, host, origin, user agent, content type…).

Structured values (ids, names, tags, namespace grants, URLs) must match the allow-lists of
``security/inspection/fields.py``; ``$``-operator keys are accepted only inside ``filter``
objects; free text goes through the seven detectors of ``security/inspection/detectors.py``. A
refusal is one 400
``INVALID_REQUEST`` naming the category and the field path (``memories[2].tags[0]``) and never
echoing the offending value, so an error body cannot reflect attacker text.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any
from urllib.parse import parse_qsl

import orjson
from starlette.routing import compile_path
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from dakera_server.engine.rules import MAX_JSON_DEPTH, MAX_TAGS
from dakera_server.engine.vectors.filters import LOGICAL_OPERATORS
from dakera_server.errors import DakeraError, InjectionDetected, InvalidInput
from dakera_server.security.inspection import fields
from dakera_server.security.inspection.detectors import COMMAND, CRLF, NOSQL, SSRF, detect
from dakera_server.security.inspection.probes import ssrf_probe, system_path_probe
from dakera_server.security.responses import error_response

__all__ = ["InputValidationMiddleware", "RequestValidator"]

Path = tuple[Any, ...] | None  # a linked list (parent, segment), rendered only on refusal
SCALARS = (int, float, bool, type(None))
SCALAR_TYPES = frozenset(SCALARS)
# Request state key under which the layer leaves a JSON body's parsed document for the route.
PARSED_BODY = "dakera.parsed_body"
NOT_JSON: Any = object()
STRUCT, METADATA, FILTER = 0, 1, 2
CHECKED_HEADERS = frozenset(
    {
        b"authorization", b"x-api-key", b"host", b"origin", b"user-agent", b"content-type",
        b"x-forwarded-for", b"x-real-ip", b"x-request-id", b"last-event-id", b"referer",
        b"access-control-request-method", b"access-control-request-headers",
        b"content-digest",
    }
)  # fmt: skip
MAX_HEADER_BYTES = 8192
HEADER_CONTROLS = re.compile(rb"[\x00-\x08\x0a-\x1f\x7f]")
JSON_TYPES = ("application/json", "application/x-ndjson", "application/jsonl")


def render(path: Path) -> str:
    """``memories[2].tags[0]`` from the linked path (keys cut to 64 characters)."""
    segments: list[str | int] = []
    while path is not None:
        path, segment = path
        segments.append(segment)
    text = ""
    for segment in reversed(segments):
        if isinstance(segment, int):
            text += f"[{segment}]"
        else:
            text += f".{str(segment)[:64]}" if text else str(segment)[:64]
    return text or "body"


class RequestValidator:
    """The checks themselves, free of ASGI so tests and benchmarks can call them directly."""

    def __init__(self, route_paths: Sequence[str] = (), *, max_depth: int = MAX_JSON_DEPTH) -> None:
        self.max_depth = max_depth
        # Templates with parameters, bucketed by their leading literal segments so a request
        # is matched against a handful of templates rather than all of them.
        self.templates: dict[tuple[str, ...], list[re.Pattern[str]]] = {}
        for template in dict.fromkeys(route_paths):
            if "{" in template:
                literal = template.split("{", 1)[0].split("/")[1:-1]
                bucket = self.templates.setdefault(tuple(literal[:2]), [])
                bucket.append(compile_path(template)[0])

    # -- body -----------------------------------------------------------------------------
    def check_body(self, body: bytes, content_type: str, file_field: str | None = None) -> Any:
        """Validate a request body of the given content type (empty bodies always pass).

        Returns the parsed document of a JSON body (``NOT_JSON`` for anything else), so the
        route can use the very document that was checked instead of parsing the bytes again.
        ``file_field`` names a top-level string field that carries a file's content (a
        document to import): it is not scanned as input, every other field is.
        """
        if not body.strip():
            return NOT_JSON
        media = content_type.split(";", 1)[0].strip().lower()
        if media in ("application/x-ndjson", "application/jsonl"):
            for index, line in enumerate(body.splitlines()):
                if line.strip():
                    self.check_document(_parse(line), ((None, "line"), index))
        elif not media or media.endswith(("/json", "+json")):
            document = _parse(body)
            if file_field is not None and isinstance(document, dict):
                if not isinstance(document.get(file_field, ""), str):
                    raise InvalidInput(f"'{file_field}' must be a string")
                self.check_document({k: v for k, v in document.items() if k != file_field}, None)
            else:
                self.check_document(document, None)
            return document
        elif media.startswith("text/"):
            self._text(body.decode("utf-8", errors="replace"), (None, "body"))
        return NOT_JSON

    def check_document(self, data: Any, path: Path) -> None:
        """Validate a parsed JSON document (a request body or one line of one)."""
        self._value(data, path, 0, STRUCT, None, top=True)

    def _value(self, value: Any, path: Path, depth: int, mode: int, kind: Any, top: bool) -> None:
        if isinstance(value, str):
            self._string(value, path, kind)
        elif isinstance(value, dict):
            self._object(value, path, depth + 1, mode, kind, top)
        elif isinstance(value, list):
            self._array(value, path, depth + 1, mode, kind)

    def _deeper(self, depth: int) -> None:
        if depth > self.max_depth:
            raise InvalidInput(f"JSON nesting is deeper than {self.max_depth} levels")

    def _array(self, items: list[Any], path: Path, depth: int, mode: int, kind: Any) -> None:
        self._deeper(depth)
        if SCALAR_TYPES.issuperset(map(type, items)):
            # Vectors: 384k floats in a batch of 1,000 took 25 ms to walk one by one; this
            # type check runs in C (numbers, booleans and nulls carry no text to check).
            return
        for index, item in enumerate(items):
            if not isinstance(item, SCALARS):
                self._value(item, (path, index), depth, mode, kind, False)

    def _object(
        self, obj: dict[str, Any], path: Path, depth: int, mode: int, kind: Any, top: bool
    ) -> None:
        self._deeper(depth)
        for key, item in obj.items():
            child_kind = self._key(key, path, mode, kind)
            if isinstance(item, SCALARS):
                continue
            child = (path, key)
            if mode == STRUCT and key in fields.METADATA_KEYS:
                self._value(item, child, depth, METADATA, None, False)
            elif mode == STRUCT and key in fields.FILTER_KEYS:
                self._value(item, child, depth, FILTER, None, False)
            elif isinstance(item, list) and mode != METADATA:
                if key == "tags" and len(item) > MAX_TAGS:
                    raise InvalidInput(
                        f"'{render(child)}' has {len(item)} tags; at most {MAX_TAGS}"
                    )
                self._array(item, child, depth + 1, mode, fields.kind_of_list(key) or child_kind)
            elif isinstance(item, str) and top and key == "name" and mode == STRUCT:
                self._string(item, child, fields.NAME)
            else:
                self._value(item, child, depth, mode, child_kind, False)

    def _key(self, key: str, path: Path, mode: int, inherited: Any) -> Any:
        """Check one object key; return the kind of the value stored under it."""
        if mode == FILTER and key.startswith("$"):
            if key not in fields.FILTER_OPERATORS:
                raise InjectionDetected(
                    f"{NOSQL} detected in '{render(path)}': unknown filter operator"
                )
            return None if key in LOGICAL_OPERATORS else inherited
        if key.startswith("$"):
            raise InjectionDetected(
                f"{NOSQL} detected in '{render(path)}': '$' operators are allowed only in filters"
            )
        reason = fields.key_refusal(key)
        if reason is not None:
            raise InvalidInput(f"'{render(path)}' has {reason}")
        category = COMMAND if fields.key_is_command(key) else detect(key)
        if category is None:
            category = system_path_probe(key) or (SSRF if ssrf_probe(key) else None)
        if category is not None:
            raise InjectionDetected(f"{category} detected in a key of '{render(path)}'")
        return None if mode == METADATA else fields.kind_of_key(key)

    def _string(self, value: str, path: Path, kind: fields.Kind | None) -> None:
        if kind is None or kind is fields.NAME:
            if kind is not None and (reason := kind.refusal(value)) is not None:
                raise InvalidInput(f"'{render(path)}' is {reason}")
            self._text(value, path)
            return
        reason = kind.refusal(value)
        if reason is None:
            if kind is not fields.SECRET and kind is not fields.URL:
                self._text(value, path)  # an allowed spelling can still encode a payload
            if kind is fields.TAG:
                self._label(value, path)
            return
        if kind is fields.URL:
            raise InjectionDetected(f"{SSRF} guard: '{render(path)}' is {reason}")
        category = None if kind is fields.SECRET else detect(value)
        if category is not None:
            raise InjectionDetected(f"{category} detected in '{render(path)}'")
        raise InvalidInput(f"'{render(path)}' is {reason}")

    @staticmethod
    def _label(value: str, path: Path) -> None:
        """A tag that fits the allow-list but spells a system path or an internal host."""
        category = system_path_probe(value)
        if category is not None:
            raise InjectionDetected(f"{category} detected in '{render(path)}'")
        reason = ssrf_probe(value)
        if reason is not None:
            raise InjectionDetected(f"{SSRF} guard: '{render(path)}' names {reason}")

    @staticmethod
    def _text(value: str, path: Path) -> None:
        category = detect(value)
        if category is not None:
            raise InjectionDetected(f"{category} detected in '{render(path)}'")

    # -- query, path, headers ---------------------------------------------------------------
    def check_query(self, query_string: bytes) -> None:
        """Every query parameter: key allow-list, value by kind (free text otherwise)."""
        if not query_string:
            return
        try:
            pairs = parse_qsl(query_string.decode("ascii"), keep_blank_values=True, errors="strict")
        except (UnicodeDecodeError, ValueError):
            raise InvalidInput("the query string is not valid percent-encoded UTF-8") from None
        for key, value in pairs:
            if key.startswith("$") or "[" in key:
                raise InjectionDetected(f"{NOSQL} detected in a query parameter name")
            if fields.key_refusal(key) is not None or fields.key_is_command(key):
                raise InvalidInput("a query parameter name has characters that are not allowed")
            kind = fields.kind_of_key(key)
            if value or kind is None:
                self._string(value, (None, f"{key} (query)"), kind)

    def check_path(self, path: str) -> None:
        """Path parameters of the route template ``path`` matches, each as its kind."""
        segments = tuple(path.split("/")[1:3])
        for size in (2, 1, 0):
            for template in self.templates.get(segments[:size], ()):
                match = template.match(path)
                if match is not None:
                    for name, value in match.groupdict().items():
                        self._string(value, (None, f"{name} (path)"), fields.kind_of_param(name))
                    return

    @staticmethod
    def check_headers(headers: Sequence[tuple[bytes, bytes]]) -> None:
        """The headers the server reads: no control characters, bounded length."""
        for name, value in headers:
            if name not in CHECKED_HEADERS:
                continue
            if len(value) > MAX_HEADER_BYTES:
                raise InvalidInput(
                    f"header '{name.decode()}' is longer than {MAX_HEADER_BYTES} bytes"
                )
            if HEADER_CONTROLS.search(value):
                raise InjectionDetected(f"{CRLF} detected in header '{name.decode()}'")


def _parse(body: bytes) -> Any:
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        if "depth" in str(exc):
            raise InvalidInput(f"JSON nesting is deeper than {MAX_JSON_DEPTH} levels") from None
        raise InvalidInput("malformed JSON body") from None


class InputValidationMiddleware:
    """Pure ASGI layer: validate, then replay the body unchanged to the app (or refuse: 400)."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        route_paths: Sequence[str],
        opaque_body_prefixes: tuple[str, ...] = (),
        raw_body_routes: Sequence[tuple[str, str]] = (),
        file_fields: Sequence[tuple[str, str, str]] = (),
    ) -> None:
        self.app = app
        self.validator = RequestValidator(route_paths)
        # Paths whose body is a protocol envelope, not engine input (the MCP endpoint): headers
        # and query are checked here, and every value inside reaches the engine only as an
        # in-process REST request that this layer checks in full.
        self.opaque_body_prefixes = opaque_body_prefixes
        # (method, route template, field): JSON bodies whose one field is a file's content.
        self.file_fields = [(m, compile_path(p)[0], f) for m, p, f in file_fields]
        # (method, route template) whose body is a file, not input: it streams to the route
        # unread and unbuffered (an attachment upload is bytes, not JSON or text to scan);
        # its headers, path and query parameters are checked as everywhere else.
        self.raw_body_routes = [(m, compile_path(p)[0]) for m, p in raw_body_routes]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if any(
            scope.get("method") == method and pattern.match(scope["path"])
            for method, pattern in self.raw_body_routes
        ):
            try:
                self.validator.check_headers(scope.get("headers", ()))
                self.validator.check_path(scope["path"])
                self.validator.check_query(scope.get("query_string", b""))
            except DakeraError as exc:
                await error_response(exc)(scope, receive, send)
                return
            await self.app(scope, receive, send)
            return
        content_type = ""
        for name, value in scope.get("headers", ()):
            if name == b"content-type":
                content_type = value.decode("latin-1")
        chunks: list[bytes] = []
        more = True
        while more:
            message = await receive()
            if message["type"] != "http.request":
                return  # the client went away before sending its body
            chunks.append(message.get("body", b""))
            more = message.get("more_body", False)
        body = b"".join(chunks)
        try:
            self.validator.check_headers(scope.get("headers", ()))
            self.validator.check_path(scope["path"])
            self.validator.check_query(scope.get("query_string", b""))
            path = scope["path"]
            opaque = any(path == p or path.startswith(p + "/") for p in self.opaque_body_prefixes)
            file_field = next(
                (
                    field
                    for method, pattern, field in self.file_fields
                    if scope.get("method") == method and pattern.match(path)
                ),
                None,
            )
            document = (
                NOT_JSON if opaque else self.validator.check_body(body, content_type, file_field)
            )
        except DakeraError as exc:
            await error_response(exc)(scope, receive, send)
            return
        if document is not NOT_JSON:
            scope.setdefault("state", {})[PARSED_BODY] = document
        await self.app(scope, _replay(body, receive), send)


def _replay(body: bytes, receive: Receive) -> Receive:
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay
