"""validate-data --fix on legacy users: batched bulk_write (1,000 a batch) against one update
per document, side by side on the same data, in one run.

It runs on its own in-memory embedded server. That server's write cost grows with collection
size, so absolute documents/second here say little about MongoDB; the write round trips are
exact, and the ratio between the two cases is the figure to read.
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path
from typing import Any

from pymongo import AsyncMongoClient, monitoring

from backend.db.connection import CODEC_OPTIONS
from backend.ops.validate import fix_legacy_users
from tests.benchmarks._embedded import embedded_client
from tests.benchmarks._table import Row
from tests.ops_factories import legacy_user

N = int(os.environ.get("FIDUS_BENCH_MIGRATION_N", "2000"))
INSERT_CHUNK = 250
WRITES = frozenset({"insert", "update", "delete", "findAndModify"})


class _Counter(monitoring.CommandListener):
    def __init__(self) -> None:
        self.writes = 0
        self.total = 0

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        if event.command_name in {"hello", "isMaster", "ping", "endSessions"}:
            return
        self.total += 1
        self.writes += event.command_name in WRITES

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        pass

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        pass


async def _case(client: AsyncMongoClient[dict[str, Any]], counter: _Counter, name: str,
                batch_size: int, backups: Path) -> tuple[float, int, int, int]:
    db = client.get_database(f"bench_migration_{name}", codec_options=CODEC_OPTIONS)
    docs = [legacy_user(i, legacy_type=("client", "manager", "admin")[i % 3]) for i in range(N)]
    for start in range(0, N, INSERT_CHUNK):
        await db["users"].insert_many(docs[start:start + INSERT_CHUNK])
    counter.writes = counter.total = 0
    started = time.perf_counter()
    report = await fix_legacy_users(db, batch_size=batch_size, backup_directory=backups)
    elapsed = time.perf_counter() - started
    writes, total = counter.writes, counter.total
    left = await db["users"].count_documents({"type": {"$exists": True}})
    await client.drop_database(db.name)
    if report.fixed != N or left:
        raise RuntimeError(f"{name}: fixed {report.fixed} of {N}, {left} left")
    return elapsed, writes, total, report.fixed


async def run() -> list[Row]:
    counter = _Counter()
    async with embedded_client(event_listeners=[counter]) as (_, client):
        with tempfile.TemporaryDirectory() as backups:
            batched = await _case(client, counter, "batched", 1000, Path(backups))
            single = await _case(client, counter, "one_by_one", 1, Path(backups))
    rows = []
    note = f"N={N}; embedded server, not MongoDB speed; backup + audit included"
    for label, (elapsed, writes, total, fixed) in (("batched 1,000", batched),
                                                   ("one by one", single)):
        rows.append(Row("migration", label, "docs/s", f"{fixed / elapsed:,.0f}",
                        f"{batched[0] and elapsed / batched[0]:.1f}x time" if label != "batched "
                        "1,000" else "1.0x", note))
        rows.append(Row("migration", label, "write round trips", str(writes),
                        f"{writes / batched[1]:.0f}x" if batched[1] else "",
                        f"{total} commands in all"))
    return rows
