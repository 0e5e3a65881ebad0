"""`make sync` (one pass) and `make worker` (`--loop`): see `python -m scripts.sync --help`.

Exit codes: 0 every account synced, 1 some accounts failed, 2 error (database unavailable, or
the bridge unreachable for every account, in one readable line).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
from collections.abc import Awaitable, Sequence
from typing import Any

import httpx

from backend.bridge import BridgeClient, BridgeUnreachable
from backend.log import configure_logging
from backend.ops._cli import Context, Outcome, base_parser, run_command
from backend.ops.backup_schedule import BackupScheduler, describe_schedule
from backend.services import Services
from backend.services.audit import relay_forever
from backend.settings import Settings
from backend.sync.job import (
    AccountOutcome,
    AccountStatus,
    SyncJob,
    SyncReport,
    bridge_unreachable_everywhere,
)
from backend.sync.scheduler import DailyLifecycle, StopSignal, run_every, run_forever

#: How often the worker looks whether a backup or a restore drill is due.
SCHEDULE_CHECK_SECONDS = 60.0
#: Beyond this many accounts the table shows the failed ones only (the JSON has them all).
TABLE_ROWS = 50
COLUMNS = ("account", "login", "status", "deals fetched", "new deals", "equity", "error")


def parser() -> argparse.ArgumentParser:
    p = base_parser(
        "make sync",
        "Pull every active MT5 account's snapshot and new deals from the MT5 bridge "
        "(MT5_BRIDGE_URL) into the database.",
        writes=False,
    )
    p.add_argument("--loop", action="store_true",
                   help="keep running a pass every SYNC_INTERVAL_SECONDS until SIGINT/SIGTERM")
    p.add_argument("--interval", type=float, default=None,
                   help="seconds between passes with --loop (default SYNC_INTERVAL_SECONDS)")
    p.add_argument("--concurrency", type=int, default=None,
                   help="accounts synced at once (default SYNC_CONCURRENCY)")
    return p


def _row(o: AccountOutcome) -> list[Any]:
    return [o.account_id, o.mt5_login, o.status.value, o.deals_fetched, o.new_deals,
            "" if o.equity is None else o.equity, o.error or ""]


def _outcome_data(o: AccountOutcome) -> dict[str, Any]:
    return {"account_id": o.account_id, "mt5_login": o.mt5_login, "status": o.status.value,
            "deals_fetched": o.deals_fetched, "new_deals": o.new_deals, "equity": o.equity,
            "error": o.error, "fetch_seconds": round(o.fetch_seconds, 4),
            "write_seconds": round(o.write_seconds, 4)}


def summary_line(report: SyncReport) -> str:
    return (f"{len(report.outcomes)} active account(s): {report.count(AccountStatus.OK)} synced, "
            f"{report.count(AccountStatus.FAILED)} failed, "
            f"{report.count(AccountStatus.SKIPPED)} skipped (synced by another worker); "
            f"{report.new_deals} new deal(s)")


def report_outcome(report: SyncReport, *, title: str = "MT5 sync") -> Outcome:
    shown = report.outcomes if len(report.outcomes) <= TABLE_ROWS else report.failed
    messages = [summary_line(report)]
    if not report.outcomes:
        messages.append("no active MT5 account mappings: nothing to sync")
    return Outcome(
        title=title,
        columns=COLUMNS,
        rows=[_row(o) for o in shown],
        data={"accounts": len(report.outcomes), "ok": report.count(AccountStatus.OK),
              "failed": report.count(AccountStatus.FAILED),
              "skipped": report.count(AccountStatus.SKIPPED), "new_deals": report.new_deals,
              "started_at": report.started_at, "finished_at": report.finished_at,
              "outcomes": [_outcome_data(o) for o in report.outcomes]},
        findings=bool(report.failed),
        messages=messages,
    )


def handler(transport: httpx.AsyncBaseTransport | None = None):  # type: ignore[no-untyped-def]
    async def run(ctx: Context) -> Outcome:
        settings = ctx.settings
        args = ctx.args
        configure_logging(level=settings.log_level if args.loop else "WARNING",
                          json=settings.logs_as_json)
        async with BridgeClient.from_settings(settings, transport=transport) as bridge:
            job = SyncJob(ctx.db, settings, bridge, concurrency=args.concurrency)
            if args.loop:
                return await _loop(ctx, job, settings)
            with ctx.track("syncing MT5 accounts") as progress:
                report = await job.run_once(progress=progress)
        if bridge_unreachable_everywhere(report):
            first = report.failed[0].error or ""
            raise BridgeUnreachable(first.split(": ", 1)[-1] + " (every account marked failed)")
        return report_outcome(report)

    return run


async def _loop(ctx: Context, job: SyncJob, settings: Settings) -> Outcome:
    interval = ctx.args.interval or settings.sync_interval_seconds
    last: list[SyncReport] = []

    def show(report: SyncReport) -> None:
        last[:] = [report]
        ctx.console.print(f"[{report.started_at:%Y-%m-%d %H:%M:%S}Z] {summary_line(report)}",
                          highlight=False, markup=False)

    ctx.console.print(f"MT5 sync worker: a pass every {interval:g} s; Ctrl-C or SIGTERM stops",
                      highlight=False, markup=False)
    backups = BackupScheduler(ctx.db, settings)
    if settings.backup_schedule_enabled:
        ctx.console.print(describe_schedule(settings), highlight=False, markup=False)
    daily = DailyLifecycle(Services(ctx.db, settings).contracts,
                           owner=f"worker:{socket.gethostname()}:{os.getpid()}")

    async def run_pass() -> SyncReport:
        await daily.run_if_due()
        return await job.run_once()

    def audit_relay(stop_event: asyncio.Event) -> Awaitable[int]:
        return relay_forever(job.audit, interval_seconds=settings.audit_relay_interval_seconds,
                             stop=stop_event)

    with StopSignal() as stop:
        sync = run_forever(run_pass, interval_seconds=interval, stop=stop, on_report=show,
                           alongside=audit_relay)
        if settings.backup_schedule_enabled:
            passes, _ = await asyncio.gather(sync, run_every(
                backups.tick, every_seconds=SCHEDULE_CHECK_SECONDS, stop=stop,
                what="backup schedule"))
        else:
            passes = await sync
    outcome = report_outcome(last[0], title=f"MT5 sync worker: last of {passes} pass(es)") \
        if last else Outcome("MT5 sync worker", COLUMNS, [], {"passes": 0})
    outcome.data["passes"] = passes
    outcome.findings = False
    outcome.messages.insert(0, f"stopped after {passes} pass(es)")
    return outcome


def main(argv: Sequence[str] | None = None, *, settings: Settings | None = None,
         transport: httpx.AsyncBaseTransport | None = None) -> int:
    return run_command(argv, parser=parser(), handler=handler(transport), settings=settings)
