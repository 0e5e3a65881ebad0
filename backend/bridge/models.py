"""The bridge's answers as typed values. Money, prices and volumes arrive as decimal strings
and become `Decimal`; a JSON number is refused, since a float may already have lost a cent."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any

from pydantic import AwareDatetime, BaseModel, BeforeValidator, ConfigDict, Field


def _decimal_string(value: Any) -> Any:
    if not isinstance(value, str):
        raise ValueError("amounts must be decimal strings")
    return value


ExactDecimal = Annotated[Decimal, BeforeValidator(_decimal_string),
                         Field(allow_inf_nan=False)]


class _Answer(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore", populate_by_name=True)


class BridgeHealth(_Answer):
    status: str
    terminal: str
    terminal_connected: bool
    terminal_build: int | None = None
    logins: list[int]
    broker_utc_offset_seconds: int


class BridgeAccount(_Answer):
    login: int
    balance: ExactDecimal
    equity: ExactDecimal
    margin: ExactDecimal
    margin_free: ExactDecimal
    margin_level: ExactDecimal | None = None
    profit: ExactDecimal
    currency: str
    leverage: int
    server: str
    name: str
    as_of: AwareDatetime


class BridgePosition(_Answer):
    ticket: int
    symbol: str
    type: int
    volume: ExactDecimal
    price_open: ExactDecimal
    price_current: ExactDecimal
    profit: ExactDecimal
    swap: ExactDecimal
    time: AwareDatetime


class BridgePositions(_Answer):
    login: int
    positions: list[BridgePosition]


class BridgeDeal(_Answer):
    ticket: int
    order: int
    position_id: int
    time: AwareDatetime
    type: int
    type_name: str
    entry: int
    symbol: str
    volume: ExactDecimal
    price: ExactDecimal
    profit: ExactDecimal
    commission: ExactDecimal
    swap: ExactDecimal
    fee: ExactDecimal
    comment: str
    magic: int


class BridgeDealsPage(_Answer):
    login: int
    from_: datetime = Field(alias="from")
    to: datetime
    total: int
    offset: int
    limit: int
    deals: list[BridgeDeal]
