"""The worker: a sync pass every `sync_interval_seconds`, the daily lifecycle pass before it,
beside the passes on its own timer the audit relay (`alongside`, so a long pass never delays
it), and a look at the backup schedule every minute (`backend/ops/backup_schedule.py`), until
SIGINT or SIGTERM.

A stop signal lets the running pass (or backup) finish (its leases are released, nothing is
left half written) and ends the wait before the next one; a second signal cancels it: the
sync's accounts are then retried by the next worker once their leases expire, and a cancelled
backup removes its unfinished file, its slot still due.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Awaitable, Callable
from datetime import date
from typing import Any

from backend.services.audit import Actor
from backend.services.contracts import ContractService
from backend.sync.job import SyncReport

logger = logging.getLogger(__name__)


class DailyLifecycle:
    """The money engine's lifecycle pass, at most once per UTC day, from the worker.

    A day whose pass was skipped (another worker held the lease) or failed is tried again at
    the next sync pass; the pass itself is idempotent and catches up, so running it late or
    twice is harmless.
    """

    def __init__(self, contracts: ContractService, *, owner: str) -> None:
        self.contracts = contracts
        self.owner = owner
        self.done_for: date | None = None

    async def run_if_due(self) -> None:
        today = self.contracts.today()
        if self.done_for == today:
            return
        try:
            report = await self.contracts.lifecycle(actor=Actor.system(), owner=self.owner)
        except Exception:
            logger.exception("lifecycle pass failed; retrying at the next sync pass")
            return
        if not report.skipped:
            self.done_for = today
            logger.info("lifecycle pass for %s: %d change(s)", today, report.changes)


class StopSignal:
    """Installs SIGINT/SIGTERM handlers on the running loop for the duration of a `with`."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self) -> None:
        self.event = asyncio.Event()
        self.received = 0
        self._tasks: set[asyncio.Task[Any]] = set()
        self._loop: asyncio.AbstractEventLoop | None = None

    def __enter__(self) -> StopSignal:
        self._loop = asyncio.get_running_loop()
        for sig in self.SIGNALS:
            with contextlib.suppress(NotImplementedError, RuntimeError):
                self._loop.add_signal_handler(sig, self.trigger, sig)
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._loop is not None
        for sig in self.SIGNALS:
            with contextlib.suppress(NotImplementedError, RuntimeError):
                self._loop.remove_signal_handler(sig)

    def guard(self, task: asyncio.Task[Any]) -> None:
        """Cancel `task` on a second signal, until `release(task)`."""
        self._tasks.add(task)

    def release(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)

    def trigger(self, sig: int = signal.SIGTERM) -> None:
        self.received += 1
        if self.received == 1:
            logger.info("%s received: stopping after the current pass",
                        signal.Signals(sig).name)
            self.event.set()
        else:
            running = [task for task in self._tasks if not task.done()]
            if running:
                logger.warning("second stop signal: cancelling the current pass")
            for task in running:
                task.cancel()


async def run_forever(
    run_pass: Callable[[], Awaitable[SyncReport]],
    *,
    interval_seconds: float,
    stop: StopSignal,
    on_report: Callable[[SyncReport], None] | None = None,
    max_passes: int | None = None,
    alongside: Callable[[asyncio.Event], Awaitable[Any]] | None = None,
) -> int:
    """Run passes until stopped; returns how many passes completed.

    The interval is measured from the start of one pass to the start of the next, so a slow
    pass does not push every later one back; a pass longer than the interval is followed
    immediately by the next. `alongside(stop_event)` runs as a task for as long as the passes
    do (the audit relay) and is cancelled when they end.
    """
    companion = (asyncio.ensure_future(alongside(stop.event)) if alongside is not None
                 else None)
    try:
        return await _passes(run_pass, interval_seconds=interval_seconds, stop=stop,
                             on_report=on_report, max_passes=max_passes)
    finally:
        if companion is not None:
            companion.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await companion


async def _passes(
    run_pass: Callable[[], Awaitable[SyncReport]],
    *,
    interval_seconds: float,
    stop: StopSignal,
    on_report: Callable[[SyncReport], None] | None,
    max_passes: int | None,
) -> int:
    loop = asyncio.get_running_loop()
    passes = 0
    while not stop.event.is_set():
        started = loop.time()
        task: asyncio.Task[SyncReport] = asyncio.ensure_future(run_pass())
        stop.guard(task)
        try:
            report = await task
        except asyncio.CancelledError:
            if stop.received > 1:
                break
            raise
        except Exception:
            # One failed pass (e.g. the database briefly down) must not end the worker.
            logger.exception("MT5 sync pass failed; retrying at the next interval")
        else:
            passes += 1
            if on_report is not None:
                on_report(report)
        finally:
            stop.release(task)
        if max_passes is not None and passes >= max_passes:
            break
        delay = max(0.0, interval_seconds - (loop.time() - started))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.event.wait(), timeout=delay)
    return passes


async def run_every(
    tick: Callable[[], Awaitable[object]],
    *,
    every_seconds: float,
    stop: StopSignal,
    what: str,
    max_ticks: int | None = None,
) -> int:
    """Call `tick` every `every_seconds` until stopped (the backup schedule's check); returns
    how many ticks completed. A failed tick is logged and the next one comes as usual."""
    loop = asyncio.get_running_loop()
    ticks = 0
    while not stop.event.is_set():
        started = loop.time()
        task: asyncio.Task[object] = asyncio.ensure_future(tick())
        stop.guard(task)
        try:
            await task
        except asyncio.CancelledError:
            if stop.received > 1:
                break
            raise
        except Exception:
            logger.exception("%s failed; trying again in %g s", what, every_seconds)
        else:
            ticks += 1
        finally:
            stop.release(task)
        if max_ticks is not None and ticks >= max_ticks:
            break
        delay = max(0.0, every_seconds - (loop.time() - started))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.event.wait(), timeout=delay)
    return ticks
