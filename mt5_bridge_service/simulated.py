"""A simulated MT5 terminal for Linux development, the demo seed and tests.

It answers the same calls as the MetaTrader5 package with the same result records, drawn
deterministically from a seed: the data of login L come from `random.Random(seed ^ L)`, so the
same seed always gives the same accounts. Any login number is served.

Every account's history (a 30-day window ending at `history_end`) holds an initial deposit
(`DEAL_TYPE_BALANCE`, positive profit), round-trip trades on a few symbols (an IN and an OUT deal
each, with commission and swap), sometimes a further deposit or withdrawal, and zero to three
positions still open. `account_info()` is computed from those deals: balance is the sum of every
deal's profit, commission, swap and fee, equity adds the open positions' profit and swap.

Times are broker server time, as on a real terminal: UTC plus `broker_utc_offset_hours`
(default +2 h, as many MT5 servers run on EET).

Sessions are per thread: each worker thread sees its own logged-in account and its own
`last_error()`, as if each had a terminal of its own. That is what makes the simulator
thread-safe (`thread_safe = True`) and lets the bridge skip its terminal lock for it.

Testing hooks (used by the bridge's and the backend's tests and benchmark):

- `latency_seconds`: an artificial delay slept inside every terminal call (`time.sleep`, since
  the real package blocks too). Settable at any time.
- `add_deal(login, profit=..., ...)`: append a deal to a login's history, e.g. an extra deposit;
  the balance follows.
- `cross_login(requested, actual)`: after `login(requested)`, `account_info()` reports `actual`,
  as a crossed terminal would. `cross_login(requested, None)` undoes it.
- `fail_next(code, message, function=None)`: the next call (or the next call of the named
  function) fails, returning None/False, and `last_error()` reports `(code, message)`.
- `set_unavailable(True)`: every call fails with `RES_E_INTERNAL_FAIL_CONNECT` until
  `set_unavailable(False)`, as when the terminal is not running.
- `reset_faults()`: clears crossings, pending failures and unavailability.
- `raw_deals(login)`: the login's deals as the terminal holds them (broker time), for tests.

`deposits_file` (a JSON object of login -> amount, e.g. written by the backend's demo seed)
fixes the initial deposit of the logins it names, with no further deposit or withdrawal, so a
demo's recorded investments and its MT5 deposits agree. It is read when an account is first
drawn, so it may appear after the terminal starts.
"""

from __future__ import annotations

import calendar
import fnmatch
import json
import logging
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal
from pathlib import Path

from mt5_bridge_service import constants as mt5
from mt5_bridge_service.terminal import AccountInfo, TerminalInfo, Tick, TradeDeal, TradePosition

logger = logging.getLogger(__name__)

SIMULATED_BUILD = 4755
SIMULATED_SERVER = "FidusSim-Server"
SIMULATED_COMPANY = "Fidus Simulated Broker"
HISTORY_DAYS = 30

_CENT = Decimal("0.01")
_COMMISSION_PER_LOT_PER_SIDE = Decimal("3.50")
_SWAP_PER_LOT_PER_NIGHT = Decimal("-0.70")
_VOLUMES = (
    Decimal("0.01"),
    Decimal("0.05"),
    Decimal("0.10"),
    Decimal("0.20"),
    Decimal("0.50"),
    Decimal("1.00"),
)


@dataclass(frozen=True)
class _Symbol:
    name: str
    price: Decimal
    digits: int
    contract_size: Decimal
    quote_is_usd: bool
    base_is_usd: bool

    def quantize(self, price: Decimal) -> Decimal:
        return price.quantize(Decimal(1).scaleb(-self.digits), ROUND_HALF_EVEN)

    def profit(self, *, direction: int, volume: Decimal, open_: Decimal, close: Decimal) -> Decimal:
        raw = (close - open_) * direction * volume * self.contract_size
        if not self.quote_is_usd:
            raw = raw / close
        return raw.quantize(_CENT, ROUND_HALF_EVEN)

    def margin(self, *, volume: Decimal, price: Decimal, leverage: int) -> Decimal:
        notional = volume * self.contract_size * (1 if self.base_is_usd else price)
        return (notional / leverage).quantize(_CENT, ROUND_HALF_EVEN)


_SYMBOLS: dict[str, _Symbol] = {
    s.name: s
    for s in (
        _Symbol("EURUSD", Decimal("1.08500"), 5, Decimal(100_000), True, False),
        _Symbol("GBPUSD", Decimal("1.27000"), 5, Decimal(100_000), True, False),
        _Symbol("USDJPY", Decimal("150.000"), 3, Decimal(100_000), False, True),
        _Symbol("XAUUSD", Decimal("2350.00"), 2, Decimal(100), True, False),
    )
}


@dataclass(frozen=True)
class _Cash:
    at: datetime
    amount: Decimal
    comment: str


@dataclass
class _Trade:
    """One simulated round trip; `closed` None means still open, priced at `close_price`."""

    spec: _Symbol
    direction: int
    volume: Decimal
    magic: int
    opened: datetime
    open_price: Decimal
    close_price: Decimal
    closed: datetime | None = None
    position: int = 0

    def profit(self, price: Decimal) -> Decimal:
        return self.spec.profit(
            direction=self.direction, volume=self.volume, open_=self.open_price, close=price
        )


@dataclass
class _Account:
    login: int
    leverage: int
    name: str
    deals: list[TradeDeal] = field(default_factory=list)
    positions: list[TradePosition] = field(default_factory=list)
    position_margin: Decimal = Decimal(0)
    next_ticket: int = 0
    info: AccountInfo | None = None


class _Session(threading.local):
    login: int | None = None
    last_error: tuple[int, str] = (mt5.RES_S_OK, "Success")


def _money(value: Decimal | int | float | str) -> Decimal:
    return Decimal(str(value)).quantize(_CENT, ROUND_HALF_EVEN) + Decimal(0)


def _start_of_day(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)


class SimulatedTerminal:
    """A deterministic stand-in for one MT5 terminal; see the module docstring for the hooks.

    Args:
        seed: the data seed; login L's data come from `random.Random(seed ^ L)`.
        latency_seconds: delay slept inside each terminal call (default none).
        broker_utc_offset_hours: the broker server's offset from UTC (default +2).
        history_end: the simulated history ends here (an aware datetime); default the start of
            the current UTC day, so data stay the same all day for the same seed.
        clock: returns the current UTC time (default `datetime.now(UTC)`); used for ticks and
            for deals added without a time.
    """

    name = "simulated"
    thread_safe = True

    def __init__(
        self,
        seed: int = 0,
        *,
        latency_seconds: float = 0.0,
        broker_utc_offset_hours: float = 2.0,
        history_end: datetime | None = None,
        clock: Callable[[], datetime] | None = None,
        deposits_file: Path | None = None,
    ) -> None:
        self.seed = seed
        self.deposits_file = deposits_file
        self.latency_seconds = latency_seconds
        self.broker_offset_seconds = round(broker_utc_offset_hours * 3600)
        self._clock = clock or (lambda: datetime.now(UTC))
        if history_end is not None and history_end.tzinfo is None:
            raise ValueError("history_end must be timezone-aware")
        self.history_end = (history_end or _start_of_day(self._clock())).astimezone(UTC)
        self._accounts: dict[int, _Account] = {}
        self._data_lock = threading.Lock()
        self._session = _Session()
        self._initialized = False
        self._unavailable = False
        self._crossed: dict[int, int] = {}
        self._pending_failures: list[tuple[str | None, int, str]] = []

    # --- testing hooks -------------------------------------------------------------------

    def add_deal(
        self,
        login: int,
        *,
        profit: Decimal | int | str,
        type: int = mt5.DEAL_TYPE_BALANCE,
        entry: int = mt5.DEAL_ENTRY_IN,
        time: datetime | None = None,
        comment: str = "Deposit",
        symbol: str = "",
        volume: Decimal | int | str = 0,
        price: Decimal | int | str = 0,
        commission: Decimal | int | str = 0,
        swap: Decimal | int | str = 0,
        fee: Decimal | int | str = 0,
        magic: int = 0,
        position_id: int = 0,
        order: int = 0,
    ) -> TradeDeal:
        """Append a deal to `login`'s history and return it as the terminal would.

        `time` is UTC (aware); default now. Amounts are exact decimals (strings or Decimal).
        """
        moment = (time or self._clock()).astimezone(UTC)
        with self._data_lock:
            account = self._account(login)
            ticket = account.next_ticket
            account.next_ticket += 1
            deal = self._deal(
                ticket=ticket,
                order=order,
                at=moment,
                type_=type,
                entry=entry,
                magic=magic,
                position_id=position_id,
                volume=Decimal(str(volume)),
                price=Decimal(str(price)),
                commission=_money(commission),
                swap=_money(swap),
                profit=_money(profit),
                fee=_money(fee),
                symbol=symbol,
                comment=comment,
            )
            account.deals.append(deal)
            account.deals.sort(key=lambda d: (d.time_msc, d.ticket))
            account.info = None
        return deal

    def cross_login(self, requested: int, actual: int | None) -> None:
        """After `login(requested)`, report `actual` as the logged-in account (None undoes it)."""
        with self._data_lock:
            if actual is None:
                self._crossed.pop(requested, None)
            else:
                self._crossed[requested] = actual

    def fail_next(self, code: int, message: str, *, function: str | None = None) -> None:
        """Make the next call (or the next call of `function`) fail with `(code, message)`."""
        with self._data_lock:
            self._pending_failures.append((function, code, message))

    def set_unavailable(self, unavailable: bool) -> None:
        """Fail every call with RES_E_INTERNAL_FAIL_CONNECT while True."""
        self._unavailable = unavailable

    def reset_faults(self) -> None:
        with self._data_lock:
            self._crossed.clear()
            self._pending_failures.clear()
        self._unavailable = False

    def raw_deals(self, login: int) -> tuple[TradeDeal, ...]:
        """All deals of `login` as held by the terminal (broker time), without latency."""
        with self._data_lock:
            return tuple(self._account(login).deals)

    # --- the MetaTrader5 package's calls ----------------------------------------------------

    def initialize(
        self,
        path: str | None = None,
        *,
        login: int | None = None,
        password: str | None = None,
        server: str | None = None,
        timeout: int | None = None,
    ) -> bool:
        if not self._enter("initialize", needs_init=False):
            return False
        self._initialized = True
        if login is not None:
            self._session.login = self._crossed.get(login, login)
        return True

    def login(
        self,
        login: int,
        password: str | None = None,
        server: str | None = None,
        timeout: int | None = None,
    ) -> bool:
        if not self._enter("login"):
            return False
        with self._data_lock:
            self._session.login = self._crossed.get(login, login)
        return True

    def shutdown(self) -> None:
        self._initialized = False
        self._session.login = None

    def last_error(self) -> tuple[int, str]:
        return self._session.last_error

    def version(self) -> tuple[int, int, str] | None:
        if not self._enter("version"):
            return None
        return (500, SIMULATED_BUILD, "01 Jan 2025")

    def terminal_info(self) -> TerminalInfo | None:
        if not self._enter("terminal_info"):
            return None
        return TerminalInfo(
            connected=True,
            trade_allowed=False,
            build=SIMULATED_BUILD,
            maxbars=100_000,
            company=SIMULATED_COMPANY,
            name="Fidus simulated MetaTrader 5",
            language="English",
            path="simulated",
            data_path="simulated",
            commondata_path="simulated",
        )

    def account_info(self) -> AccountInfo | None:
        if not self._enter("account_info"):
            return None
        login = self._session.login
        if login is None:
            self._session.last_error = (mt5.RES_E_FAIL, "Terminal: no account is logged in")
            return None
        with self._data_lock:
            account = self._account(login)
            # Cached until a deal is added: summing every deal on each call would make the
            # simulator's CPU time, not its latency, dominate concurrent benchmarks.
            if account.info is None:
                account.info = self._account_info(account)
            return account.info

    def positions_get(
        self, symbol: str | None = None, group: str | None = None, ticket: int | None = None
    ) -> tuple[TradePosition, ...] | None:
        if not self._enter("positions_get"):
            return None
        login = self._logged_in()
        if login is None:
            return None
        with self._data_lock:
            positions = self._account(login).positions
        return tuple(
            p
            for p in positions
            if (symbol is None or p.symbol == symbol)
            and (ticket is None or p.ticket == ticket)
            and _in_group(p.symbol, group)
        )

    def history_deals_get(
        self, date_from: datetime | int, date_to: datetime | int, group: str | None = None
    ) -> tuple[TradeDeal, ...] | None:
        """Deals with `date_from <= time <= date_to`, both read as broker-time seconds.

        Integers are seconds in broker time, as the terminal compares them with deal times. An
        aware datetime is taken by its timestamp; a naive one as if its wall clock were UTC.
        """
        if not self._enter("history_deals_get"):
            return None
        login = self._logged_in()
        if login is None:
            return None
        start, end = _seconds(date_from), _seconds(date_to)
        with self._data_lock:
            deals = self._account(login).deals
        return tuple(d for d in deals if start <= d.time <= end and _in_group(d.symbol, group))

    def symbol_info_tick(self, symbol: str) -> Tick | None:
        if not self._enter("symbol_info_tick"):
            return None
        spec = _SYMBOLS.get(symbol)
        if spec is None:
            self._session.last_error = (mt5.RES_E_NOT_FOUND, "Terminal: Not found")
            return None
        broker_ms = round(self._clock().timestamp() * 1000) + self.broker_offset_seconds * 1000
        spread = Decimal(1).scaleb(-spec.digits) * 10
        return Tick(
            time=broker_ms // 1000,
            bid=float(spec.price),
            ask=float(spec.price + spread),
            time_msc=broker_ms,
            flags=6,
        )

    # --- internals -----------------------------------------------------------------------

    def _enter(self, function: str, *, needs_init: bool = True) -> bool:
        """Common start of every call: latency, injected failures, initialization."""
        # The sleep is outside every lock, so concurrent callers overlap as separate
        # terminals would.
        if self.latency_seconds > 0:
            time.sleep(self.latency_seconds)
        session = self._session
        if self._unavailable:
            session.last_error = (mt5.RES_E_INTERNAL_FAIL_CONNECT, "IPC initialize failed")
            return False
        with self._data_lock:
            for index, (target, code, message) in enumerate(self._pending_failures):
                if target is None or target == function:
                    del self._pending_failures[index]
                    session.last_error = (code, message)
                    return False
        if needs_init and not self._initialized:
            session.last_error = (mt5.RES_E_INTERNAL_FAIL_CONNECT, "No IPC connection")
            return False
        session.last_error = (mt5.RES_S_OK, "Success")
        return True

    def _logged_in(self) -> int | None:
        login = self._session.login
        if login is None:
            self._session.last_error = (mt5.RES_E_FAIL, "Terminal: no account is logged in")
        return login

    def _broker_seconds(self, moment: datetime) -> int:
        return calendar.timegm(moment.astimezone(UTC).timetuple()) + self.broker_offset_seconds

    def _deal(
        self,
        *,
        ticket: int,
        order: int,
        at: datetime,
        type_: int,
        entry: int,
        magic: int,
        position_id: int,
        volume: Decimal,
        price: Decimal,
        commission: Decimal,
        swap: Decimal,
        profit: Decimal,
        fee: Decimal,
        symbol: str,
        comment: str,
    ) -> TradeDeal:
        seconds = self._broker_seconds(at)
        return TradeDeal(
            ticket=ticket,
            order=order,
            time=seconds,
            time_msc=seconds * 1000 + at.microsecond // 1000,
            type=type_,
            entry=entry,
            magic=magic,
            position_id=position_id,
            reason=mt5.DEAL_REASON_EXPERT if magic else mt5.DEAL_REASON_CLIENT,
            volume=float(volume),
            price=float(price),
            commission=float(commission),
            swap=float(swap),
            profit=float(profit),
            fee=float(fee),
            symbol=symbol,
            comment=comment,
        )

    def _account(self, login: int) -> _Account:
        """The login's account, drawn on first use. Call with `_data_lock` held."""
        account = self._accounts.get(login)
        if account is None:
            account = self._draw_account(login)
            self._accounts[login] = account
        return account

    def _fixed_deposit(self, login: int) -> Decimal | None:
        if self.deposits_file is None or not self.deposits_file.is_file():
            return None
        try:
            amounts = json.loads(self.deposits_file.read_text(encoding="utf-8"))
            amount = amounts.get(str(login))
            return None if amount is None else Decimal(str(amount)).quantize(_CENT)
        except (ValueError, ArithmeticError, AttributeError):
            logger.warning("ignoring the unreadable deposits file %s", self.deposits_file)
            return None

    def _draw_account(self, login: int) -> _Account:
        rng = random.Random(self.seed ^ login)
        end = self.history_end
        start = end - timedelta(days=HISTORY_DAYS)
        account = _Account(
            login=login,
            leverage=rng.choice((100, 200, 500)),
            name=f"Simulated client {login}",
        )

        cash: list[_Cash] = []
        deposit = Decimal(rng.choice((10_000, 25_000, 50_000, 100_000, 250_000)))
        deposited_at = start + timedelta(seconds=rng.randrange(0, 6 * 3600))
        fixed = self._fixed_deposit(login)
        cash.append(_Cash(deposited_at, fixed or deposit, "Initial deposit"))
        if rng.random() < 0.4 and fixed is None:
            amount = (deposit * rng.choice((-10, -5, 5, 10, 20)) / 100).quantize(_CENT)
            at = deposited_at + timedelta(days=rng.randrange(5, 25))
            cash.append(_Cash(at, amount, "Deposit" if amount > 0 else "Withdrawal"))

        trades: list[_Trade] = []
        for _ in range(rng.randint(8, 24)):
            trade = self._draw_trade(
                rng,
                opened=deposited_at
                + timedelta(hours=1, seconds=rng.randrange(0, (HISTORY_DAYS - 2) * 86400)),
            )
            trade.closed = trade.opened + timedelta(seconds=rng.randrange(300, 2 * 86400))
            if trade.closed < end:
                trades.append(trade)
        for _ in range(rng.randint(0, 3)):
            trades.append(
                self._draw_trade(
                    rng, opened=end - timedelta(seconds=rng.randrange(3600, 3 * 86400))
                )
            )

        # Tickets are handed out in time order, as a trade server numbers its deals.
        timeline: list[tuple[datetime, int, _Cash | _Trade]] = [(c.at, 0, c) for c in cash]
        timeline += [(t.opened, 1, t) for t in trades]
        timeline += [(t.closed, 2, t) for t in trades if t.closed is not None]
        timeline.sort(key=lambda item: (item[0], item[1]))

        ticket = rng.randrange(100_000_000, 900_000_000)
        for at, step, item in timeline:
            if isinstance(item, _Cash):
                account.deals.append(
                    self._deal(
                        ticket=ticket,
                        order=0,
                        at=at,
                        type_=mt5.DEAL_TYPE_BALANCE,
                        entry=mt5.DEAL_ENTRY_IN,
                        magic=0,
                        position_id=0,
                        volume=Decimal(0),
                        price=Decimal(0),
                        commission=Decimal(0),
                        swap=Decimal(0),
                        profit=item.amount,
                        fee=Decimal(0),
                        symbol="",
                        comment=item.comment,
                    )
                )
                ticket += 1
                continue
            trade = item
            commission = -(trade.volume * _COMMISSION_PER_LOT_PER_SIDE).quantize(_CENT)
            buy = trade.direction > 0
            if step == 1:
                trade.position = ticket + 1
                account.deals.append(
                    self._deal(
                        ticket=ticket,
                        order=trade.position,
                        at=at,
                        type_=mt5.DEAL_TYPE_BUY if buy else mt5.DEAL_TYPE_SELL,
                        entry=mt5.DEAL_ENTRY_IN,
                        magic=trade.magic,
                        position_id=trade.position,
                        volume=trade.volume,
                        price=trade.open_price,
                        commission=commission,
                        swap=Decimal(0),
                        profit=Decimal(0),
                        fee=Decimal(0),
                        symbol=trade.spec.name,
                        comment="",
                    )
                )
                if trade.closed is None:
                    self._open_position(account, trade, nights=(end.date() - at.date()).days)
            else:
                nights = (at.date() - trade.opened.date()).days
                account.deals.append(
                    self._deal(
                        ticket=ticket,
                        order=ticket + 1,
                        at=at,
                        type_=mt5.DEAL_TYPE_SELL if buy else mt5.DEAL_TYPE_BUY,
                        entry=mt5.DEAL_ENTRY_OUT,
                        magic=trade.magic,
                        position_id=trade.position,
                        volume=trade.volume,
                        price=trade.close_price,
                        commission=commission,
                        swap=_money(_SWAP_PER_LOT_PER_NIGHT * trade.volume * nights),
                        profit=trade.profit(trade.close_price),
                        fee=Decimal(0),
                        symbol=trade.spec.name,
                        comment="",
                    )
                )
            ticket += 2
        account.next_ticket = ticket
        return account

    @staticmethod
    def _draw_trade(rng: random.Random, *, opened: datetime) -> _Trade:
        spec = _SYMBOLS[rng.choice(sorted(_SYMBOLS))]
        open_price = spec.quantize(spec.price * Decimal(1 + rng.gauss(0, 0.01)))
        return _Trade(
            spec=spec,
            direction=rng.choice((1, -1)),
            volume=rng.choice(_VOLUMES),
            magic=rng.choice((0, 0, 20_240_101)),
            opened=opened,
            open_price=open_price,
            close_price=spec.quantize(open_price * Decimal(1 + rng.gauss(0, 0.004))),
        )

    def _open_position(self, account: _Account, trade: _Trade, *, nights: int) -> None:
        """Record a still-open trade as a position, priced at its `close_price` now."""
        seconds = self._broker_seconds(trade.opened)
        account.positions.append(
            TradePosition(
                ticket=trade.position,
                time=seconds,
                time_msc=seconds * 1000,
                time_update=seconds,
                time_update_msc=seconds * 1000,
                type=mt5.POSITION_TYPE_BUY if trade.direction > 0 else mt5.POSITION_TYPE_SELL,
                magic=trade.magic,
                identifier=trade.position,
                reason=mt5.DEAL_REASON_EXPERT if trade.magic else mt5.DEAL_REASON_CLIENT,
                volume=float(trade.volume),
                price_open=float(trade.open_price),
                price_current=float(trade.close_price),
                swap=float(_money(_SWAP_PER_LOT_PER_NIGHT * trade.volume * nights)),
                profit=float(trade.profit(trade.close_price)),
                symbol=trade.spec.name,
            )
        )
        account.position_margin += trade.spec.margin(
            volume=trade.volume, price=trade.close_price, leverage=account.leverage
        )

    def _account_info(self, account: _Account) -> AccountInfo:
        balance = sum(
            (
                _money(d.profit) + _money(d.commission) + _money(d.swap) + _money(d.fee)
                for d in account.deals
            ),
            Decimal(0),
        )
        floating = sum((_money(p.profit) for p in account.positions), Decimal(0))
        swaps = sum((_money(p.swap) for p in account.positions), Decimal(0))
        equity = balance + floating + swaps
        margin = account.position_margin
        margin_level = float(equity / margin * 100) if margin else 0.0
        return AccountInfo(
            login=account.login,
            trade_mode=mt5.ACCOUNT_TRADE_MODE_DEMO,
            leverage=account.leverage,
            limit_orders=200,
            trade_allowed=True,
            trade_expert=True,
            margin_mode=mt5.ACCOUNT_MARGIN_MODE_RETAIL_HEDGING,
            currency_digits=2,
            balance=float(balance),
            profit=float(floating + swaps),
            equity=float(equity),
            margin=float(margin),
            margin_free=float(equity - margin),
            margin_level=margin_level,
            margin_so_call=50.0,
            margin_so_so=30.0,
            name=account.name,
            server=SIMULATED_SERVER,
            currency="USD",
            company=SIMULATED_COMPANY,
        )


def _seconds(value: datetime | int) -> int:
    if isinstance(value, datetime):
        if value.tzinfo is None:
            return calendar.timegm(value.timetuple())
        return int(value.timestamp())
    return int(value)


def _in_group(symbol: str, group: str | None) -> bool:
    """The package's `group` filter: comma-separated masks with `*`, `!` excludes."""
    if not group:
        return True
    included = False
    for mask in (m.strip() for m in group.split(",")):
        if mask.startswith("!"):
            if fnmatch.fnmatchcase(symbol, mask[1:]):
                return False
        elif fnmatch.fnmatchcase(symbol, mask):
            included = True
    return included
