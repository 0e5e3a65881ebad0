"""The bridge client: against httpx.MockTransport for the failure modes, and against the bridge
app in-process for the real answers."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from decimal import Decimal

import httpx
import pytest
from asgi_lifespan import LifespanManager

from backend.bridge import (
    BridgeBadResponse,
    BridgeClient,
    BridgeRefused,
    BridgeUnreachable,
    TerminalCrossed,
)
from backend.settings import DEV_BRIDGE_API_KEY
from mt5_bridge_service import BridgeSettings, SimulatedTerminal, create_app

LOGIN = 50_001_234
HISTORY_END = datetime(2025, 3, 1, tzinfo=UTC)
ACCOUNT_BODY = {
    "login": LOGIN, "balance": "10000.10", "equity": "10050.35", "margin": "0.00",
    "margin_free": "10050.35", "margin_level": None, "profit": "50.25", "currency": "USD",
    "leverage": 100, "server": "Sim", "name": "Client", "as_of": "2025-03-01T10:00:00.000+00:00",
}

Handler = Callable[[httpx.Request], httpx.Response]


async def _no_sleep(seconds: float) -> None:
    return None


def mock_client(handler: Handler, **options: object) -> BridgeClient:
    return BridgeClient("http://bridge.test", "key-1", transport=httpx.MockTransport(handler),
                        sleep=_no_sleep, **options)  # type: ignore[arg-type]


def counting(responses: list[httpx.Response | Exception]) -> tuple[Handler, list[httpx.Request]]:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        answer = responses[min(len(seen), len(responses)) - 1]
        if isinstance(answer, Exception):
            raise answer
        return answer

    return handler, seen


def envelope(status: int, code: str) -> httpx.Response:
    return httpx.Response(status, json={"error": {"code": code, "message": code.lower(),
                                                  "details": None}})


async def test_retries_a_503_then_succeeds_with_exact_money_and_the_key() -> None:
    handler, seen = counting([envelope(503, "TERMINAL_UNAVAILABLE"),
                              envelope(503, "TERMINAL_UNAVAILABLE"),
                              httpx.Response(200, json=ACCOUNT_BODY)])
    async with mock_client(handler) as client:
        account = await client.account(LOGIN)
    assert len(seen) == 3
    assert all(r.headers["X-API-Key"] == "key-1" for r in seen)
    assert seen[0].url.path == f"/accounts/{LOGIN}"
    assert account.equity == Decimal("10050.35") and isinstance(account.equity, Decimal)
    assert account.margin_level is None


@pytest.mark.parametrize("status,code", [(401, "UNAUTHORIZED"), (404, "ACCOUNT_NOT_SERVED"),
                                         (403, "IP_NOT_ALLOWED")])
async def test_client_errors_are_not_retried(status: int, code: str) -> None:
    handler, seen = counting([envelope(status, code), httpx.Response(200, json=ACCOUNT_BODY)])
    async with mock_client(handler) as client:
        with pytest.raises(BridgeRefused) as caught:
            await client.account(LOGIN)
    assert len(seen) == 1
    assert caught.value.status_code == status and caught.value.bridge_code == code


async def test_a_crossed_terminal_is_not_retried() -> None:
    handler, seen = counting([envelope(502, "TERMINAL_LOGIN_MISMATCH")])
    async with mock_client(handler) as client:
        with pytest.raises(TerminalCrossed):
            await client.account(LOGIN)
    assert len(seen) == 1


async def test_gives_up_after_the_attempts_on_persistent_5xx() -> None:
    handler, seen = counting([envelope(504, "HTTP_504")])
    async with mock_client(handler, attempts=4) as client:
        with pytest.raises(BridgeRefused) as caught:
            await client.account(LOGIN)
    assert len(seen) == 4 and caught.value.status_code == 504


async def test_connect_errors_are_retried_then_reported_as_unreachable() -> None:
    handler, seen = counting([httpx.ConnectError("connection refused")])
    async with mock_client(handler) as client:
        with pytest.raises(BridgeUnreachable, match="connection refused"):
            await client.health()
    assert len(seen) == 3


async def test_a_timeout_is_retried_and_then_succeeds() -> None:
    handler, seen = counting([httpx.ReadTimeout("slow"), httpx.Response(200, json=ACCOUNT_BODY)])
    async with mock_client(handler) as client:
        account = await client.account(LOGIN)
    assert len(seen) == 2 and account.login == LOGIN


async def test_the_configured_timeout_is_applied() -> None:
    timeouts: list[dict[str, float | None]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        timeouts.append(request.extensions["timeout"])
        return httpx.Response(200, json=ACCOUNT_BODY)

    async with mock_client(handler, timeout_seconds=2.5) as client:
        await client.account(LOGIN)
    assert timeouts[0]["read"] == 2.5 and timeouts[0]["connect"] == 2.5


async def test_money_as_a_json_number_is_refused() -> None:
    body = dict(ACCOUNT_BODY, equity=10050.35)
    handler, seen = counting([httpx.Response(200, json=body)])
    async with mock_client(handler) as client:
        with pytest.raises(BridgeBadResponse):
            await client.account(LOGIN)
    assert len(seen) == 1


async def test_deals_follow_the_pages() -> None:
    def deal(ticket: int) -> dict[str, object]:
        return {"ticket": ticket, "order": 0, "position_id": 0,
                "time": "2025-02-01T00:00:00.000+00:00", "type": 2, "type_name": "BALANCE",
                "entry": 0, "symbol": "", "volume": "0", "price": "0", "profit": "100.00",
                "commission": "0.00", "swap": "0.00", "fee": "0.00", "comment": "", "magic": 0}

    def handler(request: httpx.Request) -> httpx.Response:
        offset = int(request.url.params["offset"])
        tickets = list(range(1, 1501))[offset:offset + 1000]
        return httpx.Response(200, json={
            "login": LOGIN, "from": request.url.params["from"], "to": request.url.params["to"],
            "total": 1500, "offset": offset, "limit": 1000, "deals": [deal(t) for t in tickets]})

    async with mock_client(handler) as client:
        deals = await client.deals(LOGIN, start=datetime(2025, 1, 1, tzinfo=UTC),
                                   end=datetime(2025, 3, 1, tzinfo=UTC))
    assert [d.ticket for d in deals] == list(range(1, 1501))


# --- against the bridge app in-process ---------------------------------------------------


@pytest.fixture
def sim() -> SimulatedTerminal:
    return SimulatedTerminal(11, history_end=HISTORY_END)


@pytest.fixture
async def bridge_client(sim: SimulatedTerminal) -> AsyncIterator[BridgeClient]:
    app = create_app(BridgeSettings(env="test", api_keys=[DEV_BRIDGE_API_KEY]), sim)  # type: ignore[list-item]
    async with (
        LifespanManager(app),
        BridgeClient("http://bridge", DEV_BRIDGE_API_KEY, sleep=_no_sleep,
                     transport=httpx.ASGITransport(app=app)) as client,
    ):
        yield client


async def test_in_process_answers_match_the_simulator(
    bridge_client: BridgeClient, sim: SimulatedTerminal
) -> None:
    health = await bridge_client.health()
    assert health.terminal == "simulated" and health.terminal_connected
    account = await bridge_client.account(LOGIN)
    raw = sim.raw_deals(LOGIN)
    assert account.login == LOGIN and account.currency == "USD"
    expected_balance = sum(
        (Decimal(repr(d.profit)) + Decimal(repr(d.commission)) + Decimal(repr(d.swap))
         + Decimal(repr(d.fee)) for d in raw), Decimal(0))
    assert account.balance == expected_balance.quantize(Decimal("0.01"))
    deals = await bridge_client.deals(LOGIN, start=datetime(2024, 1, 1, tzinfo=UTC),
                                      end=datetime(2025, 3, 2, tzinfo=UTC))
    assert sorted(d.ticket for d in deals) == sorted(d.ticket for d in raw)
    assert deals[0].type_name == "BALANCE" and deals[0].profit > 0


async def test_in_process_wrong_key_is_refused_once(sim: SimulatedTerminal) -> None:
    app = create_app(BridgeSettings(env="test", api_keys=[DEV_BRIDGE_API_KEY]), sim)  # type: ignore[list-item]
    async with LifespanManager(app), BridgeClient("http://bridge", "wrong-key",
                            transport=httpx.ASGITransport(app=app)) as client:
        with pytest.raises(BridgeRefused) as caught:
            await client.account(LOGIN)
    assert caught.value.status_code == 401 and caught.value.bridge_code == "UNAUTHORIZED"


async def test_in_process_crossed_terminal_raises_terminal_crossed(
    bridge_client: BridgeClient, sim: SimulatedTerminal
) -> None:
    sim.cross_login(LOGIN, LOGIN + 1)
    with pytest.raises(TerminalCrossed) as caught:
        await bridge_client.account(LOGIN)
    assert caught.value.status_code == 502
