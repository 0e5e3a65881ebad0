"""`make lifecycle`: see `python -m scripts.lifecycle --help`.

Exit codes: 0 the pass ran (whether or not anything changed), 1 another pass holds the lease
(nothing was done), 2 error (e.g. the database unavailable).
"""

from __future__ import annotations

import argparse
import os
import socket
from collections.abc import Sequence

from backend.ops._cli import Context, Outcome, base_parser, run_command
from backend.services import Services
from backend.services.audit import Actor
from backend.settings import Settings

COLUMNS = ("transition", "count")


def parser() -> argparse.ArgumentParser:
    return base_parser(
        "make lifecycle",
        "Apply every lifecycle transition that is due today: incubating -> active -> matured "
        "-> closed, schedule items scheduled -> due, schedules and payouts left half-done. "
        "Idempotent; catches up after downtime; one pass at a time (a lease).",
        writes=True,
    )


async def _lifecycle(ctx: Context) -> Outcome:
    services = Services(ctx.db, ctx.settings)
    with ctx.track("applying due transitions") as progress:
        report = await services.contracts.lifecycle(
            actor=Actor.script("lifecycle"),
            owner=f"lifecycle:{socket.gethostname()}:{os.getpid()}")
        progress(1, 1)
    rows: list[list[object]] = [[f"investments -> {state}", count]
                                for state, count in sorted(report.investments_moved.items())]
    rows += [["items scheduled -> due", report.items_due],
             ["schedules built", report.schedules_built],
             ["payouts completed", report.payouts_completed],
             ["performance shares priced", report.shares_priced],
             ["performance shares without gain (cancelled)", report.shares_without_gain],
             ["performance shares awaiting a valuation", report.shares_unpriced]]
    return Outcome(
        title=f"Lifecycle pass for {report.day.isoformat()}",
        columns=COLUMNS,
        rows=rows,
        data={"day": report.day.isoformat(), "skipped": report.skipped,
              "investments_moved": dict(report.investments_moved),
              "items_due": report.items_due, "schedules_built": report.schedules_built,
              "payouts_completed": report.payouts_completed,
              "shares_priced": report.shares_priced,
              "shares_without_gain": report.shares_without_gain,
              "shares_unpriced": report.shares_unpriced, "changes": report.changes},
        findings=report.skipped,
        messages=["another lifecycle pass holds the lease: nothing done" if report.skipped
                  else f"{report.changes} change(s)"],
    )


def main(argv: Sequence[str] | None = None, *, settings: Settings | None = None) -> int:
    return run_command(argv, parser=parser(), handler=_lifecycle, settings=settings)
