"""The one way into the terminal: serialization, login checks, error mapping, UTC conversion.

Every read runs as one function in a worker thread, so the event loop never blocks on the
terminal: make sure the terminal is logged into the requested login (calling `login()` only when
it is not), check that `account_info().login` really is that login, then read. A terminal that
answers for another login (several terminals on one VPS can get crossed) is refused.

The real MetaTrader5 package drives one terminal per process through global state and is not
thread-safe, so for it every sequence runs under one lock and, through a one-token limiter,
one thread at a time: concurrent requests wait their turn, which is correct for one terminal.
The simulator declares `thread_safe = True` (each thread has its own session), so the gateway
skips the lock for it and lets up to `SIMULATOR_CONCURRENCY` sequences overlap; that is what
makes the backend's concurrent-sync benchmark meaningful against simulated latency.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import anyio.to_thread
from anyio import CapacityLimiter

from mt5_bridge_service import constants as mt5
from mt5_bridge_service.clock import (
    BrokerClock,
    FixedOffsetClock,
    ZoneClock,
    observed_offset_seconds,
)
from mt5_bridge_service.errors import (
    AccountNotServed,
    BridgeError,
    Mt5Error,
    TerminalLoginMismatch,
    TerminalUnavailable,
)
from mt5_bridge_service.settings import AccountCredentials, BridgeSettings
from mt5_bridge_service.terminal import AccountInfo, Terminal, TradeDeal, TradePosition

logger = logging.getLogger("mt5_bridge_service")

SIMULATOR_CONCURRENCY = 100


@dataclass(frozen=True)
class HealthSnapshot:
    terminal: str
    connected: bool
    build: int | None
    logins: list[int]
    broker_utc_offset_seconds: int


@dataclass(frozen=True)
class Deal:
    """A terminal deal with its time converted to UTC."""

    record: TradeDeal
    time: datetime


@dataclass(frozen=True)
class Position:
    record: TradePosition
    time: datetime


def build_clock(settings: BridgeSettings) -> BrokerClock:
    if settings.broker_timezone:
        return ZoneClock(settings.broker_timezone)
    return FixedOffsetClock(round(settings.broker_utc_offset_hours * 3600))


def _broker_ms(time_seconds: int, time_msc: int) -> int:
    # time_msc carries the milliseconds; a terminal that leaves it 0 still gives whole seconds.
    return time_msc if time_msc else time_seconds * 1000


class TerminalGateway:
    def __init__(self, terminal: Terminal, settings: BridgeSettings) -> None:
        self.terminal = terminal
        self.settings = settings
        self.clock = build_clock(settings)
        self._lock = threading.Lock()
        self._limiter = CapacityLimiter(SIMULATOR_CONCURRENCY if terminal.thread_safe else 1)
        self._initialized = False
        self._current_path: str | None = None
        self._served: set[int] = set()

    # --- lifecycle -----------------------------------------------------------------------

    async def start(self) -> None:
        """Attach to the terminal. A failure is logged, not raised: the bridge starts degraded
        and retries on the next request, since the terminal may start after the service."""
        try:
            await self._run(self._initialize)
        except BridgeError as exc:
            logger.error("Terminal initialization failed: %s (%s)", exc.message, exc.details)
            return
        try:
            await self._run(self._check_offset)
        except BridgeError:
            logger.warning("Could not read a tick to cross-check the broker UTC offset")

    async def stop(self) -> None:
        await self._run(self._shutdown)

    # --- reads ---------------------------------------------------------------------------

    async def health(self) -> HealthSnapshot:
        return await self._run(self._health)

    async def account(self, login: int) -> AccountInfo:
        return await self._run(lambda: self._session(login))

    async def positions(self, login: int) -> tuple[AccountInfo, list[Position]]:
        return await self._run(lambda: self._positions(login))

    async def deals(
        self, login: int, *, start: datetime, end: datetime
    ) -> tuple[AccountInfo, list[Deal]]:
        """Deals with `start <= time < end` (UTC), ordered by time then ticket."""
        return await self._run(lambda: self._deals(login, start=start, end=end))

    # --- running in the worker thread ----------------------------------------------------

    async def _run[T](self, work: Callable[[], T]) -> T:
        if self.terminal.thread_safe:
            return await anyio.to_thread.run_sync(work, limiter=self._limiter)

        def locked() -> T:
            with self._lock:
                return work()

        return await anyio.to_thread.run_sync(locked, limiter=self._limiter)

    def _initialize(self) -> None:
        path = self.settings.terminal_path
        ok = self.terminal.initialize(path, timeout=self.settings.mt5_timeout_ms)
        if not ok:
            raise self._error("initialize")
        self._initialized = True
        self._current_path = path

    def _ensure_initialized(self) -> None:
        if not self._initialized:
            self._initialize()

    def _shutdown(self) -> None:
        if self._initialized:
            self.terminal.shutdown()
            self._initialized = False

    def _check_offset(self) -> None:
        tick = self.terminal.symbol_info_tick(self.settings.offset_probe_symbol)
        if tick is None:
            raise self._error("symbol_info_tick")
        now = datetime.now(UTC)
        observed = observed_offset_seconds(tick.time, now)
        configured = self.clock.offset_seconds(now)
        if observed != configured:
            logger.warning(
                "Broker UTC offset cross-check: configured %+d s, the latest %s tick suggests "
                "%+d s (a stale tick on a closed market also causes this); check "
                "BRIDGE_BROKER_UTC_OFFSET_HOURS / BRIDGE_BROKER_TIMEZONE",
                configured,
                self.settings.offset_probe_symbol,
                observed,
            )
        else:
            logger.info("Broker UTC offset %+d s confirmed by the terminal's ticks", configured)

    def _health(self) -> HealthSnapshot:
        connected = False
        build: int | None = None
        try:
            self._ensure_initialized()
            info = self.terminal.terminal_info()
            if info is not None:
                connected = bool(info.connected)
                build = int(info.build) or None
            if build is None:
                version = self.terminal.version()
                build = version[1] if version else None
        except BridgeError as exc:
            logger.warning("Health check: terminal not reachable: %s", exc.message)
        if self.settings.restricts_logins:
            logins = sorted(self.settings.accounts)
        else:
            logins = sorted(self._served)
        return HealthSnapshot(
            terminal=self.terminal.name,
            connected=connected,
            build=build,
            logins=logins,
            broker_utc_offset_seconds=self.clock.offset_seconds(datetime.now(UTC)),
        )

    def _session(self, login: int) -> AccountInfo:
        """Make the terminal answer for `login` and prove it does."""
        credentials = self.settings.accounts.get(login)
        if self.settings.restricts_logins and credentials is None:
            raise AccountNotServed(
                f"login {login} is not served by this bridge (not in BRIDGE_ACCOUNTS)",
                details={"login": login},
            )
        self._ensure_initialized()
        path = (credentials.terminal_path if credentials else None) or self.settings.terminal_path
        info = self._current_account() if path == self._current_path else None
        if info is None or info.login != login:
            self._switch_to(login, credentials, path)
            info = self.terminal.account_info()
            if info is None:
                raise self._error("account_info", login=login)
        if info.login != login:
            logger.error(
                "Terminal login mismatch: requested login %d but the terminal reports login %d; "
                "refusing to answer",
                login,
                info.login,
            )
            raise TerminalLoginMismatch(
                f"the terminal answered for login {info.login} instead of {login}",
                details={"requested_login": login, "terminal_login": info.login},
            )
        self._served.add(login)
        return info

    def _current_account(self) -> AccountInfo | None:
        """The account the terminal is on now; None when none is, or it cannot say."""
        info = self.terminal.account_info()
        if info is None:
            code, _ = self.terminal.last_error()
            if code in mt5.TERMINAL_UNREACHABLE_CODES:
                raise self._error("account_info")
        return info

    def _switch_to(
        self, login: int, credentials: AccountCredentials | None, path: str | None
    ) -> None:
        password = (
            credentials.password.get_secret_value()
            if credentials is not None and credentials.password is not None
            else None
        )
        server = credentials.server if credentials is not None else None
        timeout = self.settings.mt5_timeout_ms
        if path == self._current_path:
            ok = self.terminal.login(login, password=password, server=server, timeout=timeout)
        else:
            # The package talks to one terminal per process: reaching another installation
            # means detaching from the current one first.
            self.terminal.shutdown()
            self._initialized = False
            ok = self.terminal.initialize(
                path, login=login, password=password, server=server, timeout=timeout
            )
            if ok:
                self._initialized = True
                self._current_path = path
        if not ok:
            raise self._error("login", login=login)

    def _positions(self, login: int) -> tuple[AccountInfo, list[Position]]:
        info = self._session(login)
        raw = self.terminal.positions_get()
        if raw is None:
            raw = self._empty_or_raise("positions_get", login)
        positions = [
            Position(record=p, time=self.clock.to_utc(_broker_ms(p.time, p.time_msc))) for p in raw
        ]
        positions.sort(key=lambda p: (p.time, p.record.ticket))
        return info, positions

    def _deals(
        self, login: int, *, start: datetime, end: datetime
    ) -> tuple[AccountInfo, list[Deal]]:
        info = self._session(login)
        # The terminal compares whole broker-time seconds, both ends inclusive; ask for a
        # slightly wider window and cut it exactly in UTC below.
        raw = self.terminal.history_deals_get(
            self.clock.to_broker_seconds(start) - 1, self.clock.to_broker_seconds(end) + 1
        )
        if raw is None:
            raw = self._empty_or_raise("history_deals_get", login)
        deals = []
        for record in raw:
            moment = self.clock.to_utc(_broker_ms(record.time, record.time_msc))
            if start <= moment < end:
                deals.append(Deal(record=record, time=moment))
        deals.sort(key=lambda d: (d.time, d.record.ticket))
        return info, deals

    def _empty_or_raise[R](self, function: str, login: int) -> tuple[R, ...]:
        # The package answers an empty window with None while last_error() still says success;
        # only a real error code means the call failed.
        code, _ = self.terminal.last_error()
        if code == mt5.RES_S_OK:
            return ()
        raise self._error(function, login=login)

    def _error(self, function: str, *, login: int | None = None) -> BridgeError:
        code, message = self.terminal.last_error()
        name = mt5.RES_NAMES.get(code, f"MT5_CODE_{code}")
        meaning = mt5.RES_DESCRIPTIONS.get(code, "the terminal reported an unknown error")
        details: dict[str, object] = {
            "mt5_code": code,
            "mt5_name": name,
            "mt5_message": message,
            "function": function,
        }
        if login is not None:
            details["login"] = login
        logger.warning("MT5 %s failed: %s %s (%s)", function, code, name, message)
        if code in mt5.TERMINAL_UNREACHABLE_CODES:
            self._initialized = False
            return TerminalUnavailable(f"MT5 terminal unavailable: {meaning}", details=details)
        return Mt5Error(f"MT5 {function} failed: {meaning}", details=details)
