"""A minimal HTTP/1.1 keep-alive client over asyncio streams, for the demo's load.

httpx spends more CPU per request than the producer service it drives; on a 2-core machine
running 16 services and a broker that CPU is what the demo is trying to show off. This
client writes one request, reads one response (``Content-Length`` bodies only, which is
what uvicorn sends), and keeps the connection.
"""

from __future__ import annotations

import asyncio
import contextlib

__all__ = ["Connection", "HttpError"]


class HttpError(Exception):
    """The connection failed or the answer was not HTTP/1.1 as expected: the request's
    outcome is unknown, so the demo counts it as an HTTP error, never as delivered."""


class Connection:
    """One keep-alive connection to ``host:port``, one request at a time."""

    def __init__(self, host: str, port: int) -> None:
        self.host = host
        self.port = port
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def post(self, path: str, body: bytes) -> tuple[int, bytes]:
        """POST a JSON ``body``; the status and the body of the answer."""
        head = (
            f"POST {path} HTTP/1.1\r\nhost: {self.host}\r\ncontent-type: application/json\r\n"
            f"content-length: {len(body)}\r\n\r\n"
        ).encode()
        try:
            if self._reader is None or self._writer is None:
                self._reader, self._writer = await asyncio.open_connection(self.host, self.port)
            reader = self._reader
            self._writer.write(head + body)
            header = await reader.readuntil(b"\r\n\r\n")
            status, length, close = _parse(header)
            answer = await reader.readexactly(length) if length else b""
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError) as exc:
            await self.close()
            raise HttpError(f"{type(exc).__name__}: {exc}") from exc
        if close:
            await self.close()
        return status, answer

    async def close(self) -> None:
        writer, self._reader, self._writer = self._writer, None, None
        if writer is not None:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()


def _parse(header: bytes) -> tuple[int, int, bool]:
    """Status, Content-Length and whether the server closes, from a response's head."""
    lines = header.split(b"\r\n")
    if not lines[0].startswith(b"HTTP/1.1 "):
        raise HttpError(f"not an HTTP/1.1 answer: {lines[0][:80]!r}")
    status, length, close = int(lines[0][9:12]), 0, False
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        if name == b"content-length":
            length = int(value)
        elif name == b"connection":
            close = value.strip().lower() == b"close"
        elif name == b"transfer-encoding":
            raise HttpError("chunked answers are not supported by the demo's client")
    return status, length, close
