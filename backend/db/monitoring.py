"""Driver event listeners: connection-pool figures and the last database error, for `/health`
and `/metrics`."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import UTC, datetime

from pymongo import monitoring


@dataclass(frozen=True, slots=True)
class PoolFigures:
    open: int
    in_use: int
    waiting: int
    max: int


@dataclass(frozen=True, slots=True)
class LastError:
    at: datetime
    message: str


class DriverMonitor(monitoring.ConnectionPoolListener, monitoring.CommandListener):
    """Counts pool connections and remembers the last failed command.

    PyMongo calls listeners from whatever thread or task runs the operation, so counters are
    updated under a lock.
    """

    def __init__(self, max_pool_size: int) -> None:
        self._lock = threading.Lock()
        self.max_pool_size = max_pool_size
        self._open = 0
        self._in_use = 0
        self._waiting = 0
        self.commands_total = 0
        self.commands_failed = 0
        self.last_error: LastError | None = None

    def figures(self) -> PoolFigures:
        with self._lock:
            return PoolFigures(
                open=max(self._open, 0),
                in_use=max(self._in_use, 0),
                waiting=max(self._waiting, 0),
                max=self.max_pool_size,
            )

    def record_error(self, message: str) -> None:
        with self._lock:
            self.last_error = LastError(at=datetime.now(UTC), message=message)

    # Connection pool events
    def pool_created(self, event: monitoring.PoolCreatedEvent) -> None:
        pass

    def pool_ready(self, event: monitoring.PoolReadyEvent) -> None:
        pass

    def pool_cleared(self, event: monitoring.PoolClearedEvent) -> None:
        pass

    def pool_closed(self, event: monitoring.PoolClosedEvent) -> None:
        pass

    def connection_created(self, event: monitoring.ConnectionCreatedEvent) -> None:
        with self._lock:
            self._open += 1

    def connection_ready(self, event: monitoring.ConnectionReadyEvent) -> None:
        pass

    def connection_closed(self, event: monitoring.ConnectionClosedEvent) -> None:
        with self._lock:
            self._open -= 1

    def connection_check_out_started(
        self, event: monitoring.ConnectionCheckOutStartedEvent
    ) -> None:
        with self._lock:
            self._waiting += 1

    def connection_check_out_failed(self, event: monitoring.ConnectionCheckOutFailedEvent) -> None:
        with self._lock:
            self._waiting -= 1

    def connection_checked_out(self, event: monitoring.ConnectionCheckedOutEvent) -> None:
        with self._lock:
            self._waiting -= 1
            self._in_use += 1

    def connection_checked_in(self, event: monitoring.ConnectionCheckedInEvent) -> None:
        with self._lock:
            self._in_use -= 1

    # Command events
    def started(self, event: monitoring.CommandStartedEvent) -> None:
        pass

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        with self._lock:
            self.commands_total += 1

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        with self._lock:
            self.commands_total += 1
            self.commands_failed += 1
            self.last_error = LastError(at=datetime.now(UTC), message=_describe(event))


def _describe(event: monitoring.CommandFailedEvent) -> str:
    """The command and the server's error code, never its message: `/health` shows this to
    anyone, and messages can quote document values (a duplicate key's e-mail, say)."""
    failure = event.failure if isinstance(event.failure, dict) else {}
    name = failure.get("codeName") or "error"
    code = failure.get("code")
    return f"{event.command_name} failed: {name}" + (f" ({code})" if code is not None else "")
