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

from rich.console import Console, Group
from rich.table import Table
from rich.text import Text

import tests.benchmarks as package
from tests.benchmarks._table import Row


async def _main(selected: list[str]) -> int:
    rows: list[Row] = []
    # Readable at 100 columns: a wider terminal gets its own width, a file or pipe gets 100.
    console = Console() if sys.stdout.isatty() else Console(width=100)
    names = sorted(m.name for m in pkgutil.iter_modules(package.__path__)
                   if m.name.startswith("bench_"))
    for name in names:
        if selected and not any(s in name for s in selected):
            continue
        console.print(f"[bold]running {name}[/bold]")
        module = importlib.import_module(f"tests.benchmarks.{name}")
        rows.extend(await module.run())
    console.print(render(rows))
    return 0


def render(rows: list[Row]) -> Group:
    """One table, readable at 100 columns: a section per benchmark, and each distinct note
    printed once below the table under the number the rows carry."""
    table = Table(title="Fidus benchmarks", title_justify="left", expand=False)
    table.add_column("case", ratio=1, min_width=20)
    table.add_column("measure", max_width=22)
    table.add_column("value", justify="right", no_wrap=True)
    table.add_column("ratio", max_width=16)
    notes: dict[str, int] = {}
    benchmark = None
    for row in rows:
        if row.benchmark != benchmark:
            benchmark = row.benchmark
            table.add_section()
            table.add_row(Text(benchmark, style="bold"), "", "", "")
        ratio = row.ratio
        if row.note:
            ratio = f"{ratio} [{notes.setdefault(row.note, len(notes) + 1)}]".lstrip()
        table.add_row(f"  {row.case}", row.measure, row.value, ratio)
    footnotes = [Text(f"[{n}] {note}") for note, n in notes.items()]
    return Group(table, *footnotes)


def main() -> int:
    parser = argparse.ArgumentParser(prog="make bench")
    parser.add_argument("only", nargs="*", help="run only benchmarks whose module name contains")
    args = parser.parse_args()
    return asyncio.run(_main(args.only))


if __name__ == "__main__":
    sys.exit(main())
