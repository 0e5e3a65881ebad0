"""MT5 sync: 500 simulated accounts behind 20 ms of terminal latency, fetched with concurrency
50 and 1 side by side; then the write phase on a subset, with round trips counted.

The bridge runs in a process of its own and is reached over a socket, as deployed (it sits
beside the terminal on the VPS), so the figures are the sync's own: the bridge's CPU is not
charged to the sync's event loop. The latency is slept in every simulated terminal call, and a
request makes two or three calls (account_info, a login when the thread's session holds another
account, then the read), so one account's fetch costs roughly 100 ms of latency at
concurrency 1. The first sync at concurrency 50 also runs once through httpx's default pool
(httpcore), side by side, to show what the bridge client's aiohttp pool saves.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import httpx
from bson import ObjectId
from pydantic import SecretStr

from backend.bridge import BridgeClient
from backend.db.connection import CODEC_OPTIONS
from backend.db.types import Database
from backend.models.mt5_accounts import Mt5Account, Mt5AccountCreate
from backend.services import Services
from backend.settings import DEV_BRIDGE_API_KEY, Settings
from backend.sync.job import AccountFetch, AccountStatus, SyncJob
from tests.benchmarks._embedded import embedded_client
from tests.benchmarks._table import Row
from tests.bridge_process import bridge_process
from tests.support import CommandRecorder, make_settings
from tests.sync_factories import bridge_client, bridge_transport, simulator

ACCOUNTS = 500
WRITE_SUBSET = 20
WRITE_CONCURRENCY = 4
LATENCY_SECONDS = 0.020
NAME = "mt5 sync"
FIRST_LOGIN = 71_000_000


def _accounts(services: Services, count: int, first_login: int) -> list[Mt5Account]:
    built = []
    for n in range(count):
        account = services.mt5.build(Mt5AccountCreate(
            account_id=f"BENCH-{n:05d}", client_id=ObjectId(), fund_code="CORE",
            mt5_login=first_login + n, broker_code="SIM", server="FidusSim-Server",
            investor_password=SecretStr("bench-investor"), currency="USD"))
        built.append(account.model_copy(update={"id": ObjectId()}))
    return built


@dataclass(frozen=True, slots=True)
class Fetched:
    """One timed fetch phase: wall and this process's CPU seconds, and the deals converted."""

    wall: float
    cpu: float
    deals: int


async def _fetch_phase(job: SyncJob, accounts: list[Mt5Account]) -> Fetched:
    started, cpu = time.perf_counter(), time.process_time()
    results = await job.fetch_all(accounts)
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    failures = [r for r in results if not isinstance(r, AccountFetch)]
    if failures:
        raise RuntimeError(f"{len(failures)} fetches failed, e.g. {failures[0]!r}")
    return Fetched(elapsed, cpu,
                   sum(len(r.deals) for r in results if isinstance(r, AccountFetch)))


def _httpcore_pool(max_connections: int) -> httpx.AsyncHTTPTransport:
    """httpx's default transport, as the bridge client used before."""
    return httpx.AsyncHTTPTransport(limits=httpx.Limits(
        max_connections=max_connections, max_keepalive_connections=max_connections))


async def _fetch_rows(db: Database, settings: Settings, accounts: list[Mt5Account]
                      ) -> list[Row]:
    rows: list[Row] = []
    now = datetime.now(UTC)
    steady = [a.model_copy(update={"deals_synced_to": now - timedelta(minutes=5)})
              for a in accounts]
    cases = (("first sync (30-day history)", accounts),
             ("steady state (new deals only)", steady))
    about = (f"fetch of {ACCOUNTS} accounts from a bridge process, {LATENCY_SECONDS * 1000:.0f} "
             "ms per terminal call; CPU is the sync process's own")
    pools: dict[str, Callable[[], httpx.AsyncBaseTransport | None]] = {
        "aiohttp": lambda: None,  # the bridge client's own
        "httpcore": lambda: _httpcore_pool(100)}
    with bridge_process(FIRST_LOGIN, ACCOUNTS, LATENCY_SECONDS) as url:
        for case, batch in cases:
            timings: dict[tuple[str, int], Fetched] = {}
            runs = [("aiohttp", 50), ("aiohttp", 1)]
            if batch is accounts:
                runs.insert(1, ("httpcore", 50))
            for pool, concurrency in runs:
                async with BridgeClient(url, DEV_BRIDGE_API_KEY, max_connections=100,
                                        transport=pools[pool]()) as bridge:
                    job = SyncJob(db, settings, bridge, concurrency=concurrency)
                    await job.fetch_all(batch[:10])  # connections open before timing
                    timings[pool, concurrency] = await _fetch_phase(job, batch)
            one = timings["aiohttp", 1]
            for (pool, concurrency), fetched in timings.items():
                label = f"{case}, concurrency {concurrency}"
                if pool == "httpcore":
                    label += " through httpx's default pool (httpcore)"
                speedup = one.wall / fetched.wall
                note = f"{about}; {fetched.deals} deals"
                if concurrency == 50 and pool == "aiohttp":
                    note += "; target >= 10x faster than concurrency 1"
                rows.append(Row(
                    NAME, label, "fetch wall time", f"{fetched.wall:.2f} s",
                    "1.0x" if concurrency == 1 else f"{speedup:.1f}x faster", note))
                rows.append(Row(NAME, label, "sync CPU", f"{fetched.cpu:.2f} s",
                                f"{fetched.cpu / timings['aiohttp', 50].cpu:.2f}x aiohttp's"
                                if pool == "httpcore" else ""))
    return rows


async def run() -> list[Row]:
    rows: list[Row] = []
    recorder = CommandRecorder()
    async with embedded_client(event_listeners=[recorder]) as (uri, client):
        db_name = f"fidus_bench_sync_{int(datetime.now(UTC).timestamp())}"
        settings = make_settings(uri, db_name, sync_concurrency=50)
        db = client.get_database(db_name, codec_options=CODEC_OPTIONS)
        services = Services(db, settings)
        accounts = _accounts(services, ACCOUNTS, FIRST_LOGIN)
        rows.extend(await _fetch_rows(db, settings, accounts))

        sim = simulator(latency_seconds=0.0)
        for account in accounts[:WRITE_SUBSET]:
            sim.raw_deals(account.mt5_login)  # generate the histories before timing
        sim.latency_seconds = LATENCY_SECONDS
        async with bridge_client(bridge_transport(sim)) as bridge:
            from backend.db import index_sync
            await index_sync.apply(db, await index_sync.plan(db))
            subset = accounts[:WRITE_SUBSET]
            await db["mt5_accounts"].insert_many(
                [services.mt5.repo.prepare(a) for a in subset])
            # The embedded server drops connections under 50 concurrent writers, so the write
            # phase runs a few accounts at a time there.
            job = SyncJob(db, settings, bridge, concurrency=WRITE_CONCURRENCY)
            passes = []
            for label in ("first sync (full history)", "second sync (nothing new)"):
                recorder.reset()
                started = time.perf_counter()
                report = await job.run_once()
                elapsed = time.perf_counter() - started
                assert report.count(AccountStatus.OK) == WRITE_SUBSET, report.failed[:1]
                commands = recorder.count()
                passes.append((label, elapsed, commands, report))
            for label, elapsed, commands, report in passes:
                per_account = (commands - 1) / WRITE_SUBSET
                write_seconds = sum(o.write_seconds for o in report.outcomes)
                rows.append(Row(
                    NAME, f"{label}, {WRITE_SUBSET} accounts",
                    "round trips per account",
                    f"{per_account:g}", "",
                    f"{commands} commands = 1 account query + {WRITE_SUBSET} x {per_account:g} "
                    f"(lease, renew, deals bulk upsert if any, equity upsert, investments "
                    f"read, one update per investment carried (none here), account update, "
                    f"release); {report.new_deals} new deals"))
                embedded_note = (
                    "EMBEDDED development server (slow at size; a real MongoDB is not): not a "
                    f"figure of the product; write phase on a {WRITE_SUBSET}-account subset, "
                    f"concurrency {WRITE_CONCURRENCY}")
                rows.append(Row(NAME, f"{label}, {WRITE_SUBSET} accounts", "pass wall time",
                                f"{elapsed:.2f} s", "", embedded_note))
                rows.append(Row(NAME, f"{label}, {WRITE_SUBSET} accounts",
                                "write time per account",
                                f"{write_seconds / WRITE_SUBSET * 1000:.0f} ms", "", embedded_note))
    return rows
