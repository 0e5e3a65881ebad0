"""The worker loop: passes at the interval, and SIGTERM lets the running pass finish."""

from __future__ import annotations

import asyncio
import os
import signal

from backend.repositories.base import utcnow
from backend.sync.job import SyncReport
from backend.sync.scheduler import StopSignal, run_forever


async def test_sigterm_during_a_pass_lets_it_finish_and_stops_the_loop() -> None:
    finished: list[int] = []

    async def slow_pass() -> SyncReport:
        if not finished:
            os.kill(os.getpid(), signal.SIGTERM)
        await asyncio.sleep(0.05)
        finished.append(1)
        return SyncReport(started_at=utcnow())

    with StopSignal() as stop:
        passes = await asyncio.wait_for(
            run_forever(slow_pass, interval_seconds=3600, stop=stop), timeout=5)
    assert passes == 1 and finished == [1]


async def test_passes_repeat_at_the_interval_and_a_failed_pass_does_not_end_the_loop() -> None:
    calls: list[int] = []

    async def flaky() -> SyncReport:
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("database briefly down")
        return SyncReport(started_at=utcnow())

    with StopSignal() as stop:
        passes = await asyncio.wait_for(
            run_forever(flaky, interval_seconds=0.01, stop=stop, max_passes=2), timeout=5)
    assert passes == 2 and len(calls) == 3
