"""Response bodies. Money, prices and volumes are decimal strings; times are ISO 8601 in UTC
with an explicit `+00:00` offset."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PlainSerializer


def _iso_utc(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds")


UtcDateTime = Annotated[datetime, PlainSerializer(_iso_utc, return_type=str)]
DecimalString = Annotated[Decimal, PlainSerializer(str, return_type=str)]


def money(value: float, digits: int) -> Decimal:
    """A terminal amount (a double) as an exact decimal in the account currency's digits.

    `repr` gives the shortest text that reads back as the same double, which is what the
    terminal showed; quantizing to the currency's digits drops binary noise, never cents.
    Adding zero turns a negative zero (-0.0 from the terminal) into "0.00".
    """
    quantum = Decimal(1).scaleb(-digits)
    return Decimal(repr(float(value))).quantize(quantum, ROUND_HALF_EVEN) + Decimal(0)


def exact(value: float) -> Decimal:
    """A price or volume as the shortest decimal that is the same double."""
    return Decimal(repr(float(value)))


class _Body(BaseModel):
    model_config = ConfigDict(populate_by_name=True, frozen=True)


class ErrorDetail(_Body):
    code: str
    message: str
    details: Any = None


class ErrorBody(_Body):
    error: ErrorDetail


class Liveness(_Body):
    status: Literal["ok"] = "ok"


class Health(_Body):
    status: Literal["ok", "degraded"]
    terminal: Literal["simulated", "metatrader5"]
    terminal_connected: bool
    terminal_build: int | None
    logins: list[int]
    broker_utc_offset_seconds: int


class Account(_Body):
    login: int
    balance: DecimalString
    equity: DecimalString
    margin: DecimalString
    margin_free: DecimalString
    margin_level: DecimalString | None = Field(
        description="Equity / margin in percent, 2 decimals; null when no margin is used"
    )
    profit: DecimalString
    currency: str
    leverage: int
    server: str
    name: str
    as_of: UtcDateTime


class Position(_Body):
    ticket: int
    symbol: str
    type: int = Field(description="POSITION_TYPE_BUY=0, POSITION_TYPE_SELL=1")
    volume: DecimalString
    price_open: DecimalString
    price_current: DecimalString
    profit: DecimalString
    swap: DecimalString
    time: UtcDateTime


class Positions(_Body):
    login: int
    positions: list[Position]


class Deal(_Body):
    ticket: int
    order: int
    position_id: int
    time: UtcDateTime
    type: int = Field(description="ENUM_DEAL_TYPE value, e.g. DEAL_TYPE_BALANCE=2")
    type_name: str = Field(description="The type without its prefix, e.g. BALANCE")
    entry: int = Field(description="ENUM_DEAL_ENTRY: IN=0, OUT=1, INOUT=2, OUT_BY=3")
    symbol: str
    volume: DecimalString
    price: DecimalString
    profit: DecimalString
    commission: DecimalString
    swap: DecimalString
    fee: DecimalString
    comment: str
    magic: int


class Deals(_Body):
    login: int
    from_: UtcDateTime = Field(alias="from")
    to: UtcDateTime
    total: int
    offset: int
    limit: int
    deals: list[Deal]
