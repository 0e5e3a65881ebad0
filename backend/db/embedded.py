"""The embedded MongoDB wire-protocol server used in development and tests.

It runs `mongoeco`'s proxy server on its own event loop in a daemon thread, so that the real
PyMongo driver can talk to it from any loop (uvicorn's, or one per test) over loopback TCP.
It is never started in production: `ConnectionManager` refuses that before getting here.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from concurrent.futures import Future
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)


class EmbeddedMongoServer:
    """A MongoDB-compatible server on 127.0.0.1, in memory or persisted to a SQLite file.

    `stop()` then `start()` brings the server back on the same port with the same data, which
    is how tests simulate the database going away and coming back.
    """

    def __init__(self, *, path: Path | None = None, host: str = "127.0.0.1", port: int = 0) -> None:
        self._path = path
        self._host = host
        self._port = port
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._engine_client: Any = None
        self._server: Any = None

    @property
    def uri(self) -> str:
        return f"mongodb://{self._host}:{self._port}/?directConnection=true"

    @property
    def running(self) -> bool:
        return self._server is not None

    @property
    def persistent_path(self) -> Path | None:
        return self._path

    def _ensure_loop(self) -> asyncio.AbstractEventLoop:
        if self._loop is None:
            loop = asyncio.new_event_loop()
            thread = threading.Thread(
                target=loop.run_forever, name="fidus-embedded-mongodb", daemon=True
            )
            thread.start()
            self._loop, self._thread = loop, thread
        return self._loop

    def _run(self, coro: Any) -> Any:
        future: Future[Any] = asyncio.run_coroutine_threadsafe(coro, self._ensure_loop())
        return future.result(timeout=60)

    async def _start(self) -> None:
        from mongoeco.api import AsyncMongoClient as EngineClient
        from mongoeco.wire import AsyncMongoEcoProxyServer

        if self._engine_client is None:
            _teach_bson_size_about_decimal128()
            engine: Any = None
            if self._path is not None:
                self._path.parent.mkdir(parents=True, exist_ok=True)
                engine = _persistent_engine(self._path)
            self._engine_client = EngineClient(engine)
            await self._engine_client._engine.connect()
        server = AsyncMongoEcoProxyServer(
            client=self._engine_client, host=self._host, port=self._port
        )
        address = await server.start()
        self._port = address.port
        self._server = server

    async def _stop(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            await server.close()

    async def _shutdown(self) -> None:
        await self._stop()
        if self._engine_client is not None:
            await self._engine_client._engine.disconnect()
            self._engine_client = None

    def start(self) -> str:
        """Start (or restart) the server and return its URI."""
        if not self.running:
            self._run(self._start())
        return self.uri

    def stop(self) -> None:
        """Stop listening; the data stays, so `start()` serves it again on the same port."""
        if self.running:
            self._run(self._stop())

    def close(self) -> None:
        """Stop for good and release the storage engine and the thread."""
        if self._loop is None:
            return
        self._run(self._shutdown())
        self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread is not None:
            self._thread.join(timeout=10)
        self._loop.close()
        self._loop = self._thread = None


def _plain_numbers(value: Any) -> Any:
    from mongoeco.core.bson_scalars import BsonInt32, BsonInt64

    if isinstance(value, BsonInt32 | BsonInt64):
        return value.value
    if isinstance(value, dict):
        return {key: _plain_numbers(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_plain_numbers(item) for item in value]
    return value


def _teach_bson_size_about_decimal128() -> None:
    """mongoeco 4.11's `$bsonSize`, used by dbStats on either engine, refuses Decimal128
    ("$bsonSize cannot encode value of type Decimal128"), so `/health` could not read the
    development database's figures. A Decimal128 is 16 bytes in BSON."""
    from bson import Decimal128
    from mongoeco.core.aggregation import runtime

    original = runtime._bson_value_size
    if getattr(original, "_fidus", False):
        return

    def size(value: Any) -> int:
        if isinstance(value, Decimal128):
            return 16
        return int(original(value))

    size._fidus = True  # type: ignore[attr-defined]
    runtime._bson_value_size = size


def _persistent_engine(path: Path) -> Any:
    """mongoeco's SQLite engine, able to keep our validators.

    mongoeco 4.11 stores collection options as JSON and fails on a validator holding a 64-bit
    integer ("Object of type BsonInt64 is not JSON serializable"); such numbers are stored as
    plain integers instead. This is development set-up only: a real MongoDB has no such limit.
    """
    from mongoeco.engines.sqlite import SQLiteEngine

    class _FidusSQLiteEngine(SQLiteEngine):
        def _ensure_collection_row(self, conn: Any, db_name: str, coll_name: str, *,
                                   options: dict[str, object] | None = None) -> None:
            super()._ensure_collection_row(conn, db_name, coll_name,
                                           options=_plain_numbers(options))

    return _FidusSQLiteEngine(path=str(path))
