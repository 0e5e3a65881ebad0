"""Fixtures for the MT5 bridge: a deterministic simulated terminal and an in-process client."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager

from mt5_bridge_service import DEV_API_KEY, BridgeSettings, SimulatedTerminal, create_app
from mt5_bridge_service.terminal import Terminal

SEED = 7
LOGIN = 12_345_678
HISTORY_END = datetime(2025, 3, 1, tzinfo=UTC)
WINDOW_START = "2025-01-01T00:00:00+00:00"
WINDOW_END = "2025-03-02T00:00:00+00:00"

OpenBridge = Callable[..., AbstractAsyncContextManager[httpx.AsyncClient]]


@pytest.fixture(autouse=True)
def _no_bridge_environment(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Settings come from each test, never from the shell that runs the suite."""
    for name in list(os.environ):
        if name.startswith("BRIDGE_"):
            monkeypatch.delenv(name)
    yield


def make_simulator(**overrides: Any) -> SimulatedTerminal:
    options: dict[str, Any] = {"history_end": HISTORY_END}
    options.update(overrides)
    seed = options.pop("seed", SEED)
    return SimulatedTerminal(seed, **options)


@pytest.fixture
def sim() -> SimulatedTerminal:
    return make_simulator()


@pytest.fixture
def open_bridge() -> OpenBridge:
    """Start the app (lifespan included) on `terminal` and yield a client sending `api_key`."""

    @asynccontextmanager
    async def _open(
        terminal: Terminal,
        *,
        settings: BridgeSettings | None = None,
        api_key: str | None = DEV_API_KEY,
        client_ip: str = "127.0.0.1",
    ) -> AsyncIterator[httpx.AsyncClient]:
        app = create_app(settings or BridgeSettings(), terminal)
        headers = {"X-API-Key": api_key} if api_key is not None else {}
        transport = httpx.ASGITransport(app=app, client=(client_ip, 50_000))
        async with (
            LifespanManager(app),
            httpx.AsyncClient(
                transport=transport, base_url="http://bridge", headers=headers
            ) as client,
        ):
            yield client

    return _open
