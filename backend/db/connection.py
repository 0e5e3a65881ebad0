"""The connection manager: one per process, opened and closed by the FastAPI lifespan or a
script's `async with`.

It owns the `AsyncMongoClient` (pool sizes and timeouts from settings), connects with a
bounded number of retries on connection-class errors only, starts the embedded server when
development or tests run without `MONGODB_URI`, and reports health without ever raising.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, Literal, Self
from urllib.parse import unquote, urlsplit

from bson.codec_options import CodecOptions
from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import (
    AutoReconnect,
    ConfigurationError,
    ConnectionFailure,
    NetworkTimeout,
    PyMongoError,
    ServerSelectionTimeoutError,
)
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    RetryError,
    retry_if_exception_type,
    stop_after_attempt,
    wait_exponential_jitter,
)

from backend.db.embedded import EmbeddedMongoServer
from backend.db.monitoring import DriverMonitor
from backend.errors import DatabaseUnavailable
from backend.settings import Environment, Settings, SettingsProblem, uri_tls_problems

logger = logging.getLogger(__name__)

#: The errors that mean "the server could not be reached", the only ones worth retrying.
CONNECTION_ERRORS: tuple[type[BaseException], ...] = (
    ServerSelectionTimeoutError,
    AutoReconnect,
    NetworkTimeout,
    ConnectionFailure,
)

#: The root of every driver error: the API answers one that escaped the repositories' mapping
#: with 503 (`backend/api/errors.py`) without importing the driver itself.
DriverError = PyMongoError

CODEC_OPTIONS: CodecOptions[dict[str, Any]] = CodecOptions(tz_aware=True, tzinfo=UTC)

HealthStatus = Literal["healthy", "degraded", "unhealthy"]
#: A check that returns the reasons (possibly none) the system is degraded.
DegradedCheck = Callable[[AsyncDatabase[dict[str, Any]]], Awaitable[list[str]]]
#: A section of the report (e.g. "backups": the last good backup and drill) and the reasons,
#: possibly none, it makes the system degraded.
HealthSection = Callable[[AsyncDatabase[dict[str, Any]]],
                         Awaitable[tuple[dict[str, Any], list[str]]]]

SLOW_PING_MS = 1000.0


@dataclass(slots=True)
class HealthReport:
    status: HealthStatus
    environment: str
    database: str
    embedded: bool
    ping_ms: float | None = None
    server_version: str | None = None
    collections: int | None = None
    objects: int | None = None
    data_size_bytes: int | None = None
    storage_size_bytes: int | None = None
    indexes: int | None = None
    index_size_bytes: int | None = None
    pool: dict[str, int] = field(default_factory=dict)
    last_error_at: datetime | None = None
    last_error: str | None = None
    reasons: list[str] = field(default_factory=list)
    checked_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    #: Named sections from `ConnectionManager.health_sections`, shown as top-level keys.
    sections: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        for key in ("last_error_at", "checked_at"):
            if data[key] is not None:
                data[key] = data[key].isoformat()
        sections = data.pop("sections")
        data.update({name: value for name, value in sections.items() if name not in data})
        return data


class ConnectionManager:
    """Holds the process's database client.

    Only connecting and read-only health commands are retried here. Writes are left to the
    driver's own retryable-writes protocol (one retry, with a transaction number the server uses
    to deduplicate); retrying a non-idempotent write such as an insert or `$inc` blindly from
    application code could apply it twice when the first attempt reached the server and only
    the reply was lost.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        sleep: Callable[[float], Awaitable[None]] | None = None,
        embedded_server: EmbeddedMongoServer | None = None,
        event_listeners: list[Any] | None = None,
    ) -> None:
        self._extra_listeners = list(event_listeners or [])
        self.settings = settings
        self._sleep = sleep or asyncio.sleep
        self._embedded = embedded_server
        self._owns_embedded = False
        self._client: AsyncMongoClient[dict[str, Any]] | None = None
        self.monitor = DriverMonitor(settings.mongodb_max_pool_size)
        self.degraded_checks: list[DegradedCheck] = []
        self.health_sections: dict[str, HealthSection] = {}

    @classmethod
    def from_settings(cls, settings: Settings) -> Self:
        return cls(settings)

    @property
    def client(self) -> AsyncMongoClient[dict[str, Any]]:
        if self._client is None:
            raise DatabaseUnavailable("the database connection is not open")
        return self._client

    @property
    def database(self) -> AsyncDatabase[dict[str, Any]]:
        return self.client.get_database(self.settings.database_name, codec_options=CODEC_OPTIONS)

    @property
    def connected(self) -> bool:
        return self._client is not None

    @property
    def embedded(self) -> bool:
        return self._embedded is not None

    def _resolve_uri(self) -> str:
        if self.settings.mongodb_uri is not None:
            return self.settings.mongodb_uri.get_secret_value()
        if self.settings.is_production:
            raise SettingsProblem("MONGODB_URI is required in production and staging")
        if self._embedded is None:
            persistent = self.settings.fidus_env is Environment.DEVELOPMENT
            self._embedded = EmbeddedMongoServer(
                path=self.settings.embedded_db_path if persistent else None
            )
            self._owns_embedded = True
        uri = self._embedded.start()
        where = (
            f"persisted in {self._embedded.persistent_path}"
            if self._embedded.persistent_path
            else "in memory"
        )
        logger.warning(
            "No MONGODB_URI: using the embedded development database at %s (%s); "
            "production needs MONGODB_URI",
            uri,
            where,
        )
        return uri

    def _build_client(self, uri: str) -> AsyncMongoClient[dict[str, Any]]:
        s = self.settings
        problems = uri_tls_problems(uri, production=s.is_production)
        if problems:
            raise SettingsProblem("; ".join(problems))
        options: dict[str, Any] = {}
        if uri.startswith("mongodb+srv://"):
            options["tls"] = True
        try:
            return self._client_for(uri, options)
        except (ConfigurationError, ValueError, TypeError) as error:
            raise SettingsProblem(f"MONGODB_URI cannot be used: {_without_password(error, uri)}"
                                  ) from None

    def _client_for(self, uri: str, options: dict[str, Any]) -> AsyncMongoClient[dict[str, Any]]:
        s = self.settings
        return AsyncMongoClient(
            uri,
            appname=s.mongodb_app_name,
            minPoolSize=s.mongodb_min_pool_size,
            maxPoolSize=s.mongodb_max_pool_size,
            connectTimeoutMS=s.mongodb_connect_timeout_ms,
            serverSelectionTimeoutMS=s.mongodb_server_selection_timeout_ms,
            socketTimeoutMS=s.mongodb_socket_timeout_ms,
            retryWrites=True,
            retryReads=True,
            tz_aware=True,
            tzinfo=UTC,
            event_listeners=[self.monitor, *self._extra_listeners],
            **options,
        )

    def _log_attempt(self, state: RetryCallState) -> None:
        error = state.outcome.exception() if state.outcome else None
        wait = state.next_action.sleep if state.next_action else 0.0
        logger.warning(
            "database connection attempt %d of %d failed (%s); retrying in %.2fs",
            state.attempt_number,
            self.settings.mongodb_connect_attempts,
            _first_line(error),
            wait,
        )

    async def connect(self) -> None:
        """Open the client and prove the server answers, or raise `DatabaseUnavailable`."""
        uri = self._resolve_uri()
        self._client = self._build_client(uri)
        attempts = self.settings.mongodb_connect_attempts
        retrying = AsyncRetrying(
            stop=stop_after_attempt(attempts),
            wait=wait_exponential_jitter(multiplier=0.5, max=8.0, jitter=0.5),
            retry=retry_if_exception_type(CONNECTION_ERRORS),
            sleep=self._sleep,
            before_sleep=self._log_attempt,
            reraise=False,
        )
        try:
            async for attempt in retrying:
                with attempt:
                    logger.info(
                        "connecting to the database (attempt %d of %d)",
                        attempt.retry_state.attempt_number,
                        attempts,
                    )
                    await self._client.admin.command("ping")
        except RetryError as exhausted:
            cause = exhausted.last_attempt.exception()
            await self.close()
            self.monitor.record_error(
                f"database unreachable ({error_class(cause) if cause else 'unknown'})")
            raise DatabaseUnavailable(
                f"database unreachable after {attempts} attempts: {_first_line(cause)}",
                details={"attempts": attempts},
            ) from cause
        except PyMongoError as error:
            await self.close()
            raise DatabaseUnavailable(
                f"database refused the connection: {_first_line(error)}"
            ) from error
        logger.info("connected to database %s", self.settings.database_name)

    async def close(self) -> None:
        if self._client is not None:
            await self._client.close()
            self._client = None
        if self._embedded is not None and self._owns_embedded:
            self._embedded.close()
            self._embedded = None
            self._owns_embedded = False

    async def __aenter__(self) -> Self:
        await self.connect()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def _fill_figures(
        self, db: AsyncDatabase[dict[str, Any]], report: HealthReport
    ) -> None:
        """Server version, dbStats and the degraded checks; a failure here degrades, since the
        database answered the ping."""
        try:
            build = await db.command("buildInfo")
            report.server_version = str(build.get("version"))
            stats = await db.command("dbStats")
            report.collections = int(stats.get("collections", 0))
            report.objects = int(stats.get("objects", 0))
            report.data_size_bytes = int(stats.get("dataSize", 0))
            report.storage_size_bytes = int(stats.get("storageSize", 0))
            report.indexes = int(stats.get("indexes", 0))
            report.index_size_bytes = int(stats.get("indexSize", 0))
        except Exception as error:  # noqa: BLE001 - health must report, never raise
            logger.warning("health: database statistics unavailable: %s", _first_line(error))
            report.reasons.append(f"database statistics unavailable ({error_class(error)})")
        for check in self.degraded_checks:
            try:
                report.reasons.extend(await check(db))
            except Exception as error:  # noqa: BLE001
                logger.warning("health: check %s failed: %s",
                               getattr(check, "__name__", "check"), _first_line(error))
                report.reasons.append(f"health check failed ({error_class(error)})")
        for name, section in self.health_sections.items():
            try:
                report.sections[name], reasons = await section(db)
                report.reasons.extend(reasons)
            except Exception as error:  # noqa: BLE001
                logger.warning("health: section %s failed: %s", name, _first_line(error))
                report.reasons.append(f"health check {name} failed ({error_class(error)})")

    async def health(self) -> HealthReport:
        """A snapshot of the database's health. Never raises: a failed ping is `unhealthy`."""
        report = HealthReport(
            status="healthy",
            environment=self.settings.fidus_env.value,
            database=self.settings.database_name,
            embedded=self.embedded,
        )
        try:
            db = self.database
            started = time.perf_counter()
            await db.command("ping")
            report.ping_ms = round((time.perf_counter() - started) * 1000, 3)
        except Exception as error:  # noqa: BLE001 - health must report, never raise
            # `/health` is public: the driver's text names hosts, ports and the topology, so
            # it goes to the log and the report says only what kind of failure it was.
            logger.warning("health: database ping failed: %s", _first_line(error))
            report.status = "unhealthy"
            report.reasons.append(f"database unreachable ({error_class(error)})")
            self.monitor.record_error(f"database unreachable ({error_class(error)})")
        else:
            await self._fill_figures(db, report)
            if report.ping_ms > SLOW_PING_MS:
                report.reasons.append(f"slow ping: {report.ping_ms} ms")
            if report.reasons:
                report.status = "degraded"
        figures = self.monitor.figures()
        report.pool = {
            "open": figures.open,
            "in_use": figures.in_use,
            "max": figures.max,
            "waiting": figures.waiting,
        }
        if self.monitor.last_error is not None:
            report.last_error_at = self.monitor.last_error.at
            report.last_error = self.monitor.last_error.message
        return report


def _without_password(error: BaseException, uri: str) -> str:
    """The driver's complaint about a URI, with the URI's password blanked if it is quoted."""
    text = _first_line(error)
    password = urlsplit(uri).password if "://" in uri else None
    if password:
        text = text.replace(password, "****").replace(unquote(password), "****")
    return text


def error_class(error: BaseException) -> str:
    """What a caller may be told of a database failure: its class, never its text."""
    return type(error).__name__


def _first_line(error: BaseException | None) -> str:
    """A short, single-line description: the driver's messages carry a whole topology dump."""
    if error is None:
        return "unknown error"
    text = str(error).splitlines()[0] if str(error) else type(error).__name__
    for noise in (" (configured timeouts", ", Timeout:"):
        text = text.split(noise, 1)[0]
    return text[:300]
