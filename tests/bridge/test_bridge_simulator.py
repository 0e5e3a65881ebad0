"""The simulated terminal itself: the package's shapes, determinism, hooks and threading."""

from __future__ import annotations

import json
import threading
import time
import types
from collections import namedtuple
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from mt5_bridge_service import constants as mt5
from mt5_bridge_service.simulated import SimulatedTerminal
from mt5_bridge_service.terminal import MetaTrader5Terminal, Terminal
from tests.bridge.conftest import HISTORY_END, LOGIN, make_simulator

EVERYTHING = (0, 2**31)


def _logged_in(terminal: SimulatedTerminal, login: int) -> SimulatedTerminal:
    assert terminal.initialize()
    assert terminal.login(login, password="ignored", server="FidusSim-Server")
    return terminal


def test_simulator_satisfies_the_terminal_interface() -> None:
    terminal: Terminal = make_simulator()
    assert isinstance(terminal, Terminal)
    assert terminal.name == "simulated"
    assert terminal.thread_safe is True


def test_same_seed_gives_the_same_data_and_another_seed_does_not() -> None:
    first = _logged_in(make_simulator(), LOGIN)
    second = _logged_in(make_simulator(), LOGIN)
    other = _logged_in(make_simulator(seed=8), LOGIN)

    assert first.account_info() == second.account_info()
    assert first.history_deals_get(*EVERYTHING) == second.history_deals_get(*EVERYTHING)
    assert first.positions_get() == second.positions_get()
    assert first.history_deals_get(*EVERYTHING) != other.history_deals_get(*EVERYTHING)


@pytest.mark.parametrize("login", [1, 5_012_345, 87_654_321, 2_100_000_000])
def test_any_login_has_a_deposit_first_and_thirty_days_of_trading(login: int) -> None:
    terminal = _logged_in(make_simulator(), login)
    deals = terminal.history_deals_get(*EVERYTHING)
    info = terminal.account_info()

    assert deals and info is not None
    assert info.login == login
    first = deals[0]
    assert first.type == mt5.DEAL_TYPE_BALANCE
    assert first.profit > 0
    assert first.comment == "Initial deposit"
    assert any(d.type in (mt5.DEAL_TYPE_BUY, mt5.DEAL_TYPE_SELL) for d in deals)
    assert [d.ticket for d in deals] == sorted(d.ticket for d in deals)
    offset = 2 * 3600
    start = HISTORY_END - timedelta(days=30)
    for deal in deals:
        utc = datetime.fromtimestamp(deal.time - offset, UTC)
        assert start <= utc < HISTORY_END
    booked = sum(Decimal(repr(v)) for d in deals for v in (d.profit, d.commission, d.swap, d.fee))
    assert Decimal(repr(info.balance)) == booked


def test_records_mirror_the_package_fields() -> None:
    terminal = _logged_in(make_simulator(), LOGIN)
    deals = terminal.history_deals_get(*EVERYTHING)
    positions = terminal.positions_get()
    info = terminal.account_info()
    tick = terminal.symbol_info_tick("EURUSD")
    terminal_info = terminal.terminal_info()
    assert deals and positions and info and tick and terminal_info

    assert list(deals[0]._asdict()) == [
        "ticket", "order", "time", "time_msc", "type", "entry", "magic", "position_id",
        "reason", "volume", "price", "commission", "swap", "profit", "fee", "symbol",
        "comment", "external_id",
    ]  # fmt: skip
    assert list(positions[0]._asdict())[:6] == [
        "ticket", "time", "time_msc", "time_update", "time_update_msc", "type",
    ]  # fmt: skip
    assert {"login", "balance", "equity", "margin", "margin_free", "margin_level",
            "currency_digits", "server", "currency", "company"} <= set(info._asdict())  # fmt: skip
    assert list(tick._asdict()) == [
        "time", "bid", "ask", "last", "volume", "time_msc", "flags", "volume_real",
    ]  # fmt: skip
    assert terminal_info.build == 4755
    assert terminal.version() == (500, 4755, "01 Jan 2025")


def test_calls_before_initialize_fail_like_the_package() -> None:
    terminal = make_simulator()
    assert terminal.account_info() is None
    assert terminal.last_error()[0] == mt5.RES_E_INTERNAL_FAIL_CONNECT
    assert terminal.initialize()
    assert terminal.account_info() is None
    assert terminal.last_error()[0] == mt5.RES_E_FAIL
    assert terminal.symbol_info_tick("NOPE") is None
    assert terminal.last_error() == (mt5.RES_E_NOT_FOUND, "Terminal: Not found")


def test_history_filter_reads_broker_seconds_inclusively_and_groups() -> None:
    terminal = _logged_in(make_simulator(), LOGIN)
    deals = terminal.history_deals_get(*EVERYTHING)
    assert deals
    target = deals[3]

    exact = terminal.history_deals_get(target.time, target.time)
    gold = terminal.history_deals_get(*EVERYTHING, group="XAU*")
    no_gold = terminal.history_deals_get(*EVERYTHING, group="*,!XAU*")

    assert exact and target in exact
    assert gold and {d.symbol for d in gold} == {"XAUUSD"}
    assert no_gold and "XAUUSD" not in {d.symbol for d in no_gold}


def test_cross_login_reports_another_account() -> None:
    terminal = make_simulator()
    terminal.cross_login(LOGIN, 42)
    _logged_in(terminal, LOGIN)
    info = terminal.account_info()
    assert info is not None and info.login == 42


def test_fail_next_targets_one_call_then_clears() -> None:
    terminal = _logged_in(make_simulator(), LOGIN)
    terminal.fail_next(mt5.RES_E_INTERNAL_FAIL_TIMEOUT, "timeout", function="positions_get")

    assert terminal.account_info() is not None
    assert terminal.positions_get() is None
    assert terminal.last_error() == (mt5.RES_E_INTERNAL_FAIL_TIMEOUT, "timeout")
    assert terminal.positions_get() is not None
    assert terminal.last_error() == (mt5.RES_S_OK, "Success")


def test_sessions_are_per_thread() -> None:
    terminal = _logged_in(make_simulator(), LOGIN)
    seen: list[Any] = []

    def other_thread() -> None:
        terminal.login(777)
        info = terminal.account_info()
        seen.append(info.login if info else None)

    worker = threading.Thread(target=other_thread)
    worker.start()
    worker.join()
    info = terminal.account_info()
    assert seen == [777]
    assert info is not None and info.login == LOGIN


def test_latency_is_slept_in_every_call_and_overlaps_across_threads() -> None:
    terminal = _logged_in(make_simulator(latency_seconds=0.05), LOGIN)
    started = time.perf_counter()
    terminal.account_info()
    single = time.perf_counter() - started

    threads = [threading.Thread(target=terminal.account_info) for _ in range(10)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    parallel = time.perf_counter() - started

    assert single >= 0.05
    assert parallel < 0.05 * 10 / 2


def test_real_adapter_copies_known_fields_from_the_package(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    RawDeal = namedtuple("RawDeal", ["ticket", "time", "profit", "symbol", "a_future_field"])
    calls: list[tuple[Any, ...]] = []

    def history_deals_get(*args: Any, **kwargs: Any) -> tuple[Any, ...]:
        calls.append((args, kwargs))
        return (RawDeal(5, 1_700_000_000, 12.5, "EURUSD", "ignored"),)

    fake = types.ModuleType("MetaTrader5")
    fake.history_deals_get = history_deals_get  # type: ignore[attr-defined]
    fake.last_error = lambda: (1, "Success")  # type: ignore[attr-defined]
    monkeypatch.setitem(__import__("sys").modules, "MetaTrader5", fake)

    terminal = MetaTrader5Terminal()
    deals = terminal.history_deals_get(100, 200, group="EUR*")

    assert calls == [((100, 200), {"group": "EUR*"})]
    assert deals is not None
    assert deals[0].ticket == 5 and deals[0].profit == 12.5 and deals[0].symbol == "EURUSD"
    assert deals[0].commission == 0.0
    assert terminal.last_error() == (1, "Success")
    assert terminal.thread_safe is False


def test_a_deposits_file_fixes_the_initial_deposit_of_the_logins_it_names(
    tmp_path: Any,
) -> None:
    deposits = tmp_path / "demo_mt5_deposits.json"
    terminal = make_simulator()
    terminal.deposits_file = deposits
    deposits.write_text(json.dumps({str(LOGIN): "400000.00"}), encoding="utf-8")
    named = _logged_in(terminal, LOGIN).history_deals_get(*EVERYTHING)
    balance = [d for d in named if d.type == mt5.DEAL_TYPE_BALANCE]
    assert [(d.profit, d.comment) for d in balance] == [(400000.0, "Initial deposit")]
    other = _logged_in(terminal, LOGIN + 1).history_deals_get(*EVERYTHING)
    plain = _logged_in(make_simulator(), LOGIN + 1).history_deals_get(*EVERYTHING)
    assert other == plain
