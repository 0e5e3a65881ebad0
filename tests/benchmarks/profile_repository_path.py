"""Where the repository path's time goes: pyinstrument over the benchmark's path (prepare,
BSON encode and decode, from_stored) for 30,000 investments, printed as a call tree.

    .venv/bin/python -m tests.benchmarks.profile_repository_path
"""

from __future__ import annotations

import asyncio
import sys

import bson
from pyinstrument import Profiler
from pymongo import AsyncMongoClient

from backend.db.connection import CODEC_OPTIONS
from backend.repositories.investments import InvestmentRepository
from tests.benchmarks import bench_repository_path as bench

DOCUMENTS = 30_000


async def _profile() -> str:
    bench.N = DOCUMENTS
    models = bench._investments()
    # Never connected: only the conversions around the driver run.
    client: AsyncMongoClient[dict[str, object]] = AsyncMongoClient(
        "mongodb://127.0.0.1:1", connect=False)
    repository = InvestmentRepository(client.get_database("profile",
                                                          codec_options=CODEC_OPTIONS))
    profiler = Profiler(interval=0.0005)
    profiler.start()
    for model in models:
        repository._load(bson.decode(bson.encode(repository.prepare(model)),
                                     codec_options=CODEC_OPTIONS))
    profiler.stop()
    await client.close()
    return profiler.output_text(unicode=False, color=False)


def main() -> int:
    print(asyncio.run(_profile()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
