"""`make bench`: run every `bench_*.py` module and print one table.

Each module exposes `async def run(args) -> list[Row]`. Figures are measured side by side in
one run and quoted as ratios; the embedded database is too slow at size to time end to end,
so database phases on it are labelled as such.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import pkgutil
import sys

from rich.console import Console
from rich.table import Table

import tests.benchmarks as package
from tests.benchmarks._table import Row


async def _main(selected: list[str]) -> int:
    rows: list[Row] = []
    console = Console()
    names = sorted(m.name for m in pkgutil.iter_modules(package.__path__)
                   if m.name.startswith("bench_"))
    for name in names:
        if selected and not any(s in name for s in selected):
            continue
        console.print(f"[bold]running {name}[/bold]")
        module = importlib.import_module(f"tests.benchmarks.{name}")
        rows.extend(await module.run())
    table = Table(title="Fidus benchmarks")
    for column in ("benchmark", "case", "measure", "value", "ratio", "note"):
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(row.benchmark, row.case, row.measure, row.value, row.ratio, row.note)
    console.print(table)
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(prog="make bench")
    parser.add_argument("only", nargs="*", help="run only benchmarks whose module name contains")
    args = parser.parse_args()
    return asyncio.run(_main(args.only))


if __name__ == "__main__":
    sys.exit(main())
