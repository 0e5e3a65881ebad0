"""Account, positions and deals read through the bridge from the deterministic simulator."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from mt5_bridge_service import BridgeSettings
from mt5_bridge_service import constants as mt5
from mt5_bridge_service.simulated import SimulatedTerminal
from tests.bridge.conftest import (
    LOGIN,
    WINDOW_END,
    WINDOW_START,
    OpenBridge,
    make_simulator,
)

WINDOW = {"from": WINDOW_START, "to": WINDOW_END}


async def test_account_has_exact_values_from_the_simulator(
    open_bridge: OpenBridge, sim: SimulatedTerminal
) -> None:
    async with open_bridge(sim) as client:
        response = await client.get(f"/accounts/{LOGIN}")

    assert response.status_code == 200
    body = response.json()
    as_of = datetime.fromisoformat(body.pop("as_of"))
    assert as_of.utcoffset() == timedelta(0)
    assert abs(datetime.now(UTC) - as_of) < timedelta(minutes=1)
    assert body == {
        "login": LOGIN,
        "balance": "10204.28",
        "equity": "9976.43",
        "margin": "1178.94",
        "margin_free": "8797.49",
        "margin_level": "846.22",
        "profit": "-227.85",
        "currency": "USD",
        "leverage": 100,
        "server": "FidusSim-Server",
        "name": f"Simulated client {LOGIN}",
    }


async def test_positions_have_exact_values_and_utc_times(
    open_bridge: OpenBridge, sim: SimulatedTerminal
) -> None:
    async with open_bridge(sim) as client:
        response = await client.get(f"/accounts/{LOGIN}/positions")

    assert response.status_code == 200
    assert response.json() == {
        "login": LOGIN,
        "positions": [
            {
                "ticket": 607985235,
                "symbol": "XAUUSD",
                "type": mt5.POSITION_TYPE_SELL,
                "volume": "0.5",
                "price_open": "2353.32",
                "price_current": "2357.87",
                "profit": "-227.50",
                "swap": "-0.35",
                "time": "2025-02-28T02:36:11.000+00:00",
            }
        ],
    }


async def test_first_deal_is_the_initial_deposit(
    open_bridge: OpenBridge, sim: SimulatedTerminal
) -> None:
    async with open_bridge(sim) as client:
        response = await client.get(f"/accounts/{LOGIN}/deals", params={**WINDOW, "limit": 2})

    assert response.status_code == 200
    body = response.json()
    assert body["from"] == "2025-01-01T00:00:00.000+00:00"
    assert body["to"] == "2025-03-02T00:00:00.000+00:00"
    assert (body["total"], body["offset"], body["limit"]) == (34, 0, 2)
    assert body["deals"][0] == {
        "ticket": 607985169,
        "order": 0,
        "position_id": 0,
        "time": "2025-01-30T03:18:49.000+00:00",
        "type": mt5.DEAL_TYPE_BALANCE,
        "type_name": "BALANCE",
        "entry": mt5.DEAL_ENTRY_IN,
        "symbol": "",
        "volume": "0.0",
        "price": "0.0",
        "profit": "10000.00",
        "commission": "0.00",
        "swap": "0.00",
        "fee": "0.00",
        "comment": "Initial deposit",
        "magic": 0,
    }
    assert body["deals"][1]["type_name"] == "BUY"
    assert body["deals"][1]["symbol"] == "USDJPY"


async def test_balance_equals_the_sum_of_all_deals_and_equity_adds_positions(
    open_bridge: OpenBridge, sim: SimulatedTerminal
) -> None:
    async with open_bridge(sim) as client:
        account = (await client.get(f"/accounts/{LOGIN}")).json()
        deals = (
            await client.get(f"/accounts/{LOGIN}/deals", params={**WINDOW, "limit": 1000})
        ).json()["deals"]
        positions = (await client.get(f"/accounts/{LOGIN}/positions")).json()["positions"]

    booked = sum(
        Decimal(d[field]) for d in deals for field in ("profit", "commission", "swap", "fee")
    )
    floating = sum(Decimal(p["profit"]) + Decimal(p["swap"]) for p in positions)
    assert Decimal(account["balance"]) == booked
    assert Decimal(account["equity"]) == booked + floating
    assert Decimal(account["margin_free"]) == Decimal(account["equity"]) - Decimal(
        account["margin"]
    )


async def test_paging_walks_every_deal_once_in_time_then_ticket_order(
    open_bridge: OpenBridge, sim: SimulatedTerminal
) -> None:
    async with open_bridge(sim) as client:
        everything = (
            await client.get(f"/accounts/{LOGIN}/deals", params={**WINDOW, "limit": 1000})
        ).json()
        pages = []
        for offset in range(0, everything["total"], 5):
            page = await client.get(
                f"/accounts/{LOGIN}/deals", params={**WINDOW, "limit": 5, "offset": offset}
            )
            assert page.status_code == 200
            assert page.json()["total"] == everything["total"]
            pages.extend(page.json()["deals"])

    assert [d["ticket"] for d in pages] == [d["ticket"] for d in everything["deals"]]
    keys = [(datetime.fromisoformat(d["time"]), d["ticket"]) for d in pages]
    assert keys == sorted(keys)
    assert len({d["ticket"] for d in pages}) == everything["total"]


async def test_deal_at_broker_time_appears_at_broker_time_minus_offset(
    open_bridge: OpenBridge,
) -> None:
    sim = make_simulator(broker_utc_offset_hours=3)
    settings = BridgeSettings(broker_utc_offset_hours=3)
    deposit_at = datetime(2025, 2, 10, 21, 30, 15, tzinfo=UTC)
    added = sim.add_deal(LOGIN, profit="2500.00", time=deposit_at, comment="Top-up")
    broker_time = datetime.fromtimestamp(added.time, UTC)
    assert broker_time == datetime(2025, 2, 11, 0, 30, 15, tzinfo=UTC)

    async with open_bridge(sim, settings=settings) as client:
        deals = (
            await client.get(f"/accounts/{LOGIN}/deals", params={**WINDOW, "limit": 1000})
        ).json()["deals"]
        health = (await client.get("/health")).json()

    found = [d for d in deals if d["ticket"] == added.ticket]
    assert len(found) == 1
    assert found[0]["time"] == "2025-02-10T21:30:15.000+00:00"
    assert datetime.fromisoformat(found[0]["time"]) == broker_time - timedelta(hours=3)
    assert found[0]["profit"] == "2500.00"
    assert health["broker_utc_offset_seconds"] == 3 * 3600


async def test_window_bounds_are_utc_from_inclusive_to_exclusive(
    open_bridge: OpenBridge, sim: SimulatedTerminal
) -> None:
    at = datetime(2025, 2, 20, 23, 0, tzinfo=UTC)  # 01:00 the next day in broker time
    added = sim.add_deal(LOGIN, profit="1.00", time=at)

    async with open_bridge(sim) as client:
        starting = await client.get(
            f"/accounts/{LOGIN}/deals",
            params={"from": "2025-02-20T23:00:00Z", "to": "2025-02-20T23:00:01Z"},
        )
        ending = await client.get(
            f"/accounts/{LOGIN}/deals",
            params={"from": "2025-02-20T22:00:00Z", "to": "2025-02-20T23:00:00Z"},
        )
        other_zone = await client.get(
            f"/accounts/{LOGIN}/deals",
            params={"from": "2025-02-21T00:59:59+02:00", "to": "2025-02-21T01:00:01+02:00"},
        )

    assert [d["ticket"] for d in starting.json()["deals"]] == [added.ticket]
    assert added.ticket not in [d["ticket"] for d in ending.json()["deals"]]
    assert [d["ticket"] for d in other_zone.json()["deals"]] == [added.ticket]
    assert other_zone.json()["from"] == "2025-02-20T22:59:59.000+00:00"


async def test_an_added_deposit_raises_the_balance(
    open_bridge: OpenBridge, sim: SimulatedTerminal
) -> None:
    async with open_bridge(sim) as client:
        before = Decimal((await client.get(f"/accounts/{LOGIN}")).json()["balance"])
        sim.add_deal(LOGIN, profit="5000.00", time=datetime(2025, 3, 1, 9, tzinfo=UTC))
        after = Decimal((await client.get(f"/accounts/{LOGIN}")).json()["balance"])

    assert after - before == Decimal("5000.00")


async def test_naive_datetimes_are_refused(open_bridge: OpenBridge, sim: SimulatedTerminal) -> None:
    async with open_bridge(sim) as client:
        naive_from = await client.get(
            f"/accounts/{LOGIN}/deals", params={"from": "2025-01-01T00:00:00"}
        )
        naive_to = await client.get(
            f"/accounts/{LOGIN}/deals",
            params={"from": WINDOW_START, "to": "2025-03-01T00:00:00"},
        )

    for response, field in ((naive_from, "from"), (naive_to, "to")):
        assert response.status_code == 422
        error = response.json()["error"]
        assert error["code"] == "VALIDATION_ERROR"
        assert error["details"][0]["loc"] == ["query", field]
        assert error["details"][0]["type"] == "timezone_aware"


async def test_bad_deal_queries_are_refused(
    open_bridge: OpenBridge, sim: SimulatedTerminal
) -> None:
    async with open_bridge(sim) as client:
        missing_from = await client.get(f"/accounts/{LOGIN}/deals")
        reversed_window = await client.get(
            f"/accounts/{LOGIN}/deals", params={"from": WINDOW_END, "to": WINDOW_START}
        )
        too_large = await client.get(f"/accounts/{LOGIN}/deals", params={**WINDOW, "limit": 1001})
        negative_offset = await client.get(
            f"/accounts/{LOGIN}/deals", params={**WINDOW, "offset": -1}
        )
        bad_login = await client.get("/accounts/not-a-number")

    for response in (missing_from, reversed_window, too_large, negative_offset, bad_login):
        assert response.status_code == 422
        assert response.json()["error"]["code"] == "VALIDATION_ERROR"
    assert reversed_window.json()["error"]["details"][0]["loc"] == ["query", "from"]


async def test_to_defaults_to_now(open_bridge: OpenBridge, sim: SimulatedTerminal) -> None:
    async with open_bridge(sim) as client:
        response = await client.get(f"/accounts/{LOGIN}/deals", params={"from": WINDOW_START})

    assert response.status_code == 200
    to = datetime.fromisoformat(response.json()["to"])
    assert abs(datetime.now(UTC) - to) < timedelta(minutes=1)
    assert response.json()["total"] == 34


async def test_health_lists_the_logins_served_so_far(
    open_bridge: OpenBridge, sim: SimulatedTerminal
) -> None:
    async with open_bridge(sim) as client:
        before = (await client.get("/health")).json()
        await client.get("/accounts/87654321")
        await client.get(f"/accounts/{LOGIN}")
        after = await client.get("/health")

    assert before["logins"] == []
    assert after.status_code == 200
    assert after.json() == {
        "status": "ok",
        "terminal": "simulated",
        "terminal_connected": True,
        "terminal_build": 4755,
        "logins": [LOGIN, 87654321],
        "broker_utc_offset_seconds": 7200,
    }


async def test_configured_accounts_restrict_the_logins_served(
    open_bridge: OpenBridge, sim: SimulatedTerminal
) -> None:
    settings = BridgeSettings(accounts={LOGIN: {}})
    async with open_bridge(sim, settings=settings) as client:
        served = await client.get(f"/accounts/{LOGIN}")
        refused = await client.get("/accounts/55555555/positions")
        health = (await client.get("/health")).json()

    assert served.status_code == 200
    assert refused.status_code == 404
    assert refused.json()["error"]["code"] == "ACCOUNT_NOT_SERVED"
    assert refused.json()["error"]["details"] == {"login": 55555555}
    assert health["logins"] == [LOGIN]
