"""The backend's client of the MT5 bridge: `httpx.AsyncClient` with timeouts, the API key and
retries on transient failures only.

Over the network the requests go through aiohttp's connection pool (`httpx-aiohttp`), not
httpcore's: httpcore 1.0 walks every open connection, for every queued request, each time a
request starts or ends (encode/httpcore#1035), and a sync at concurrency 50 spent most of its
CPU in that bookkeeping (`make bench`, mt5 sync). Tests pass their own
`transport` (the bridge app in process, or a mock) and are unaffected.

Every call is a GET, so repeating one is safe. Retried: connection errors, timeouts, and 502,
503 and 504 answers, except TERMINAL_LOGIN_MISMATCH, which is the bridge refusing on purpose.
Never retried: 4xx answers (a wrong key, a login the bridge does not serve), which a second
attempt cannot fix.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, Self

import aiohttp
import httpx
from httpx_aiohttp import AiohttpTransport
from pydantic import BaseModel, ValidationError
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception,
    stop_after_attempt,
    wait_exponential_jitter,
)

from backend.bridge.errors import (
    BridgeBadResponse,
    BridgeError,
    BridgeRefused,
    BridgeUnreachable,
    TerminalCrossed,
)
from backend.bridge.models import (
    BridgeAccount,
    BridgeDeal,
    BridgeDealsPage,
    BridgeHealth,
    BridgePositions,
)
from backend.settings import Settings

logger = logging.getLogger(__name__)

API_KEY_HEADER = "X-API-Key"
TRANSIENT_STATUSES = frozenset({502, 503, 504})
DEALS_PAGE_SIZE = 1000
#: Connecting should be quick on a LAN/VPN; a slow terminal shows up in the read timeout.
CONNECT_TIMEOUT_SECONDS = 5.0


def _transient(error: BaseException) -> bool:
    if isinstance(error, BridgeUnreachable):
        return True
    return (isinstance(error, BridgeRefused) and not isinstance(error, TerminalCrossed)
            and error.status_code in TRANSIENT_STATUSES)


def _iso(moment: datetime) -> str:
    if moment.tzinfo is None:
        raise ValueError("bridge times must be timezone-aware")
    return moment.astimezone(UTC).isoformat()


class BridgeClient:
    """One client per process (or per sync run); use it as an async context manager.

    `transport` replaces the network, e.g. `httpx.ASGITransport(app=bridge_app)` or an
    `httpx.MockTransport` in tests.
    """

    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        timeout_seconds: float = 10.0,
        attempts: int = 3,
        backoff_seconds: float = 0.2,
        max_connections: int = 100,
        transport: httpx.AsyncBaseTransport | None = None,
        sleep: Callable[[float], Awaitable[None]] | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.attempts = attempts
        self.backoff_seconds = backoff_seconds
        self._sleep = sleep
        self._http = httpx.AsyncClient(
            base_url=self.base_url,
            headers={API_KEY_HEADER: api_key, "Accept": "application/json"},
            timeout=httpx.Timeout(timeout_seconds,
                                  connect=min(CONNECT_TIMEOUT_SECONDS, timeout_seconds)),
            transport=transport or AiohttpTransport(limits=httpx.Limits(
                max_connections=max_connections, max_keepalive_connections=max_connections)),
        )

    @classmethod
    def from_settings(cls, settings: Settings, *,
                      transport: httpx.AsyncBaseTransport | None = None,
                      **options: Any) -> Self:
        options.setdefault("max_connections", max(settings.sync_concurrency, 10))
        return cls(
            settings.mt5_bridge_url,
            settings.mt5_bridge_api_key.get_secret_value(),
            timeout_seconds=settings.mt5_bridge_timeout_seconds,
            transport=transport,
            **options,
        )

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    # --- the bridge's routes -----------------------------------------------------------

    async def health(self) -> BridgeHealth:
        return await self._get("/health", BridgeHealth)

    async def account(self, login: int) -> BridgeAccount:
        return await self._get(f"/accounts/{login}", BridgeAccount)

    async def positions(self, login: int) -> BridgePositions:
        return await self._get(f"/accounts/{login}/positions", BridgePositions)

    async def deals(self, login: int, *, start: datetime, end: datetime) -> list[BridgeDeal]:
        """Every deal with `start <= time < end` (UTC), following the bridge's pages."""
        deals: list[BridgeDeal] = []
        offset = 0
        while True:
            page = await self._get(
                f"/accounts/{login}/deals", BridgeDealsPage,
                params={"from": _iso(start), "to": _iso(end),
                        "limit": DEALS_PAGE_SIZE, "offset": offset})
            deals.extend(page.deals)
            offset += len(page.deals)
            if not page.deals or offset >= page.total:
                return deals

    # --- plumbing ----------------------------------------------------------------------

    def _log_retry(self, state: RetryCallState) -> None:
        error = state.outcome.exception() if state.outcome else None
        logger.warning("MT5 bridge call failed (attempt %d of %d): %s; retrying",
                       state.attempt_number, self.attempts, error)

    async def _get[M: BaseModel](self, path: str, model: type[M], *,
                                 params: dict[str, Any] | None = None) -> M:
        retrying = AsyncRetrying(
            stop=stop_after_attempt(self.attempts),
            wait=wait_exponential_jitter(multiplier=self.backoff_seconds, max=5.0,
                                         jitter=self.backoff_seconds),
            retry=retry_if_exception(_transient),
            before_sleep=self._log_retry,
            reraise=True,
            sleep=self._sleep or asyncio.sleep,
        )
        async for attempt in retrying:
            with attempt:
                return await self._get_once(path, model, params)
        raise AssertionError("unreachable")  # pragma: no cover

    async def _get_once[M: BaseModel](self, path: str, model: type[M],
                                      params: dict[str, Any] | None) -> M:
        try:
            response = await self._http.get(path, params=params)
        except httpx.TimeoutException as error:
            if _refused_or_dropped(error):
                raise BridgeUnreachable(
                    f"the MT5 bridge at {self.base_url} cannot be reached: {error}",
                    details={"path": path}) from error
            raise BridgeUnreachable(
                f"the MT5 bridge at {self.base_url} did not answer in time "
                f"({type(error).__name__})", details={"path": path}) from error
        except httpx.TransportError as error:
            reason = str(error) or type(error).__name__
            raise BridgeUnreachable(
                f"the MT5 bridge at {self.base_url} cannot be reached: {reason}",
                details={"path": path}) from error
        if response.is_error:
            raise _refusal(response, path)
        try:
            return model.model_validate_json(response.content)
        except ValidationError as error:
            raise BridgeBadResponse(
                f"the MT5 bridge answered {path} with a body that is not a valid "
                f"{model.__name__}: {error.errors()[0].get('msg', '')}",
                details={"path": path}) from error


def _refused_or_dropped(error: httpx.TimeoutException) -> bool:
    """httpx-aiohttp reports a refused or dropped connection, and an unknown host, as a connect
    timeout; its cause tells them apart from a real timeout."""
    cause = error.__cause__
    return (isinstance(cause, aiohttp.ClientError)
            and not isinstance(cause, aiohttp.ServerTimeoutError | TimeoutError))


def _refusal(response: httpx.Response, path: str) -> BridgeError:
    code = f"HTTP_{response.status_code}"
    message = response.reason_phrase or "error"
    details: Any = None
    try:
        body = response.json()
        error = body["error"]
        code, message, details = str(error["code"]), str(error["message"]), error.get("details")
    except (ValueError, KeyError, TypeError):
        pass
    text = f"MT5 bridge answered {response.status_code} {code} on {path}: {message}"
    kind = TerminalCrossed if code == TerminalCrossed.code else BridgeRefused
    return kind(text, status_code=response.status_code, bridge_code=code, details=details)
