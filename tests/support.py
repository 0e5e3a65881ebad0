"""Helpers shared by the tests: a command recorder, settings for a test database, and a clock
that moves only when a test moves it."""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, ClassVar

from pymongo import monitoring

from backend.services import Services
from backend.settings import Settings

WRITE_COMMANDS = frozenset({"insert", "update", "delete", "findAndModify"})


class CommandRecorder(monitoring.CommandListener):
    """Records the name (and database) of every command the driver sends, to count round trips."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.commands: list[tuple[str, str]] = []
        self.enabled = True

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        if self.enabled and event.command_name not in {"hello", "isMaster", "ping", "endSessions"}:
            with self._lock:
                self.commands.append((event.command_name, event.database_name))

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        pass

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        pass

    def reset(self) -> None:
        with self._lock:
            self.commands.clear()

    def names(self) -> list[str]:
        with self._lock:
            return [name for name, _ in self.commands]

    def count(self, *names: str) -> int:
        wanted = set(names)
        return sum(1 for name in self.names() if not wanted or name in wanted)

    def writes(self) -> int:
        return sum(1 for name in self.names() if name in WRITE_COMMANDS)


def free_port() -> int:
    """A local TCP port nothing listens on (bound, read, released): for a server a test starts,
    or for a connection that must be refused."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def make_settings(uri: str, database: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "fidus_env": "test",
        "mongodb_uri": uri,
        "mongodb_database": database,
        "mongodb_min_pool_size": 0,
        "mongodb_server_selection_timeout_ms": 2000,
        "bcrypt_rounds": 4,
        "jwt_secret": "test-jwt-signing-key-with-enough-length-0123456789",
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


class InspectableServices(Services):
    """The services plus the raw database handle, for tests that inspect what was stored."""

    def __init__(self, db: Any, settings: Settings, **kwargs: Any) -> None:
        super().__init__(db, settings, **kwargs)
        self.db = db
@dataclass(eq=False, slots=True)
class _Sleeper:
    deadline: datetime
    wake: asyncio.Future[None]
    task: asyncio.Task[Any] | None


class ManualClock:
    """Time that passes only when the test says so.

    `now` is a `Clock`; `sleep` stands in for `asyncio.sleep` and returns once the test has
    advanced the clock past its deadline. `advance` wakes every sleep that has come due and
    returns only when each task it woke is asleep on the clock again or finished, so what
    happens at a moment has happened before the test looks (database round trips included).
    """

    _current: ClassVar[ContextVar[ManualClock]] = ContextVar("manual_clock")

    def __init__(self, start: datetime) -> None:
        self._now = start
        self._sleepers: list[_Sleeper] = []
        self._watchers: list[asyncio.Future[None]] = []

    def now(self) -> datetime:
        return self._now

    @property
    def sleeping(self) -> int:
        """How many sleeps are waiting for the clock."""
        return len(self._sleepers)

    async def sleep(self, seconds: float) -> None:
        sleeper = _Sleeper(self._now + timedelta(seconds=seconds),
                           asyncio.get_running_loop().create_future(), asyncio.current_task())
        if sleeper.deadline <= self._now:
            await asyncio.sleep(0)
            return
        self._sleepers.append(sleeper)
        self._changed()
        try:
            await sleeper.wake
        finally:
            if sleeper in self._sleepers:
                self._sleepers.remove(sleeper)
                self._changed()

    async def advance(self, seconds: float) -> None:
        self._now += timedelta(seconds=seconds)
        due = [s for s in self._sleepers if s.deadline <= self._now]
        for sleeper in due:
            self._sleepers.remove(sleeper)
            sleeper.wake.set_result(None)
        for task in {s.task for s in due if s.task is not None}:
            await self.settled(task)

    async def settled(self, task: asyncio.Task[Any]) -> None:
        """Return once `task` is asleep on this clock or finished."""
        while not (task.done() or any(s.task is task for s in self._sleepers)):
            changed = asyncio.get_running_loop().create_future()
            self._watchers.append(changed)

            def on_done(_: object, changed: asyncio.Future[None] = changed) -> None:
                if not changed.done():
                    changed.set_result(None)

            task.add_done_callback(on_done)
            try:
                await changed
            finally:
                task.remove_done_callback(on_done)

    def _changed(self) -> None:
        watchers, self._watchers = self._watchers, []
        for watcher in watchers:
            if not watcher.done():
                watcher.set_result(None)

    @contextmanager
    def in_use(self) -> Iterator[ManualClock]:
        """Make this the clock `ManualClock.current()` answers, for code the test cannot pass
        it to (a migration file's step); tasks started inside the block inherit it."""
        token = self._current.set(self)
        try:
            yield self
        finally:
            self._current.reset(token)

    @classmethod
    def current(cls) -> ManualClock:
        return cls._current.get()
