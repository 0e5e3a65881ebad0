"""Investments: a client's principal in a fund, its status and its performance from MT5.

Stored in `investments` (validator and indexes: `schemas/investments.json`). The index
`investments_no_duplicate` is the business rule against recording the same deposit twice.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from decimal import Decimal
from enum import StrEnum
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StrictInt, StringConstraints

from backend.models._base import StoredDocument
from backend.models._common import ExpectedVersion, Reason, Version
from backend.models._types import (
    CalendarDate,
    Currency,
    DecimalNumber,
    FundCode,
    NonNegativeMoney,
    ObjectIdStr,
    PositiveMoney,
    PyObjectId,
    SignedMoney,
    UtcDateTime,
)

INVESTMENT_ID_PATTERN = r"^INV-[A-Z0-9][A-Z0-9-]{3,47}$"
IDEMPOTENCY_KEY_PATTERN = r"^[A-Za-z0-9._:-]{8,128}$"

InvestmentId = Annotated[
    str, StringConstraints(min_length=8, max_length=52, pattern=INVESTMENT_ID_PATTERN)
]
IdempotencyKey = Annotated[
    str, StringConstraints(min_length=8, max_length=128, pattern=IDEMPOTENCY_KEY_PATTERN)
]
ReturnPercent = Annotated[DecimalNumber, Field(ge=-100, le=1_000_000)]
Units = Annotated[DecimalNumber, Field(ge=0)]
TermsVersion = Annotated[StrictInt, Field(ge=1, le=1_000_000)]


class InvestmentStatus(StrEnum):
    """pending (money announced) -> incubating (deposit confirmed) -> active (incubation over)
    -> matured (maturity reached) -> closed (principal paid); pending -> cancelled.
    `redeemed` is the legacy end state from before the money engine; the migration
    m20261130120000 makes it `closed`."""

    PENDING = "pending"
    INCUBATING = "incubating"
    ACTIVE = "active"
    MATURED = "matured"
    CLOSED = "closed"
    CANCELLED = "cancelled"
    REDEEMED = "redeemed"


#: Statuses under which an investment counts for the duplicate rule (the partial unique index).
LIVE_STATUSES = frozenset(set(InvestmentStatus) - {InvestmentStatus.CANCELLED})
#: Statuses whose money is in the fund: the deposit was confirmed and not yet paid back.
INVESTED_STATUSES = frozenset({InvestmentStatus.INCUBATING, InvestmentStatus.ACTIVE,
                               InvestmentStatus.MATURED})


def deposit_day(day: date) -> datetime:
    """The stored form of a deposit date: midnight UTC of that day."""
    return datetime.combine(day, time.min, tzinfo=UTC)


class Investment(StoredDocument):
    collection_name = "investments"
    audited = True

    investment_id: InvestmentId
    client_id: PyObjectId
    fund_code: FundCode
    principal_amount: PositiveMoney
    currency: Currency
    deposit_date: UtcDateTime
    terms_version: TermsVersion | None = None
    incubation_end_date: UtcDateTime | None = None
    maturity_date: UtcDateTime | None = None
    invitation_reason: Reason | None = None
    status: InvestmentStatus
    status_reason: Reason | None = None
    current_value: NonNegativeMoney
    gain_amount: SignedMoney | None = None
    return_pct: ReturnPercent | None = None
    performance_updated_at: UtcDateTime | None = None
    #: Units of its MT5 account held at the last valuation (`backend.money.units`).
    units: Units | None = None
    #: No deposit deal paired with it yet: valued at cost, holding no units.
    awaiting_deposit: bool | None = None
    mt5_account_id: PyObjectId | None = None
    idempotency_key: IdempotencyKey | None = None
    redeemed_at: UtcDateTime | None = None
    cancelled_at: UtcDateTime | None = None
    closed_at: UtcDateTime | None = None
    created_by: PyObjectId
    created_at: UtcDateTime
    updated_at: UtcDateTime
    version: Version

    def performance(self, current_value: Decimal) -> tuple[Decimal, Decimal]:
        """Gain and return in percent (2 places) for a new current value."""
        gain = current_value - self.principal_amount
        return gain, (gain * 100 / self.principal_amount).quantize(Decimal("0.01"))


class InvestmentCreate(BaseModel):
    """`POST /api/v1/admin/investments` (with an `Idempotency-Key` header)."""

    model_config = ConfigDict(extra="forbid")

    client_id: PyObjectId
    fund_code: FundCode
    principal_amount: PositiveMoney = Field(
        description="decimal string, e.g. '50000.00'; a JSON float is refused"
    )
    currency: Currency
    deposit_date: CalendarDate
    deposit_received: bool = Field(
        default=True, description="false records the investment as pending: the money is "
                                  "announced, not yet received; the status route confirms it")
    invitation_reason: Reason | None = Field(
        default=None, description="required by an invitation-only fund")


class InvestmentStatusUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    status: InvestmentStatus
    reason: Reason | None = None
    version: ExpectedVersion | None = Field(default=None,
                                             description="expected version, for conflicts")
    deposit_date: CalendarDate | None = Field(
        default=None, description="confirming a pending investment: the day the money arrived "
                                  "(default: the recorded deposit date)")


class InvestmentRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: ObjectIdStr
    investment_id: str
    client_id: ObjectIdStr
    fund_code: str
    principal_amount: PositiveMoney
    currency: str
    deposit_date: UtcDateTime
    terms_version: int | None = None
    incubation_end_date: date | None = None
    maturity_date: date | None = None
    status: InvestmentStatus
    current_value: NonNegativeMoney
    gain_amount: SignedMoney | None = None
    return_pct: ReturnPercent | None = None
    performance_updated_at: UtcDateTime | None = None
    units: Units | None = None
    awaiting_deposit: bool | None = Field(
        default=None, description="true while its money is not seen in its MT5 account: "
                                  "valued at cost and left out of the value per unit")
    mt5_account_id: ObjectIdStr | None = None
    created_by: ObjectIdStr
    created_at: UtcDateTime
    updated_at: UtcDateTime
    version: int
