"""Daily equity points: one per MT5 account and UTC day (the day's last sync wins).

Stored in `mt5_equity_history` (validator and indexes: `schemas/mt5_equity_history.json`).
"""

from __future__ import annotations

from datetime import UTC, date, datetime

from pydantic import BaseModel, ConfigDict

from backend.models._base import StoredDocument
from backend.models._common import Mt5Login
from backend.models._types import Currency, ObjectIdStr, PyObjectId, SignedMoney, UtcDateTime


def utc_day(moment: datetime) -> datetime:
    """Midnight UTC of the day `moment` falls on: the `day` key of a point."""
    moment = moment.astimezone(UTC)
    return datetime(moment.year, moment.month, moment.day, tzinfo=UTC)


class Mt5EquityPoint(StoredDocument):
    collection_name = "mt5_equity_history"

    mt5_account_id: PyObjectId
    mt5_login: Mt5Login
    day: UtcDateTime
    balance: SignedMoney
    equity: SignedMoney
    currency: Currency
    recorded_at: UtcDateTime


class Mt5EquityPointRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    mt5_account_id: ObjectIdStr
    mt5_login: int
    day: date
    balance: SignedMoney
    equity: SignedMoney
    currency: str
    recorded_at: UtcDateTime
