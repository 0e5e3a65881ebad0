"""MT5 deals: an account's deal history, stored once per (account, ticket) however often a
sync replays it (a login alone is not unique: the same number can exist at two brokers).

Stored in `mt5_deals` (validator and indexes: `schemas/mt5_deals.json`).
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StrictInt, StringConstraints

from backend.models._base import StoredDocument
from backend.models._common import MAX_SAFE_INT, Mt5Login
from backend.models._types import (
    MONEY_LIMIT,
    Currency,
    DecimalNumber,
    ObjectIdStr,
    PyObjectId,
    SignedMoney,
    UtcDateTime,
)

Ticket = Annotated[StrictInt, Field(ge=1, le=MAX_SAFE_INT)]
OptionalTicket = Annotated[StrictInt, Field(ge=0, le=MAX_SAFE_INT)]
Quantity = Annotated[DecimalNumber, Field(ge=0, le=MONEY_LIMIT)]
Symbol = Annotated[str, StringConstraints(min_length=1, max_length=32)]
Comment = Annotated[str, StringConstraints(min_length=1, max_length=255)]


class DealType(StrEnum):
    """MT5 `DEAL_TYPE_*`, in lower case."""

    BUY = "buy"
    SELL = "sell"
    BALANCE = "balance"
    CREDIT = "credit"
    CHARGE = "charge"
    CORRECTION = "correction"
    BONUS = "bonus"
    COMMISSION = "commission"
    COMMISSION_DAILY = "commission_daily"
    COMMISSION_MONTHLY = "commission_monthly"
    COMMISSION_AGENT_DAILY = "commission_agent_daily"
    COMMISSION_AGENT_MONTHLY = "commission_agent_monthly"
    INTEREST = "interest"
    BUY_CANCELED = "buy_canceled"
    SELL_CANCELED = "sell_canceled"
    DIVIDEND = "dividend"
    DIVIDEND_FRANKED = "dividend_franked"
    TAX = "tax"


class DealEntry(StrEnum):
    """MT5 `DEAL_ENTRY_*`, in lower case."""

    IN = "in"
    OUT = "out"
    INOUT = "inout"
    OUT_BY = "out_by"


class Mt5Deal(StoredDocument):
    collection_name = "mt5_deals"

    mt5_account_id: PyObjectId
    mt5_login: Mt5Login
    ticket: Ticket
    order: OptionalTicket | None = None
    position_id: OptionalTicket | None = None
    time: UtcDateTime
    deal_type: DealType
    entry: DealEntry | None = None
    symbol: Symbol | None = None
    volume: Quantity
    price: Quantity
    profit: SignedMoney
    commission: SignedMoney
    swap: SignedMoney
    fee: SignedMoney
    currency: Currency
    comment: Comment | None = None
    magic: OptionalTicket | None = None
    synced_at: UtcDateTime


class Mt5DealRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    mt5_account_id: ObjectIdStr
    mt5_login: int
    ticket: int
    order: int | None = None
    position_id: int | None = None
    time: UtcDateTime
    deal_type: DealType
    entry: DealEntry | None = None
    symbol: str | None = None
    volume: Quantity
    price: Quantity
    profit: SignedMoney
    commission: SignedMoney
    swap: SignedMoney
    fee: SignedMoney
    currency: str
    comment: str | None = None
    magic: int | None = None
    synced_at: UtcDateTime
