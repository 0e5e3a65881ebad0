"""The capital ledger: one entry per movement of money, append-only.

Stored in `ledger_entries` (validator and indexes: `schemas/ledger_entries.json`). An entry is
never edited or deleted: a mistake is undone by a `reversal` entry that names the entry it
reverses. Each entry carries an idempotency key derived from the movement itself (the
investment's subscription, a schedule item's payment, the entry a reversal cancels), unique in
the collection, so a retried or concurrent booking stores the movement exactly once. Balances
are computed from entries, never stored beside them.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from enum import StrEnum
from typing import Annotated

from pydantic import BaseModel, ConfigDict, StrictInt, StringConstraints

from backend.models._base import StoredDocument
from backend.models._common import Reason
from backend.models._types import (
    Currency,
    FundCode,
    NonNegativeMoney,
    ObjectIdStr,
    PyObjectId,
    UtcDateTime,
)
from backend.models.audit_log import ActorType
from backend.models.investments import IdempotencyKey, InvestmentId
from backend.models.schedule_items import ItemNumber, PaymentReference

LedgerKey = Annotated[str, StringConstraints(min_length=8, max_length=200,
                                             pattern=r"^[a-z_]+:[A-Za-z0-9:._-]{1,190}$")]


class LedgerEntryKind(StrEnum):
    SUBSCRIPTION = "subscription"
    INTEREST_PAID = "interest_paid"
    PERFORMANCE_SHARE_PAID = "performance_share_paid"
    PRINCIPAL_RETURNED = "principal_returned"
    REVERSAL = "reversal"


class Direction(StrEnum):
    IN = "in"    # the client paid the fund
    OUT = "out"  # the fund paid the client


class LedgerEntry(StoredDocument):
    collection_name = "ledger_entries"

    kind: LedgerEntryKind
    direction: Direction
    client_id: PyObjectId
    investment_id: PyObjectId
    investment_ref: InvestmentId
    fund_code: FundCode
    schedule_number: ItemNumber | None = None
    amount: NonNegativeMoney
    currency: Currency
    effective_date: UtcDateTime
    booked_at: UtcDateTime
    actor_id: PyObjectId | None = None
    actor_type: ActorType
    idempotency_key: LedgerKey
    request_key: IdempotencyKey | None = None
    reverses: PyObjectId | None = None
    reference: PaymentReference | None = None
    reason: Reason | None = None

    @property
    def signed_amount(self) -> Decimal:
        """Into the fund positive, out of it negative."""
        return self.amount if self.direction is Direction.IN else -self.amount


class LedgerEntryRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: ObjectIdStr
    kind: LedgerEntryKind
    direction: Direction
    client_id: ObjectIdStr
    investment_id: ObjectIdStr
    investment_ref: str
    fund_code: str
    schedule_number: StrictInt | None = None
    amount: NonNegativeMoney
    currency: str
    effective_date: date
    booked_at: UtcDateTime
    idempotency_key: str
    reverses: ObjectIdStr | None = None
    reference: str | None = None
    reason: str | None = None
