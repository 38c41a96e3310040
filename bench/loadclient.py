"""A deliberately cheap HTTP/1.1 load client for ``bench/load.py``: raw asyncio streams.

A general client (httpx, the SDK) costs a few hundred microseconds of Python per request; at a
few hundred requests per second that is a tenth of a core taken from the server it measures.
This one writes a pre-formatted request and reads ``Content-Length`` bytes back: about 40 us per
request (``bench/load.py`` prints the client's own CPU per request next to the server's).
Keep-alive connections, one per simulated client; no pipelining.
"""

from __future__ import annotations

import asyncio
import re

__all__ = ["Connection", "Response"]

_LENGTH = re.compile(rb"\r\ncontent-length:\s*(\d+)", re.IGNORECASE)
_CHUNKED = re.compile(rb"\r\ntransfer-encoding:\s*chunked", re.IGNORECASE)
_CLOSE = re.compile(rb"\r\nconnection:\s*close", re.IGNORECASE)


class Response:
    """Status, raw header block and body of one answer."""

    __slots__ = ("body", "head", "status")

    def __init__(self, status: int, head: bytes, body: bytes) -> None:
        self.status = status
        self.head = head
        self.body = body

    def header(self, name: str) -> str | None:
        """The first value of header ``name`` (case-insensitive), or None."""
        match = re.search(rb"\r\n" + re.escape(name.encode()) + rb":\s*([^\r]*)", self.head, re.I)
        return None if match is None else match.group(1).decode()


class Connection:
    """One keep-alive connection to ``host:port``; reconnects when the server closes it."""

    def __init__(self, host: str, port: int, headers: dict[str, str]) -> None:
        self._host = host
        self._port = port
        self._fixed = "".join(f"{k}: {v}\r\n" for k, v in headers.items()).encode()
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def request(self, method: str, path: str, body: bytes | None = None) -> Response:
        """Send one request and read its whole answer."""
        if self._writer is None:
            self._reader, self._writer = await asyncio.open_connection(self._host, self._port)
        assert self._reader is not None
        head = f"{method} {path} HTTP/1.1\r\nHost: {self._host}:{self._port}\r\n".encode()
        if body is not None:
            head += b"Content-Type: application/json\r\nContent-Length: %d\r\n" % len(body)
        self._writer.write(head + self._fixed + b"\r\n" + (body or b""))
        try:
            raw = await self._reader.readuntil(b"\r\n\r\n")
            status = int(raw[9:12])
            match = _LENGTH.search(raw)
            if match is not None:
                data = await self._reader.readexactly(int(match.group(1)))
            elif _CHUNKED.search(raw):
                data = await self._read_chunked()
            else:
                data = b""
        except (asyncio.IncompleteReadError, ConnectionError):
            await self.close()
            raise
        if _CLOSE.search(raw):
            await self.close()
        return Response(status, raw, data)

    async def _read_chunked(self) -> bytes:
        assert self._reader is not None
        parts = []
        while True:
            size = int((await self._reader.readuntil(b"\r\n")).split(b";")[0], 16)
            if size == 0:
                await self._reader.readuntil(b"\r\n")
                return b"".join(parts)
            parts.append(await self._reader.readexactly(size))
            await self._reader.readexactly(2)

    async def close(self) -> None:
        """Close the socket (the next request opens a new one)."""
        writer, self._writer, self._reader = self._writer, None, None
        if writer is not None:
            writer.close()
            try:
                await writer.wait_closed()
            except ConnectionError:
                pass
