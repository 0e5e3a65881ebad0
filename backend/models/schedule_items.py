"""Schedule items: what an investment's contract promises to pay, and when.

Stored in `schedule_items` (validator and indexes: `schemas/schedule_items.json`), one document
per item, built from the fund terms in force on the deposit date (`backend/money/schedule.py`)
when the deposit is confirmed. An item moves `scheduled` -> `due` on its date -> `paid`; the
items of a cancelled investment stay, as `cancelled`.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from enum import StrEnum
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StrictInt, StringConstraints

from backend.models._base import StoredDocument
from backend.models._common import ONE_LINE, Version
from backend.models._types import (
    CalendarDate,
    Currency,
    FundCode,
    NonNegativeMoney,
    ObjectIdStr,
    PyObjectId,
    UtcDateTime,
)
from backend.models.investments import IdempotencyKey, InvestmentId, TermsVersion

ItemNumber = Annotated[StrictInt, Field(ge=1, le=1000)]
PaymentReference = Annotated[str, StringConstraints(min_length=1, max_length=200), ONE_LINE]


class ScheduleItemKind(StrEnum):
    INTEREST = "interest"
    PERFORMANCE_SHARE = "performance_share"
    PRINCIPAL = "principal"


class ScheduleItemStatus(StrEnum):
    SCHEDULED = "scheduled"
    DUE = "due"
    PAID = "paid"
    CANCELLED = "cancelled"


#: Items that are still owed.
OPEN_ITEM_STATUSES = frozenset({ScheduleItemStatus.SCHEDULED, ScheduleItemStatus.DUE})


class ScheduleItem(StoredDocument):
    collection_name = "schedule_items"
    audited = True

    investment_id: PyObjectId
    investment_ref: InvestmentId
    client_id: PyObjectId
    fund_code: FundCode
    terms_version: TermsVersion
    number: ItemNumber
    kind: ScheduleItemKind
    due_date: UtcDateTime
    amount: NonNegativeMoney | None
    currency: Currency
    status: ScheduleItemStatus
    paid_on: UtcDateTime | None = None
    reference: PaymentReference | None = None
    ledger_entry_id: PyObjectId | None = None
    payout_key: IdempotencyKey | None = None
    created_at: UtcDateTime
    updated_at: UtcDateTime
    version: Version


class ScheduleItemRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    number: int
    kind: ScheduleItemKind
    due_date: date
    amount: NonNegativeMoney | None
    currency: str
    status: ScheduleItemStatus
    paid_on: date | None = None
    reference: str | None = None
    ledger_entry_id: ObjectIdStr | None = None


class ScheduleTotals(BaseModel):
    scheduled: NonNegativeMoney
    due: NonNegativeMoney
    paid: NonNegativeMoney
    currency: str
    #: Performance-share items whose amount is not known before their date.
    unpriced_items: int = 0


class ScheduleRead(BaseModel):
    investment_id: str
    investment_ref: str
    fund_code: str
    terms_version: int | None
    incubation_end_date: date | None
    maturity_date: date | None
    items: list[ScheduleItemRead]
    totals: ScheduleTotals


class PayoutRequest(BaseModel):
    """`POST .../schedule/{number}/payout` (with an `Idempotency-Key` header)."""

    model_config = ConfigDict(extra="forbid")

    paid_on: CalendarDate
    reference: PaymentReference
    amount: NonNegativeMoney | None = Field(
        default=None, description="when given, must equal the item's amount (a check, not a "
                                  "change)")


def cents(amount: Decimal) -> Decimal:
    return amount.quantize(Decimal("0.01"))
