"""What every data script shares: arguments, the database, progress, the summary and exit codes.

Exit codes: 0 ok, 1 findings left (problems reported, duplicates found, references broken),
2 error (refused, database unavailable, bad input). A known error prints one readable line and
no traceback; an unexpected one prints its traceback, because that is a bug to report.

Under `--json`, stdout always holds exactly one JSON object, errors included:
`{"ok": false, "exit_code": 2, "error": {"code": ..., "message": ...}}`, with the code `USAGE`
for a command-line mistake (whose usage text still goes to stderr).

Tables stay readable at 80-100 columns: a cell holding a list of ids shows a count and the first
ids only (`--json` carries them all).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import sys
from collections.abc import Awaitable, Callable, Coroutine, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any, NoReturn, Protocol

from bson import Decimal128, ObjectId
from pydantic import ValidationError
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import BulkWriteError, OperationFailure, PyMongoError
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from backend.db.connection import ConnectionManager
from backend.errors import FidusError
from backend.settings import Settings, get_settings

EXIT_OK = 0
EXIT_FINDINGS = 1
EXIT_ERROR = 2

#: How many ids a table cell spells out before it only counts the rest.
TABLE_IDS = 1

#: The name the operator typed (`fidus verify`), shown in usage and help instead of `make ...`.
invoked_as: ContextVar[str | None] = ContextVar("invoked_as", default=None)


class CommandRefused(FidusError):
    """The script will not do what was asked (unsafe, locked, inconsistent input)."""

    code = "REFUSED"


class ProgressSink(Protocol):
    """Told how far a long step has got; `total` is None while unknown."""

    def __call__(self, done: int, total: int | None = None) -> None: ...


def no_progress(done: int, total: int | None = None) -> None:
    return None


@dataclass(slots=True)
class Outcome:
    """What a command did: a summary table for people, `data` for `--json`."""

    title: str
    columns: Sequence[str]
    rows: Sequence[Sequence[Any]]
    data: dict[str, Any]
    findings: bool = False
    messages: list[str] = field(default_factory=list)

    @property
    def exit_code(self) -> int:
        return EXIT_FINDINGS if self.findings else EXIT_OK


@dataclass(slots=True)
class Context:
    args: argparse.Namespace
    settings: Settings
    db: AsyncDatabase[dict[str, Any]]
    console: Console
    _progress: Progress | None = None

    @contextmanager
    def track(self, description: str) -> Iterator[ProgressSink]:
        """A progress bar for one step (silent under `--json`)."""
        if self._progress is None:
            yield no_progress
            return
        progress = self._progress
        task = progress.add_task(description, total=None)

        def update(done: int, total: int | None = None) -> None:
            progress.update(task, completed=done, total=total)

        try:
            yield update
        finally:
            progress.remove_task(task)


Handler = Callable[[Context], Awaitable[Outcome]]


class UsageError(Exception):
    """A command-line mistake, raised instead of argparse's exit when the answer must be JSON."""


class ArgumentParser(argparse.ArgumentParser):
    json_errors = False

    def error(self, message: str) -> NoReturn:
        if self.json_errors:
            self.print_usage(sys.stderr)
            raise UsageError(message)
        super().error(message)


def _wants_json(argv: Sequence[str]) -> bool:
    for arg in argv:
        if arg == "--":
            return False
        # argparse also accepts an unambiguous prefix of an option.
        if len(arg) >= 3 and "--json".startswith(arg):
            return True
    return False


def parse_arguments(parser: argparse.ArgumentParser,
                    argv: Sequence[str] | None) -> argparse.Namespace:
    """`parser.parse_args`; under `--json` a usage error raises UsageError instead of exiting."""
    raw = list(sys.argv[1:] if argv is None else argv)
    name = invoked_as.get()
    if name is not None:
        parser.prog = name
    if isinstance(parser, ArgumentParser):
        parser.json_errors = _wants_json(raw)
    return parser.parse_args(raw)


def error_payload(code: str, message: str) -> dict[str, Any]:
    return {"ok": False, "exit_code": EXIT_ERROR, "error": {"code": code, "message": message}}


def base_parser(prog: str, description: str, *, writes: bool) -> argparse.ArgumentParser:
    parser = ArgumentParser(
        prog=prog,
        description=description,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="exit codes: 0 ok, 1 findings left, 2 error",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    if writes:
        parser.add_argument(
            "--dry-run", action="store_true", help="report what would change, change nothing"
        )
    return parser


def jsonable(value: Any) -> Any:
    """BSON and Python values as plain JSON: ids and money as strings, times in ISO 8601."""
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [jsonable(v) for v in value]
    if isinstance(value, ObjectId | Decimal128 | Decimal):
        return str(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    return value


_ID_LIST = re.compile(r"^[^\s,]+(?:, [^\s,]+)+$")


def fold_ids(ids: Sequence[Any], *, shown: int = TABLE_IDS) -> str:
    """`a (+4 more)`: the first ids and a count of the rest, so an id list never widens a table."""
    values = [str(value) for value in ids]
    if len(values) <= shown:
        return ", ".join(values)
    return f"{', '.join(values[:shown])} (+{len(values) - shown} more)"


def table_cell(value: Any) -> str:
    """One cell as text; a list of ids (or a comma-separated string of them) folded."""
    if isinstance(value, list | tuple | set | frozenset):
        return fold_ids(sorted(value, key=str) if isinstance(value, set | frozenset) else value)
    text = str(value)
    if _ID_LIST.match(text):
        return fold_ids(text.split(", "))
    return text


def _print_outcome(outcome: Outcome, console: Console) -> None:
    for message in outcome.messages:
        console.print(message, highlight=False, markup=False)
    rows = [[table_cell(cell) for cell in row] for row in outcome.rows]
    table = Table(title=outcome.title)
    for index, column in enumerate(outcome.columns):
        cells = [row[index] for row in rows if index < len(row)]
        # Numbers and single ids never break; prose wraps between words, folding only a word
        # too long for the column.
        atomic = all(" " not in cell for cell in cells)
        table.add_column(column, overflow="fold", no_wrap=atomic and bool(cells),
                         justify="right" if cells and all(_is_number(c) for c in cells)
                         else "left")
    for row in rows:
        table.add_row(*row)
    console.print(table)


def _is_number(text: str) -> bool:
    try:
        Decimal(text)
    except ArithmeticError:
        return False
    return bool(text)


def error_line(error: BaseException, limit: int = 500) -> str:
    """One short line: for a bulk write, its first error's message, not the driver's dump of
    every failed document (which can quote client data)."""
    text = str(error)
    if isinstance(error, BulkWriteError):
        errors = (error.details or {}).get("writeErrors") or []
        text = str(errors[0].get("errmsg") or "write refused") if errors else "write refused"
    elif isinstance(error, OperationFailure) and error.details:
        text = str(error.details.get("errmsg") or text)
    return ((text.splitlines() or [""])[0] or type(error).__name__)[:limit]


async def _run(
    handler: Handler, args: argparse.Namespace, settings: Settings, *, show_progress: bool
) -> Outcome:
    err_console = Console(stderr=True)
    async with ConnectionManager.from_settings(settings) as manager:
        if not show_progress:
            return await handler(Context(args, settings, manager.database, err_console))
        progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=err_console,
            transient=True,
        )
        with progress:
            return await handler(Context(args, settings, manager.database, err_console, progress))


def _run_to_completion[T](coro: Coroutine[Any, Any, T]) -> T:
    """`asyncio.run`, also from code that already runs a loop (a notebook, an async test)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coro).result()


def run_command(
    argv: Sequence[str] | None,
    *,
    parser: argparse.ArgumentParser,
    handler: Handler,
    settings: Settings | None = None,
    check: Callable[[argparse.Namespace, Settings], None] | None = None,
) -> int:
    """Parse `argv`, open the database, run `handler`, print the outcome; return the exit code.

    `check` runs before the database is opened (e.g. refusing production).
    """
    try:
        args = parse_arguments(parser, argv)
    except UsageError as error:
        print(json.dumps(error_payload("USAGE", error_line(error))))
        return EXIT_ERROR
    as_json: bool = bool(getattr(args, "json", False))
    out = Console(highlight=False)
    err = Console(stderr=True, highlight=False)
    try:
        resolved = settings if settings is not None else get_settings()
        if check is not None:
            check(args, resolved)
        outcome = _run_to_completion(_run(handler, args, resolved, show_progress=not as_json))
    except (FidusError, PyMongoError, ValidationError, OSError) as error:
        code = error.code if isinstance(error, FidusError) else type(error).__name__
        if as_json:
            print(json.dumps(error_payload(code, error_line(error))))
        else:
            # One line whatever the terminal's width, and the message is text, not markup.
            err.print(f"[bold red]error[/bold red] ({code}): {escape(error_line(error))}",
                      soft_wrap=True)
        return EXIT_ERROR
    except KeyboardInterrupt:
        err.print("interrupted: rerun the same command to finish the job")
        return EXIT_ERROR
    except Exception:  # noqa: BLE001 - an unexpected error is a bug: show it, exit 2, not 1
        err.print_exception()
        return EXIT_ERROR
    if as_json:
        payload = {"ok": outcome.exit_code == EXIT_OK, "exit_code": outcome.exit_code,
                   "title": outcome.title, **jsonable(outcome.data)}
        print(json.dumps(payload, sort_keys=False))
    else:
        _print_outcome(outcome, out)
    return outcome.exit_code


def entry(main: Callable[[Sequence[str] | None], int]) -> None:
    """`if __name__ == "__main__": entry(main)` for the thin scripts."""
    sys.exit(main(sys.argv[1:]))
