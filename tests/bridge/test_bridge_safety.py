"""Crossed terminals, MT5 errors, unavailability, serialization and the error envelope."""

from __future__ import annotations

import asyncio
import logging
import threading
from typing import Any

import pytest

from mt5_bridge_service import BridgeSettings
from mt5_bridge_service import constants as mt5
from mt5_bridge_service.simulated import SimulatedTerminal
from mt5_bridge_service.terminal import AccountInfo, TradeDeal
from tests.bridge.conftest import LOGIN, WINDOW_START, OpenBridge, make_simulator

OTHER_LOGIN = 99_000_001


async def test_crossed_terminal_is_refused_and_logged(
    open_bridge: OpenBridge, sim: SimulatedTerminal, caplog: pytest.LogCaptureFixture
) -> None:
    sim.cross_login(LOGIN, OTHER_LOGIN)
    caplog.set_level(logging.ERROR, logger="mt5_bridge_service")

    async with open_bridge(sim) as client:
        account = await client.get(f"/accounts/{LOGIN}")
        deals = await client.get(f"/accounts/{LOGIN}/deals", params={"from": WINDOW_START})
        positions = await client.get(f"/accounts/{LOGIN}/positions")

    for response in (account, deals, positions):
        assert response.status_code == 502
        error = response.json()["error"]
        assert error["code"] == "TERMINAL_LOGIN_MISMATCH"
        assert error["details"] == {"requested_login": LOGIN, "terminal_login": OTHER_LOGIN}
        assert "balance" not in response.text
    mismatches = [r for r in caplog.records if "mismatch" in r.getMessage()]
    assert len(mismatches) == 3
    assert all(r.levelno == logging.ERROR for r in mismatches)
    assert str(LOGIN) in mismatches[0].getMessage()
    assert str(OTHER_LOGIN) in mismatches[0].getMessage()


async def test_uncrossed_terminal_answers_again(
    open_bridge: OpenBridge, sim: SimulatedTerminal
) -> None:
    sim.cross_login(LOGIN, OTHER_LOGIN)
    async with open_bridge(sim) as client:
        crossed = await client.get(f"/accounts/{LOGIN}")
        sim.cross_login(LOGIN, None)
        fixed = await client.get(f"/accounts/{LOGIN}")

    assert crossed.status_code == 502
    assert fixed.status_code == 200
    assert fixed.json()["login"] == LOGIN


async def test_mt5_error_is_mapped_with_code_and_message(
    open_bridge: OpenBridge, sim: SimulatedTerminal
) -> None:
    async with open_bridge(sim) as client:
        sim.fail_next(mt5.RES_E_NOT_FOUND, "Terminal: Not found", function="history_deals_get")
        response = await client.get(f"/accounts/{LOGIN}/deals", params={"from": WINDOW_START})

    assert response.status_code == 502
    error = response.json()["error"]
    assert error["code"] == "MT5_ERROR"
    assert "history_deals_get" in error["message"]
    assert "no such data" in error["message"]
    assert error["details"] == {
        "mt5_code": -4,
        "mt5_name": "RES_E_NOT_FOUND",
        "mt5_message": "Terminal: Not found",
        "function": "history_deals_get",
        "login": LOGIN,
    }


async def test_refused_login_is_an_mt5_error_naming_the_cause(
    open_bridge: OpenBridge, sim: SimulatedTerminal
) -> None:
    async with open_bridge(sim) as client:
        sim.fail_next(mt5.RES_E_AUTH_FAILED, "Authorization failed", function="login")
        response = await client.get(f"/accounts/{LOGIN}")

    assert response.status_code == 502
    error = response.json()["error"]
    assert error["code"] == "MT5_ERROR"
    assert "BRIDGE_ACCOUNTS" in error["message"]
    assert error["details"]["mt5_name"] == "RES_E_AUTH_FAILED"


async def test_unavailable_terminal_is_503_and_health_degrades_then_recovers(
    open_bridge: OpenBridge, sim: SimulatedTerminal
) -> None:
    async with open_bridge(sim) as client:
        sim.set_unavailable(True)
        account = await client.get(f"/accounts/{LOGIN}")
        degraded = await client.get("/health")
        sim.set_unavailable(False)
        recovered = await client.get("/health")
        again = await client.get(f"/accounts/{LOGIN}")

    assert account.status_code == 503
    assert account.json()["error"]["code"] == "TERMINAL_UNAVAILABLE"
    assert account.json()["error"]["details"]["mt5_name"] == "RES_E_INTERNAL_FAIL_CONNECT"
    assert degraded.status_code == 200
    assert degraded.json()["status"] == "degraded"
    assert degraded.json()["terminal_connected"] is False
    assert recovered.json()["status"] == "ok"
    assert again.status_code == 200


async def test_bridge_starts_degraded_when_the_terminal_is_down(
    open_bridge: OpenBridge, sim: SimulatedTerminal
) -> None:
    sim.set_unavailable(True)
    async with open_bridge(sim) as client:
        down = await client.get("/health")
        sim.set_unavailable(False)
        up = await client.get(f"/accounts/{LOGIN}")

    assert down.json()["status"] == "degraded"
    assert up.status_code == 200


async def test_unknown_route_and_method_use_the_error_envelope(
    open_bridge: OpenBridge, sim: SimulatedTerminal
) -> None:
    async with open_bridge(sim) as client:
        missing = await client.get("/no-such-route")
        wrong_method = await client.delete(f"/accounts/{LOGIN}")

    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "NOT_FOUND"
    assert wrong_method.status_code == 405
    assert wrong_method.json()["error"]["code"] == "METHOD_NOT_ALLOWED"


class _BrokenTerminal(SimulatedTerminal):
    def account_info(self) -> AccountInfo | None:
        raise RuntimeError("secret internal detail")


async def test_unexpected_error_is_500_without_a_traceback(
    open_bridge: OpenBridge, caplog: pytest.LogCaptureFixture
) -> None:
    async with open_bridge(_BrokenTerminal(history_end=make_simulator().history_end)) as client:
        response = await client.get(f"/accounts/{LOGIN}")

    assert response.status_code == 500
    assert response.json()["error"]["code"] == "INTERNAL_ERROR"
    assert "secret internal detail" not in response.text
    assert "Traceback" not in response.text
    assert any(r.exc_info for r in caplog.records if r.name == "mt5_bridge_service")


class _SerialTerminal(SimulatedTerminal):
    """A simulator that declares itself unsafe, like the real package, and counts overlaps."""

    thread_safe = False

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.active = 0
        self.most_active = 0
        self._count_lock = threading.Lock()

    def _enter(self, function: str, *, needs_init: bool = True) -> bool:
        with self._count_lock:
            self.active += 1
            self.most_active = max(self.most_active, self.active)
        try:
            return super()._enter(function, needs_init=needs_init)
        finally:
            with self._count_lock:
                self.active -= 1


async def test_unsafe_terminal_is_called_one_thread_at_a_time(open_bridge: OpenBridge) -> None:
    terminal = _SerialTerminal(latency_seconds=0.005, history_end=make_simulator().history_end)
    async with open_bridge(terminal) as client:
        responses = await asyncio.gather(*(client.get(f"/accounts/{LOGIN + n}") for n in range(12)))

    assert [r.status_code for r in responses] == [200] * 12
    assert {r.json()["login"] for r in responses} == {LOGIN + n for n in range(12)}
    assert terminal.most_active == 1


async def test_thread_safe_simulator_overlaps_concurrent_requests(open_bridge: OpenBridge) -> None:
    class Counting(_SerialTerminal):
        thread_safe = True

    terminal = Counting(latency_seconds=0.05, history_end=make_simulator().history_end)
    async with open_bridge(terminal) as client:
        responses = await asyncio.gather(*(client.get(f"/accounts/{LOGIN + n}") for n in range(20)))

    assert all(r.status_code == 200 for r in responses)
    assert {r.json()["login"] for r in responses} == {LOGIN + n for n in range(20)}
    assert terminal.most_active >= 10


async def test_empty_history_answered_as_none_with_success_is_an_empty_page(
    open_bridge: OpenBridge,
) -> None:
    class NoneWhenEmpty(SimulatedTerminal):
        def history_deals_get(self, *args: Any, **kwargs: Any) -> tuple[TradeDeal, ...] | None:
            found = super().history_deals_get(*args, **kwargs)
            return found or None

    terminal = NoneWhenEmpty(history_end=make_simulator().history_end)
    async with open_bridge(terminal) as client:
        response = await client.get(
            f"/accounts/{LOGIN}/deals",
            params={"from": "2020-01-01T00:00:00Z", "to": "2020-02-01T00:00:00Z"},
        )

    assert response.status_code == 200
    assert (response.json()["total"], response.json()["deals"]) == (0, [])


class _RecordingTerminal(SimulatedTerminal):
    """Records how the gateway attaches to terminals and logs in, as the real one would see."""

    thread_safe = False

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.calls: list[tuple[Any, ...]] = []

    def initialize(self, path: str | None = None, **kwargs: Any) -> bool:
        self.calls.append(("initialize", path, kwargs.get("login"), kwargs.get("password")))
        return super().initialize(path, **kwargs)

    def login(self, login: int, password: str | None = None, *args: Any, **kw: Any) -> bool:
        self.calls.append(("login", login, password))
        return super().login(login, password, *args, **kw)

    def shutdown(self) -> None:
        self.calls.append(("shutdown",))
        super().shutdown()


async def test_each_login_is_reached_on_its_own_terminal_with_its_credentials(
    open_bridge: OpenBridge,
) -> None:
    settings = BridgeSettings(
        accounts={
            LOGIN: {"password": "pw-a", "server": "A-Live", "terminal_path": "C:/mt5/a"},
            OTHER_LOGIN: {"password": "pw-b", "server": "B-Live", "terminal_path": "C:/mt5/b"},
        }
    )
    terminal = _RecordingTerminal(history_end=make_simulator().history_end)
    async with open_bridge(terminal, settings=settings) as client:
        first = await client.get(f"/accounts/{LOGIN}")
        second = await client.get(f"/accounts/{OTHER_LOGIN}")

    assert (first.json()["login"], second.json()["login"]) == (LOGIN, OTHER_LOGIN)
    attaches = [c for c in terminal.calls if c[0] == "initialize"]
    assert attaches == [
        ("initialize", None, None, None),
        ("initialize", "C:/mt5/a", LOGIN, "pw-a"),
        ("initialize", "C:/mt5/b", OTHER_LOGIN, "pw-b"),
    ]
    assert terminal.calls.count(("shutdown",)) >= 2
