"""`make reconcile`: see `python -m scripts.reconcile --help`.

Exit codes: 0 no breaks, 1 breaks found, 2 error (e.g. the database unavailable).
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from dataclasses import asdict

from backend.errors import NotFound
from backend.ops._cli import CommandRefused, Context, Outcome, base_parser, run_command
from backend.repositories.base import object_id
from backend.services import Services
from backend.settings import Settings

COLUMNS = ("kind", "client", "fund", "account", "amount", "currency", "deal tickets",
           "investment")


def parser() -> argparse.ArgumentParser:
    p = base_parser(
        "make reconcile",
        "Compare MT5 deposits and withdrawals (balance deals stored by the sync) with the "
        "recorded investments, per client and fund; amounts must agree exactly.",
        writes=False,
    )
    p.add_argument("--client", help="only this client (users._id)")
    p.add_argument("--fund", help="only this fund code")
    return p


async def _reconcile(ctx: Context) -> Outcome:
    client_id = None
    if ctx.args.client:
        try:
            client_id = object_id(ctx.args.client, what="client")
        except NotFound as error:
            raise CommandRefused(f"--client {ctx.args.client!r} is not a client id") from error
    with ctx.track("reconciling") as progress:
        found = await Services(ctx.db, ctx.settings).reconciliation.breaks(
            client_id=client_id, fund_code=ctx.args.fund)
        progress(1, 1)
    rows = [[b.kind.value, b.client_name or b.client_id, b.fund_code, b.account_id or "",
             b.amount, b.currency, ", ".join(str(t) for t in b.deal_tickets),
             b.investment_id or ""] for b in found]
    return Outcome(
        title="MT5 reconciliation breaks",
        columns=COLUMNS,
        rows=rows,
        data={"breaks": [asdict(b) for b in found], "total": len(found)},
        findings=bool(found),
        messages=[f"{len(found)} break(s)" if found else
                  "no breaks: every MT5 deposit and withdrawal matches an investment"],
    )


def main(argv: Sequence[str] | None = None, *, settings: Settings | None = None) -> int:
    return run_command(argv, parser=parser(), handler=_reconcile, settings=settings)
