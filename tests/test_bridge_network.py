"""The bridge client over a real socket, through the connection pool it uses in production
(aiohttp's, under httpx): the bridge in a process of its own, and raw servers that refuse,
hang up or never answer. Every failure reaches the sync as `BridgeUnreachable`, retried, with a
message that says what happened."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime

import pytest

from backend.bridge import BridgeClient, BridgeRefused, BridgeUnreachable
from backend.settings import DEV_BRIDGE_API_KEY
from tests.bridge_process import bridge_process
from tests.support import free_port
from tests.sync_factories import HISTORY_END, simulator

FIRST_LOGIN = 72_000_000
ACCOUNTS = 3


@pytest.fixture(scope="module")
def bridge_url() -> Iterator[str]:
    with bridge_process(FIRST_LOGIN, ACCOUNTS, latency_seconds=0.0) as url:
        yield url


class Sleeps:
    """The client's back-off sleeps, recorded instead of slept."""

    def __init__(self) -> None:
        self.seconds: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.seconds.append(seconds)


async def test_answers_over_the_network_match_the_simulator(bridge_url: str) -> None:
    sim = simulator()  # the same seed as the process's: the same data
    async with BridgeClient(bridge_url, DEV_BRIDGE_API_KEY) as bridge:
        account = await bridge.account(FIRST_LOGIN)
        deals = await bridge.deals(FIRST_LOGIN, start=datetime(2024, 1, 1, tzinfo=UTC),
                                   end=HISTORY_END)
    assert account.login == FIRST_LOGIN and account.currency == "USD"
    raw = sim.raw_deals(FIRST_LOGIN)
    assert len(raw) > 10
    assert sorted(d.ticket for d in deals) == sorted(d.ticket for d in raw)


async def test_many_concurrent_requests_share_a_small_pool(bridge_url: str) -> None:
    logins = [FIRST_LOGIN + n % ACCOUNTS for n in range(60)]
    async with BridgeClient(bridge_url, DEV_BRIDGE_API_KEY, max_connections=4) as bridge:
        accounts = await asyncio.gather(*(bridge.account(login) for login in logins))
    assert [a.login for a in accounts] == logins


async def test_a_wrong_key_is_refused_and_not_retried(bridge_url: str) -> None:
    sleeps = Sleeps()
    async with BridgeClient(bridge_url, "not-the-key", sleep=sleeps) as bridge:
        with pytest.raises(BridgeRefused) as caught:
            await bridge.account(FIRST_LOGIN)
    assert caught.value.status_code == 401
    assert sleeps.seconds == []


async def test_a_refused_connection_is_unreachable_and_retried() -> None:
    sleeps = Sleeps()
    async with BridgeClient(f"http://127.0.0.1:{free_port()}", DEV_BRIDGE_API_KEY,
                            attempts=3, sleep=sleeps) as bridge:
        with pytest.raises(BridgeUnreachable) as caught:
            await bridge.account(FIRST_LOGIN)
    assert "cannot be reached" in str(caught.value)
    assert len(sleeps.seconds) == 2  # three attempts, two back-offs


@asynccontextmanager
async def raw_server(handle: object) -> AsyncIterator[str]:
    server = await asyncio.start_server(handle, "127.0.0.1", 0)  # type: ignore[arg-type]
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.close()


async def test_a_server_that_hangs_up_is_unreachable() -> None:
    async def hang_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.close()

    async with raw_server(hang_up) as url, BridgeClient(url, DEV_BRIDGE_API_KEY, attempts=1
                                                         ) as bridge:
        with pytest.raises(BridgeUnreachable) as caught:
            await bridge.account(FIRST_LOGIN)
    assert "cannot be reached" in str(caught.value)


async def test_a_server_that_never_answers_times_out() -> None:
    async def never_answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        await asyncio.sleep(30)

    async with raw_server(never_answer) as url, BridgeClient(
            url, DEV_BRIDGE_API_KEY, attempts=1, timeout_seconds=0.3) as bridge:
        with pytest.raises(BridgeUnreachable) as caught:
            await bridge.account(FIRST_LOGIN)
    assert "did not answer in time" in str(caught.value)
