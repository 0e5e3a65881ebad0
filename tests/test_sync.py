"""The MT5 sync pass against the simulated bridge, in-process."""

from __future__ import annotations

import json
import logging
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from bson import Decimal128
from pymongo.asynchronous.database import AsyncDatabase

from backend.funds import CENT
from backend.models.investments import InvestmentRead
from backend.models.mt5_accounts import Mt5Account
from backend.ops.verify import check_money
from backend.repositories.base import utcnow
from backend.services import Services
from backend.settings import Settings
from backend.sync.health import stale_accounts_check
from backend.sync.job import AccountStatus, SnapshotSuperseded, SyncJob
from backend.sync.lease import Leases, account_lease_name
from mt5_bridge_service import SimulatedTerminal, simulated
from mt5_bridge_service import constants as mt5
from tests.factories import ADMIN, investment_create, mt5_create
from tests.support import CommandRecorder, InspectableServices
from tests.sync_factories import (
    approved_client,
    bridge_client,
    bridge_transport,
    down_transport,
    invested_mapping,
    mapping,
    simulator,
)

LOGIN_A, LOGIN_B, LOGIN_C = 61_000_101, 61_000_202, 61_000_303
Db = AsyncDatabase[dict[str, Any]]


@pytest.fixture
def services(synced_db: Db, settings: Settings) -> Services:
    return InspectableServices(synced_db, settings)


@pytest.fixture
def sim(tmp_path: Path) -> SimulatedTerminal:
    # LOGIN_A's deposit is the 10,000 its investment records, so that investment holds every
    # unit of the account and is worth its equity.
    deposits = tmp_path / "deposits.json"
    deposits.write_text(json.dumps({str(LOGIN_A): "10000.00"}), encoding="utf-8")
    return simulator(deposits_file=deposits)


async def run_pass(db: Db, settings: Settings, transport: Any, **options: Any) -> Any:
    async with bridge_client(transport) as client:
        return await SyncJob(db, settings, client, **options).run_once()


async def raw_account(db: Db, account: Mt5Account) -> dict[str, Any]:
    raw = await db["mt5_accounts"].find_one({"_id": account.id})
    assert raw is not None
    return raw


def money(value: Any) -> Decimal:
    assert isinstance(value, Decimal128), value
    return value.to_decimal()


async def written_for(db: Db, account: Mt5Account) -> tuple[int, int]:
    deals = await db["mt5_deals"].count_documents({"mt5_account_id": account.id})
    points = await db["mt5_equity_history"].count_documents({"mt5_account_id": account.id})
    return deals, points


async def test_full_sync_stores_what_the_terminal_holds_and_a_second_pass_adds_nothing(
    synced_db: Db, settings: Settings, services: Services, tmp_path: Path
) -> None:
    # The investment's deposit is the account's deposit: it holds every unit of the account.
    deposits = tmp_path / "deposits.json"
    deposits.write_text(json.dumps({str(LOGIN_A): "25000.00"}), encoding="utf-8")
    sim = simulator(deposits_file=deposits)
    client = await approved_client(services)
    invested = await invested_mapping(services, client, LOGIN_A, Decimal("25000.00"))
    plain = await mapping(services, await approved_client(services), LOGIN_B)
    transport = bridge_transport(sim)

    report = await run_pass(synced_db, settings, transport)

    assert [o.status for o in report.outcomes] == [AccountStatus.OK, AccountStatus.OK]
    for account in (invested, plain):
        raw_deals = sim.raw_deals(account.mt5_login)
        stored = [d async for d in synced_db["mt5_deals"].find({"mt5_login": account.mt5_login})]
        assert sorted(d["ticket"] for d in stored) == sorted(d.ticket for d in raw_deals)
        by_ticket = {d["ticket"]: d for d in stored}
        for deal in raw_deals:
            assert money(by_ticket[deal.ticket]["profit"]) == Decimal(repr(deal.profit)).quantize(
                Decimal("0.01"))
        info = sim._account_info(sim._accounts[account.mt5_login])
        raw = await raw_account(synced_db, account)
        assert raw["sync_status"] == "ok" and raw["sync_error"] is None
        assert money(raw["balance"]) == Decimal(repr(info.balance)).quantize(Decimal("0.01"))
        assert money(raw["equity"]) == Decimal(repr(info.equity)).quantize(Decimal("0.01"))
        assert raw["leverage"] == info.leverage
        assert raw["deals_synced_to"] is not None and raw["last_success_at"] is not None
        assert (await written_for(synced_db, account))[1] == 1
    equity = money((await raw_account(synced_db, invested))["equity"])
    investment = await services.investments.get(invested.investment_id)  # type: ignore[arg-type]
    assert investment.current_value == max(equity, Decimal(0))
    assert investment.gain_amount == equity - Decimal("25000.00")
    assert investment.units == Decimal("25000.00000000") and not investment.awaiting_deposit
    assert report.new_deals == sum(len(sim.raw_deals(a.mt5_login)) for a in (invested, plain))

    before = {a.account_id: await written_for(synced_db, a) for a in (invested, plain)}
    again = await run_pass(synced_db, settings, transport)
    assert [o.status for o in again.outcomes] == [AccountStatus.OK, AccountStatus.OK]
    assert again.new_deals == 0
    assert {a.account_id: await written_for(synced_db, a) for a in (invested, plain)} == before


async def test_round_trips_per_account_do_not_depend_on_the_number_of_deals(
    synced_db: Db, settings: Settings, services: Services, sim: SimulatedTerminal,
    command_recorder: CommandRecorder,
) -> None:
    client = await approved_client(services)
    accounts = [await invested_mapping(services, client, LOGIN_A, Decimal("10000.00")),
                await mapping(services, client, LOGIN_B, fund_code="BALANCE"),
                await mapping(services, client, LOGIN_C, fund_code="DYNAMIC")]
    sim.add_deal(LOGIN_C, profit="5000.00", time=utcnow() - timedelta(days=1))
    async with bridge_client(bridge_transport(sim)) as bridge:
        job = SyncJob(synced_db, settings, bridge)
        counts, deals = [], []
        for account in accounts:
            command_recorder.reset()
            outcome = await job.sync_account(account)
            assert outcome.status is AccountStatus.OK, outcome.error
            counts.append(command_recorder.count())
            deals.append(outcome.new_deals)
        # An account carrying an investment costs the valuation's three reads more (deposit
        # deals, equity history, ledger) and one update per investment.
        assert counts[1] == counts[2] and counts[0] == counts[1] + 3 + 1
        assert len(set(deals)) == 3, deals
        assert counts[1] <= 8, command_recorder.names()

        command_recorder.reset()
        fresh = await job.active_accounts()
        for account in fresh:
            await job.sync_account(account)
    # A pass with nothing new skips only the deals' bulk write.
    assert command_recorder.count() == 1 + sum(counts) - len(accounts)


class DatedBridge:
    """The bridge as seen at a chosen moment: the sync takes its snapshot as of that moment, so
    a test can lay a sync on each of several days (the bridge itself stamps the real time)."""

    def __init__(self, client: Any, as_of: datetime) -> None:
        self.client = client
        self.as_of = as_of

    async def account(self, login: int) -> Any:
        info = await self.client.account(login)
        return info.model_copy(update={"as_of": self.as_of})

    def __getattr__(self, name: str) -> Any:
        return getattr(self.client, name)


async def sync_as_of(db: Db, settings: Settings, sim: SimulatedTerminal, account: Mt5Account,
                     moment: datetime) -> None:
    async with bridge_client(bridge_transport(sim)) as client:
        # The leases keep the real time: their expiry is the database's business.
        job = SyncJob(db, settings, DatedBridge(client, moment),  # type: ignore[arg-type]
                      clock=lambda: moment, leases=Leases(db))
        outcome = await job.sync_account(account)
    assert outcome.status is AccountStatus.OK, outcome.error


def with_equity(sim: SimulatedTerminal, login: int, equity: Decimal, *, on: datetime) -> None:
    """Close a trade whose profit brings the simulated account's equity to `equity`."""
    sim.raw_deals(login)  # the account's history is drawn on first use
    now = Decimal(repr(sim._account_info(sim._accounts[login]).equity)).quantize(CENT)
    sim.add_deal(login, profit=str(equity - now), type=mt5.DEAL_TYPE_SELL,
                 entry=mt5.DEAL_ENTRY_OUT, symbol="EURUSD", volume="1", price="1.1",
                 comment="", time=on)


@pytest.mark.parametrize("deposit_in_the_account", [True, False])
async def test_a_top_up_leaves_the_first_investments_gain_where_it_was(
    synced_db: Db, settings: Settings, services: Services, tmp_path: Path,
    deposit_in_the_account: bool,
) -> None:
    # client1: 80,000 at +1.79 % (81,430.89) at the sync of March 14th; a 20,000 top-up is
    # recorded for March 17th, with its deposit in MT5 by the next sync or not yet.
    deposits = tmp_path / "deposits.json"
    deposits.write_text(json.dumps({str(LOGIN_A): "80000.00"}), encoding="utf-8")
    sim = simulator(deposits_file=deposits)
    client = await approved_client(services)
    account = await invested_mapping(services, client, LOGIN_A, Decimal("80000.00"),
                                     deposit_date=date(2025, 1, 30))
    with_equity(sim, LOGIN_A, Decimal("81430.89"), on=datetime(2025, 3, 10, tzinfo=UTC))
    await sync_as_of(synced_db, settings, sim, account, datetime(2025, 3, 14, 12, tzinfo=UTC))
    first = await services.investments.get(account.investment_id)  # type: ignore[arg-type]
    assert (first.current_value, first.gain_amount, first.return_pct) == (
        Decimal("81430.89"), Decimal("1430.89"), Decimal("1.79"))

    top_up = (await services.investments.create(
        investment_create(client, principal_amount=Decimal("20000.00"),
                          deposit_date=date(2025, 3, 17)), actor=ADMIN)).investment
    assert top_up.mt5_account_id == account.id and top_up.id != account.investment_id
    if deposit_in_the_account:
        sim.add_deal(LOGIN_A, profit="20000.00", time=datetime(2025, 3, 17, 9, tzinfo=UTC))
    await sync_as_of(synced_db, settings, sim, account, datetime(2025, 3, 17, 12, tzinfo=UTC))

    equity = money((await raw_account(synced_db, account))["equity"])
    first = await services.investments.get(account.investment_id)  # type: ignore[arg-type]
    second = await services.investments.get(top_up.id)  # type: ignore[arg-type]
    assert (first.current_value, first.gain_amount) == (Decimal("81430.89"), Decimal("1430.89"))
    assert (second.current_value, second.gain_amount) == (Decimal("20000.00"), Decimal("0.00"))
    assert first.units == Decimal("80000.00000000") and first.awaiting_deposit is False
    read = InvestmentRead.model_validate(second).model_dump(mode="json")
    if deposit_in_the_account:
        assert equity == Decimal("101430.89")
        # Bought at the close of the 14th: 20,000 / (81,430.89 / 80,000) units.
        assert second.units == Decimal("19648.56334002")
        assert read["awaiting_deposit"] is False
    else:
        assert equity == Decimal("81430.89")
        assert second.units == 0
        assert read["awaiting_deposit"] is True
    assert first.performance_updated_at == second.performance_updated_at is not None
    money_check = await check_money(synced_db)
    assert money_check.ok and money_check.checked == 1, money_check


async def test_a_crossed_terminal_is_refused_logged_and_nothing_written_for_it(
    synced_db: Db, settings: Settings, services: Services, sim: SimulatedTerminal,
    caplog: pytest.LogCaptureFixture,
) -> None:
    client = await approved_client(services)
    crossed = await invested_mapping(services, client, LOGIN_A, Decimal("10000.00"))
    healthy = await mapping(services, client, LOGIN_B, fund_code="BALANCE")
    sim.cross_login(LOGIN_A, LOGIN_C)
    transport = bridge_transport(sim)
    before = await services.investments.get(crossed.investment_id)  # type: ignore[arg-type]

    with caplog.at_level(logging.ERROR):
        report = await run_pass(synced_db, settings, transport)

    outcomes = {o.account_id: o for o in report.outcomes}
    assert outcomes[crossed.account_id].status is AccountStatus.FAILED
    assert outcomes[healthy.account_id].status is AccountStatus.OK
    raw = await raw_account(synced_db, crossed)
    assert raw["sync_status"] == "failed"
    assert raw["sync_error"].startswith("TERMINAL_LOGIN_MISMATCH:")
    assert raw["balance"] is None and raw["deals_synced_to"] is None
    assert raw["last_success_at"] is None and raw["last_sync_at"] is not None
    assert await written_for(synced_db, crossed) == (0, 0)
    assert await synced_db["mt5_deals"].count_documents({"mt5_login": LOGIN_C}) == 0
    investment = await services.investments.get(crossed.investment_id)  # type: ignore[arg-type]
    assert investment == before
    assert any("TERMINAL_LOGIN_MISMATCH" in r.getMessage() and crossed.account_id
               in r.getMessage() for r in caplog.records)
    # The bridge logged the refusal too, with both logins.
    assert any("login mismatch" in r.getMessage().lower() for r in caplog.records)

    sim.cross_login(LOGIN_A, None)
    recovered = await run_pass(synced_db, settings, transport)
    assert all(o.status is AccountStatus.OK for o in recovered.outcomes)
    assert (await raw_account(synced_db, crossed))["sync_error"] is None


async def test_an_account_on_another_server_than_the_mapping_says_is_refused(
    synced_db: Db, settings: Settings, services: Services, sim: SimulatedTerminal,
) -> None:
    client = await approved_client(services)
    account = await invested_mapping(services, client, LOGIN_A, Decimal("10000.00"))
    await services.db["mt5_accounts"].update_one({"_id": account.id},
                                                  {"$set": {"server": "FidusSim-Server2"}})
    before = await services.investments.get(account.investment_id)  # type: ignore[arg-type]

    report = await run_pass(synced_db, settings, bridge_transport(sim))

    assert report.outcomes[0].status is AccountStatus.FAILED
    raw = await raw_account(synced_db, account)
    assert raw["sync_error"].startswith("SYNC_DATA_INVALID:")
    assert "'FidusSim-Server'" in raw["sync_error"] and "'FidusSim-Server2'" in raw["sync_error"]
    assert raw["equity"] is None and raw["deals_synced_to"] is None
    assert await written_for(synced_db, account) == (0, 0)
    assert await services.investments.get(account.investment_id) == before  # type: ignore[arg-type]


async def test_the_same_login_at_two_brokers_keeps_two_deal_histories(
    synced_db: Db, settings: Settings, services: Services, sim: SimulatedTerminal,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    client = await approved_client(services)
    here = await mapping(services, client, LOGIN_A)
    there = await services.mt5.create_mapping(mt5_create(
        client, mt5_login=LOGIN_A, server="OtherBroker-Live", fund_code="BALANCE"), actor=ADMIN)
    async with bridge_client(bridge_transport(sim)) as bridge:
        assert (await SyncJob(synced_db, settings, bridge).sync_account(here)).status \
            is AccountStatus.OK
    # The other broker's terminal numbers its deals the same way.
    monkeypatch.setattr(simulated, "SIMULATED_SERVER", "OtherBroker-Live")
    async with bridge_client(bridge_transport(simulator())) as bridge:
        outcome = await SyncJob(synced_db, settings, bridge).sync_account(there)
    assert outcome.status is AccountStatus.OK, outcome.error
    tickets = sorted(d.ticket for d in sim.raw_deals(LOGIN_A))
    assert outcome.new_deals == len(tickets)
    for account in (here, there):
        stored = [d["ticket"] async for d in synced_db["mt5_deals"].find(
            {"mt5_account_id": account.id})]
        assert sorted(stored) == tickets


async def test_bridge_down_marks_accounts_failed_writes_nothing_and_the_next_pass_recovers(
    synced_db: Db, settings: Settings, services: Services, sim: SimulatedTerminal
) -> None:
    client = await approved_client(services)
    account = await invested_mapping(services, client, LOGIN_A, Decimal("10000.00"))
    other = await mapping(services, client, LOGIN_B, fund_code="BALANCE")

    report = await run_pass(synced_db, settings, down_transport())

    assert [o.status for o in report.outcomes] == [AccountStatus.FAILED] * 2
    for each in (account, other):
        raw = await raw_account(synced_db, each)
        assert raw["sync_status"] == "failed"
        assert raw["sync_error"].startswith("BRIDGE_UNREACHABLE:")
        assert "Connection refused" in raw["sync_error"]
        assert raw["equity"] is None and raw["deals_synced_to"] is None
    assert await synced_db["mt5_deals"].count_documents({}) == 0
    assert await synced_db["mt5_equity_history"].count_documents({}) == 0
    assert await synced_db["locks"].count_documents({}) == 0, "leases are released"

    recovered = await run_pass(synced_db, settings, bridge_transport(sim))
    assert [o.status for o in recovered.outcomes] == [AccountStatus.OK] * 2
    assert await synced_db["mt5_deals"].count_documents({"mt5_login": LOGIN_A}) == len(
        sim.raw_deals(LOGIN_A))


async def test_terminal_unavailable_after_a_good_sync_keeps_the_last_good_snapshot(
    synced_db: Db, settings: Settings, services: Services, sim: SimulatedTerminal
) -> None:
    account = await mapping(services, await approved_client(services), LOGIN_A)
    transport = bridge_transport(sim)
    await run_pass(synced_db, settings, transport)
    good = await raw_account(synced_db, account)

    sim.set_unavailable(True)
    report = await run_pass(synced_db, settings, transport)
    after = await raw_account(synced_db, account)
    assert report.outcomes[0].status is AccountStatus.FAILED
    assert after["sync_error"].startswith("TERMINAL_UNAVAILABLE:")
    unchanged = ("equity", "balance", "deals_synced_to", "last_success_at", "snapshot_at")
    assert {k: after[k] for k in unchanged} == {k: good[k] for k in unchanged}
    assert after["last_sync_at"] > good["last_sync_at"]

    sim.set_unavailable(False)
    assert (await run_pass(synced_db, settings, transport)).outcomes[0].status is AccountStatus.OK


async def test_a_failure_part_way_through_the_writes_does_not_move_the_high_water_mark(
    synced_db: Db, settings: Settings, services: Services, sim: SimulatedTerminal,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    account = await invested_mapping(services, await approved_client(services), LOGIN_A,
                                     Decimal("10000.00"))
    transport = bridge_transport(sim)
    async with bridge_client(transport) as bridge:
        job = SyncJob(synced_db, settings, bridge)

        async def broken(*args: Any, **kwargs: Any) -> None:
            raise RuntimeError("investments write failed")

        monkeypatch.setattr(job.investments, "update_performance", broken)
        outcome = await job.sync_account(account)
    assert outcome.status is AccountStatus.FAILED
    raw = await raw_account(synced_db, account)
    assert raw["sync_status"] == "failed" and "investments write failed" in raw["sync_error"]
    assert raw["deals_synced_to"] is None and raw["equity"] is None
    stored = len(sim.raw_deals(LOGIN_A))
    assert await written_for(synced_db, account) == (stored, 1), "the idempotent writes before"

    report = await run_pass(synced_db, settings, transport)
    assert report.outcomes[0].status is AccountStatus.OK
    assert report.outcomes[0].new_deals == 0, "the replay found every deal already stored"
    assert await written_for(synced_db, account) == (stored, 1)
    raw = await raw_account(synced_db, account)
    assert raw["sync_status"] == "ok" and raw["deals_synced_to"] is not None
    investment = await services.investments.get(account.investment_id)  # type: ignore[arg-type]
    assert investment.current_value == money(raw["equity"])


async def test_a_deal_booked_late_inside_the_overlap_is_stored_once(
    synced_db: Db, settings: Settings, services: Services, sim: SimulatedTerminal
) -> None:
    account = await mapping(services, await approved_client(services), LOGIN_A)
    transport = bridge_transport(sim)
    await run_pass(synced_db, settings, transport)
    mark = (await raw_account(synced_db, account))["deals_synced_to"]
    sim.add_deal(LOGIN_A, profit="1234.56", time=mark - timedelta(minutes=5), comment="Late")

    first = await run_pass(synced_db, settings, transport)
    second = await run_pass(synced_db, settings, transport)
    assert first.new_deals == 1 and second.new_deals == 0
    late = await synced_db["mt5_deals"].find_one({"mt5_login": LOGIN_A, "comment": "Late"})
    assert late is not None and money(late["profit"]) == Decimal("1234.56")
    assert late["deal_type"] == "balance" and late["symbol"] is None


async def test_an_account_leased_by_another_worker_is_skipped_until_the_lease_expires(
    synced_db: Db, settings: Settings, services: Services, sim: SimulatedTerminal
) -> None:
    account = await mapping(services, await approved_client(services), LOGIN_A)
    other = Leases(synced_db, owner="other-host:1:abc")
    assert await other.acquire(account_lease_name(account.id), seconds=60)
    transport = bridge_transport(sim)

    report = await run_pass(synced_db, settings, transport)
    assert report.outcomes[0].status is AccountStatus.SKIPPED
    assert (await raw_account(synced_db, account))["sync_status"] == "never_synced"
    assert await written_for(synced_db, account) == (0, 0)

    later = lambda: utcnow() + timedelta(seconds=61)  # noqa: E731
    report = await run_pass(synced_db, settings, transport, clock=later)
    assert report.outcomes[0].status is AccountStatus.OK
    assert await synced_db["locks"].count_documents({}) == 0


async def test_leases_exclude_a_second_owner_and_let_the_first_renew(synced_db: Db) -> None:
    first, second = Leases(synced_db, owner="a:1:x"), Leases(synced_db, owner="b:2:y")
    name = "sync:mt5:test"
    assert await first.acquire(name, seconds=30)
    assert not await second.acquire(name, seconds=30)
    assert await first.acquire(name, seconds=30)
    await second.release(name)
    assert not await second.acquire(name, seconds=30), "only the owner releases"
    await first.release(name)
    assert await second.acquire(name, seconds=30)


async def test_renewal_never_recreates_a_lease_taken_and_released_by_another(
    synced_db: Db,
) -> None:
    now = [utcnow()]
    first = Leases(synced_db, owner="a:1:x", clock=lambda: now[0])
    second = Leases(synced_db, owner="b:2:y", clock=lambda: now[0])
    assert await first.acquire("sync:mt5:test", seconds=10)
    assert await first.renew("sync:mt5:test", seconds=10)
    now[0] += timedelta(seconds=11)
    assert await second.acquire("sync:mt5:test", seconds=10)
    assert not await first.renew("sync:mt5:test", seconds=10)
    await second.release("sync:mt5:test")
    assert not await first.renew("sync:mt5:test", seconds=10)
    assert await synced_db["locks"].count_documents({}) == 0


async def test_a_worker_whose_lease_was_lost_during_the_fetch_writes_nothing(
    synced_db: Db, settings: Settings, services: Services, sim: SimulatedTerminal,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    account = await invested_mapping(services, await approved_client(services), LOGIN_A,
                                     Decimal("10000.00"))
    now = [utcnow()]
    clock = lambda: now[0]  # noqa: E731
    async with bridge_client(bridge_transport(sim)) as bridge:
        slow = SyncJob(synced_db, settings, bridge, clock=clock,
                       leases=Leases(synced_db, owner="slow:1:a", clock=clock))
        other = SyncJob(synced_db, settings, bridge, clock=clock,
                        leases=Leases(synced_db, owner="other:2:b", clock=clock))
        fetch = slow.fetch

        async def outlived(target: Mt5Account) -> Any:
            fetched = await fetch(target)
            # The lease expires; another worker syncs the account to the end and releases it.
            now[0] += timedelta(seconds=settings.sync_lease_seconds + 1)
            assert (await other.sync_account(target)).status is AccountStatus.OK
            newer.append(await raw_account(synced_db, target))
            return replace(fetched, info=fetched.info.model_copy(
                update={"equity": Decimal("1.00"), "balance": Decimal("1.00")}))

        newer: list[dict[str, Any]] = []
        monkeypatch.setattr(slow, "fetch", outlived)
        outcome = await slow.sync_account(account)
    assert outcome.status is AccountStatus.SKIPPED
    assert await raw_account(synced_db, account) == newer[0], "the other worker's pass stands"
    investment = await services.investments.get(account.investment_id)  # type: ignore[arg-type]
    assert investment.current_value == money(newer[0]["equity"]) != Decimal("1.00")
    assert await synced_db["locks"].count_documents({}) == 0


async def test_an_older_snapshot_is_never_written_over_a_newer_one(
    synced_db: Db, settings: Settings, services: Services, sim: SimulatedTerminal,
) -> None:
    account = await invested_mapping(services, await approved_client(services), LOGIN_A,
                                     Decimal("10000.00"))
    now = [utcnow()]
    async with bridge_client(bridge_transport(sim)) as bridge:
        job = SyncJob(synced_db, settings, bridge, clock=lambda: now[0])
        older = await job.fetch(account)
        now[0] += timedelta(minutes=5)
        assert (await job.sync_account(account)).status is AccountStatus.OK
        stored = await raw_account(synced_db, account)
        point = await synced_db["mt5_equity_history"].find_one({"mt5_account_id": account.id})
        valued = await services.investments.get(account.investment_id)  # type: ignore[arg-type]
        stale = replace(older, info=older.info.model_copy(update={"equity": Decimal("1.00")}))
        with pytest.raises(SnapshotSuperseded):
            await job.write(stale)
        # The equity point of another day is new, so only the later writes are refused.
        with pytest.raises(SnapshotSuperseded):
            await job.write(replace(stale, info=stale.info.model_copy(
                update={"as_of": stale.info.as_of - timedelta(days=3)})))
    assert await raw_account(synced_db, account) == stored
    assert await synced_db["mt5_equity_history"].find_one(
        {"mt5_account_id": account.id, "day": point["day"]}) == point
    assert await services.investments.get(account.investment_id) == valued  # type: ignore[arg-type]


async def test_stale_accounts_make_health_degraded_listed_by_account_id(
    synced_db: Db, settings: Settings, services: Services, sim: SimulatedTerminal
) -> None:
    client = await approved_client(services)
    account = await mapping(services, client, LOGIN_A)
    retired = await mapping(services, client, LOGIN_B, fund_code="BALANCE")
    await services.db["mt5_accounts"].update_one({"_id": retired.id},
                                                  {"$set": {"is_active": False}})
    window = timedelta(minutes=settings.sync_stale_after_minutes, seconds=1)
    check = stale_accounts_check(settings)
    assert await check(synced_db) == [], "a mapping just created has not had its chance yet"
    never_synced = stale_accounts_check(settings, clock=lambda: utcnow() + window)
    reasons = await never_synced(synced_db)
    assert len(reasons) == 1 and account.account_id in reasons[0]
    assert retired.account_id not in reasons[0]

    await run_pass(synced_db, settings, bridge_transport(sim))
    assert await check(synced_db) == []
    later = stale_accounts_check(settings, clock=lambda: utcnow() + window)
    assert account.account_id in (await later(synced_db))[0]
