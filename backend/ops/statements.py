"""`make statements`: see `python -m scripts.statements --help`.

Writes every client's statement for one period under `<dir>/<period>/` (STATEMENTS_DIR, default
var/statements): `<client id>.pdf` and `<client id>.json`, the same documents the statement
routes answer. A file whose content is already there is left alone, so a rerun rewrites only
what changed (a later sync, a payout booked since) and reports the rest as unchanged. Each file
is written beside its place and renamed into it, so a reader never sees half of one.

Exit codes: 0 every statement written or unchanged, 1 a client's statement could not be made
(listed; the others are written), 2 error (e.g. the database unavailable).
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Sequence
from datetime import date
from pathlib import Path

from backend.errors import FidusError
from backend.ops._cli import CommandRefused, Context, Outcome, base_parser, run_command
from backend.reports.statements import statement_pdf, statement_read
from backend.services import Services
from backend.services.statements import parse_period
from backend.settings import Settings

COLUMNS = ("files", "count")


def parser() -> argparse.ArgumentParser:
    result = base_parser(
        "make statements",
        "Write every client's statement (PDF and JSON) for a period under "
        "STATEMENTS_DIR/<period>/; files already holding the same statement are left alone.",
        writes=True,
    )
    result.add_argument("--period", help="a month (2026-10), a quarter (2026-Q3) or a year")
    result.add_argument("--from", dest="start", type=date.fromisoformat,
                        help="first day (with --to), instead of --period")
    result.add_argument("--to", dest="end", type=date.fromisoformat,
                        help="last day (with --from)")
    result.add_argument("--dir", type=Path, default=None,
                        help="where to write (default: STATEMENTS_DIR)")
    return result


def write_if_changed(path: Path, content: bytes) -> bool:
    """Write `content` to `path` unless it already holds exactly that; True when written."""
    if path.is_file() and path.read_bytes() == content:
        return False
    partial = path.with_name(f".{path.name}.partial")
    partial.write_bytes(content)
    os.replace(partial, path)
    return True


async def _statements(ctx: Context) -> Outcome:
    args = ctx.args
    services = Services(ctx.db, ctx.settings)
    try:
        period = parse_period(period=args.period, start=args.start, end=args.end,
                              today=services.statements.today())
    except FidusError as refused:
        raise CommandRefused(refused.message) from refused
    folder = (args.dir or ctx.settings.statements_dir) / period.label
    clients = await services.statements.clients()
    written = unchanged = 0
    failed: list[str] = []
    if not args.dry_run:
        folder.mkdir(parents=True, exist_ok=True)
    with ctx.track(f"statements {period.label}") as progress:
        progress(0, len(clients))
        for done, client in enumerate(clients, start=1):
            assert client.id is not None
            try:
                read = statement_read(await services.statements.statement(client.id, period))
            except FidusError as error:
                failed.append(f"{client.id} ({client.email}): {error.code}: {error.message}")
                progress(done, len(clients))
                continue
            files = ((folder / f"{client.id}.json",
                      (read.model_dump_json(indent=2) + "\n").encode()),
                     (folder / f"{client.id}.pdf", statement_pdf(read)))
            for path, content in files:
                if args.dry_run:
                    continue
                if write_if_changed(path, content):
                    written += 1
                else:
                    unchanged += 1
            progress(done, len(clients))
    return Outcome(
        title=f"Statements {period.label}: {period.start.isoformat()} to "
              f"{period.end.isoformat()}",
        columns=COLUMNS,
        rows=[["clients", len(clients)], ["files written", written],
              ["files unchanged", unchanged], ["clients failed", len(failed)]],
        data={"period": period.label, "start": period.start.isoformat(),
              "end": period.end.isoformat(), "directory": str(folder),
              "clients": len(clients), "written": written, "unchanged": unchanged,
              "failed": failed, "dry_run": bool(args.dry_run)},
        findings=bool(failed),
        messages=[f"not made: {line}" for line in failed]
        + (["dry run: nothing written"] if args.dry_run else [f"in {folder}"]),
    )


def main(argv: Sequence[str] | None = None, *, settings: Settings | None = None) -> int:
    return run_command(argv, parser=parser(), handler=_statements, settings=settings)
