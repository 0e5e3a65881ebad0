"""An in-memory embedded server and a driver client that waits out its long commands.

Why the client is configured here: the embedded server runs one command at a time on one event
loop, and at a few thousand documents one write (a 1,000-document bulk_write, a 250-document
insert_many) takes seconds, tens of seconds on a busy machine. Meanwhile it cannot answer the
driver's monitoring `hello`. When that heartbeat waits longer than connectTimeoutMS (20 s by
default) the driver marks the server unknown and interrupts every connection in use, so the write
in flight fails with `pymongo.errors._OperationCancelled`: `make bench` crashed that way in
bench_migration on a loaded machine, and a 1 s connectTimeoutMS reproduces it at once. A real
MongoDB answers `hello` while it writes; only the benchmarks' client needs this patience.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from pymongo import AsyncMongoClient

from backend.db.embedded import EmbeddedMongoServer

#: How long the driver's heartbeat (and a new connection's handshake) may wait for the server.
PATIENCE_MS = 600_000


@asynccontextmanager
async def embedded_client(**options: Any) -> AsyncIterator[tuple[str, AsyncMongoClient[Any]]]:
    """(uri, client) on a fresh in-memory server; the client is closed before the server."""
    server = EmbeddedMongoServer()
    uri = server.start()
    client: AsyncMongoClient[Any] = AsyncMongoClient(
        uri, tz_aware=True, connectTimeoutMS=PATIENCE_MS, **options)
    try:
        yield uri, client
    finally:
        await client.close()
        server.close()
