"""The terminal adapter: one interface, the real MetaTrader5 package or the simulator behind it.

The records mirror the package's result types field for field (`AccountInfo`, `TradePosition`,
`TradeDeal`, `Tick`, `TerminalInfo`) and, like them, are named tuples with `_asdict()`. All times
in them are seconds (or milliseconds) since 1970 *in the broker's server time*, exactly as the
terminal reports them; the gateway converts them to UTC.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, NamedTuple, Protocol, runtime_checkable

from mt5_bridge_service.errors import ConfigurationError


class AccountInfo(NamedTuple):
    login: int = 0
    trade_mode: int = 0
    leverage: int = 0
    limit_orders: int = 0
    margin_so_mode: int = 0
    trade_allowed: bool = False
    trade_expert: bool = False
    margin_mode: int = 0
    currency_digits: int = 2
    fifo_close: bool = False
    balance: float = 0.0
    credit: float = 0.0
    profit: float = 0.0
    equity: float = 0.0
    margin: float = 0.0
    margin_free: float = 0.0
    margin_level: float = 0.0
    margin_so_call: float = 0.0
    margin_so_so: float = 0.0
    margin_initial: float = 0.0
    margin_maintenance: float = 0.0
    assets: float = 0.0
    liabilities: float = 0.0
    commission_blocked: float = 0.0
    name: str = ""
    server: str = ""
    currency: str = ""
    company: str = ""


class TradePosition(NamedTuple):
    ticket: int = 0
    time: int = 0
    time_msc: int = 0
    time_update: int = 0
    time_update_msc: int = 0
    type: int = 0
    magic: int = 0
    identifier: int = 0
    reason: int = 0
    volume: float = 0.0
    price_open: float = 0.0
    sl: float = 0.0
    tp: float = 0.0
    price_current: float = 0.0
    swap: float = 0.0
    profit: float = 0.0
    symbol: str = ""
    comment: str = ""
    external_id: str = ""


class TradeDeal(NamedTuple):
    ticket: int = 0
    order: int = 0
    time: int = 0
    time_msc: int = 0
    type: int = 0
    entry: int = 0
    magic: int = 0
    position_id: int = 0
    reason: int = 0
    volume: float = 0.0
    price: float = 0.0
    commission: float = 0.0
    swap: float = 0.0
    profit: float = 0.0
    fee: float = 0.0
    symbol: str = ""
    comment: str = ""
    external_id: str = ""


class Tick(NamedTuple):
    time: int = 0
    bid: float = 0.0
    ask: float = 0.0
    last: float = 0.0
    volume: int = 0
    time_msc: int = 0
    flags: int = 0
    volume_real: float = 0.0


class TerminalInfo(NamedTuple):
    community_account: bool = False
    community_connection: bool = False
    connected: bool = False
    dlls_allowed: bool = False
    trade_allowed: bool = False
    tradeapi_disabled: bool = False
    email_enabled: bool = False
    ftp_enabled: bool = False
    notifications_enabled: bool = False
    mqid: bool = False
    build: int = 0
    maxbars: int = 0
    codepage: int = 0
    ping_last: int = 0
    community_balance: float = 0.0
    retransmission: float = 0.0
    company: str = ""
    name: str = ""
    language: str = ""
    path: str = ""
    data_path: str = ""
    commondata_path: str = ""


@runtime_checkable
class Terminal(Protocol):
    """The calls the bridge makes, named and shaped as in the MetaTrader5 package.

    Failing calls return None (or False) and leave the reason in `last_error()`, as the package
    does. `name` is "simulated" or "metatrader5". `thread_safe` tells the gateway whether it may
    call in from several threads at once; the real package may not.
    """

    name: str
    thread_safe: bool

    def initialize(
        self,
        path: str | None = None,
        *,
        login: int | None = None,
        password: str | None = None,
        server: str | None = None,
        timeout: int | None = None,
    ) -> bool: ...

    def login(
        self,
        login: int,
        password: str | None = None,
        server: str | None = None,
        timeout: int | None = None,
    ) -> bool: ...

    def shutdown(self) -> None: ...

    def last_error(self) -> tuple[int, str]: ...

    def version(self) -> tuple[int, int, str] | None: ...

    def terminal_info(self) -> TerminalInfo | None: ...

    def account_info(self) -> AccountInfo | None: ...

    def positions_get(
        self, symbol: str | None = None, group: str | None = None, ticket: int | None = None
    ) -> tuple[TradePosition, ...] | None: ...

    def history_deals_get(
        self, date_from: datetime | int, date_to: datetime | int, group: str | None = None
    ) -> tuple[TradeDeal, ...] | None: ...

    def symbol_info_tick(self, symbol: str) -> Tick | None: ...


def _known_fields(fields: tuple[str, ...], raw: Any) -> dict[str, Any]:
    """The fields of a package result that our record knows.

    Newer package builds add fields and older ones lack some; copying by name keeps the bridge
    working with both instead of failing on an unexpected field.
    """
    data = raw._asdict()
    return {f: data[f] for f in fields if f in data}


class MetaTrader5Terminal:
    """The real terminal, through the `MetaTrader5` package (Windows only).

    The package drives one terminal per process through global state and is not thread-safe,
    so `thread_safe` is False and the gateway serializes every call under one lock.
    """

    name = "metatrader5"
    thread_safe = False

    def __init__(self) -> None:
        try:
            # Imported here so Linux development and tests never need the Windows-only package.
            import MetaTrader5
        except ImportError as exc:
            raise ConfigurationError(
                "BRIDGE_TERMINAL=metatrader5 needs the MetaTrader5 package, which exists only "
                "for Windows (pip install -r mt5_bridge_service/requirements.txt on the VPS); "
                "use BRIDGE_TERMINAL=simulated for development"
            ) from exc
        self._mt5: Any = MetaTrader5

    def initialize(
        self,
        path: str | None = None,
        *,
        login: int | None = None,
        password: str | None = None,
        server: str | None = None,
        timeout: int | None = None,
    ) -> bool:
        kwargs = {
            k: v
            for k, v in {
                "login": login,
                "password": password,
                "server": server,
                "timeout": timeout,
            }.items()
            if v is not None
        }
        if path:
            return bool(self._mt5.initialize(path, **kwargs))
        return bool(self._mt5.initialize(**kwargs))

    def login(
        self,
        login: int,
        password: str | None = None,
        server: str | None = None,
        timeout: int | None = None,
    ) -> bool:
        kwargs = {
            k: v
            for k, v in {"password": password, "server": server, "timeout": timeout}.items()
            if v is not None
        }
        return bool(self._mt5.login(login, **kwargs))

    def shutdown(self) -> None:
        self._mt5.shutdown()

    def last_error(self) -> tuple[int, str]:
        code, message = self._mt5.last_error()
        return int(code), str(message)

    def version(self) -> tuple[int, int, str] | None:
        raw = self._mt5.version()
        if raw is None:
            return None
        return int(raw[0]), int(raw[1]), str(raw[2])

    def terminal_info(self) -> TerminalInfo | None:
        raw = self._mt5.terminal_info()
        return None if raw is None else TerminalInfo(**_known_fields(TerminalInfo._fields, raw))

    def account_info(self) -> AccountInfo | None:
        raw = self._mt5.account_info()
        return None if raw is None else AccountInfo(**_known_fields(AccountInfo._fields, raw))

    def positions_get(
        self, symbol: str | None = None, group: str | None = None, ticket: int | None = None
    ) -> tuple[TradePosition, ...] | None:
        kwargs = {
            k: v for k, v in {"symbol": symbol, "group": group, "ticket": ticket}.items() if v
        }
        raw = self._mt5.positions_get(**kwargs)
        return (
            None
            if raw is None
            else tuple(TradePosition(**_known_fields(TradePosition._fields, p)) for p in raw)
        )

    def history_deals_get(
        self, date_from: datetime | int, date_to: datetime | int, group: str | None = None
    ) -> tuple[TradeDeal, ...] | None:
        if group:
            raw = self._mt5.history_deals_get(date_from, date_to, group=group)
        else:
            raw = self._mt5.history_deals_get(date_from, date_to)
        return (
            None
            if raw is None
            else tuple(TradeDeal(**_known_fields(TradeDeal._fields, d)) for d in raw)
        )

    def symbol_info_tick(self, symbol: str) -> Tick | None:
        raw = self._mt5.symbol_info_tick(symbol)
        return None if raw is None else Tick(**_known_fields(Tick._fields, raw))
