"""Helpers shared by the tests: a command recorder and settings for a test database."""

from __future__ import annotations

import threading
from typing import Any

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
