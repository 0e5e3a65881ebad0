"""The worker: a sync pass every `sync_interval_seconds` until SIGINT or SIGTERM, and beside
the passes, on its own timer, the audit relay (`alongside`), so a long pass never delays it.

A stop signal lets the running pass finish (its leases are released, nothing is left half
written) and ends the wait before the next one; a second signal cancels the pass, whose
accounts are then retried by the next worker once their leases expire.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Awaitable, Callable
from typing import Any

from backend.sync.job import SyncReport

logger = logging.getLogger(__name__)


class StopSignal:
    """Installs SIGINT/SIGTERM handlers on the running loop for the duration of a `with`."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self) -> None:
        self.event = asyncio.Event()
        self.received = 0
        self._task: asyncio.Task[object] | None = None
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

    def guard(self, task: asyncio.Task[object] | None) -> None:
        self._task = task

    def trigger(self, sig: int = signal.SIGTERM) -> None:
        self.received += 1
        if self.received == 1:
            logger.info("%s received: stopping after the current pass",
                        signal.Signals(sig).name)
            self.event.set()
        elif self._task is not None and not self._task.done():
            logger.warning("second stop signal: cancelling the current pass")
            self._task.cancel()


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
            stop.guard(None)
        if max_passes is not None and passes >= max_passes:
            break
        delay = max(0.0, interval_seconds - (loop.time() - started))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.event.wait(), timeout=delay)
    return passes
