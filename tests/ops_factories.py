"""Documents as a legacy or current database holds them, for the data-script tests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from bson import Decimal128, Int64, ObjectId

BCRYPT_HASH = "$2b$04$" + "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0"
T0 = datetime(2025, 10, 4, 9, 30, tzinfo=UTC)


def legacy_user(i: int, *, legacy_type: Any = "client", **fields: Any) -> dict[str, Any]:
    """A user from before the schema: `type` instead of `user_type`, most fields missing."""
    doc: dict[str, Any] = {
        "_id": ObjectId.from_datetime(T0 + timedelta(minutes=i)),
        "username": f"legacy.user{i}",
        "email": f"legacy.user{i}@fidus.test",
        "first_name": "Legacy",
        "last_name": f"User{i}",
        "password_hash": BCRYPT_HASH,
        "type": legacy_type,
    }
    doc["_id"] = ObjectId(str(doc["_id"])[:8] + f"{i:016x}")
    doc.update(fields)
    return doc


def user(i: int, *, user_type: str = "client", **fields: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "_id": ObjectId(), "user_id": f"user_{i:04d}", "username": f"user{i}",
        "email": f"user{i}@fidus.test", "user_type": user_type, "first_name": "Ana",
        "last_name": f"Client{i}", "phone": None, "is_active": True, "kyc_status": "approved",
        "aml_status": "approved", "password_hash": BCRYPT_HASH, "failed_login_attempts": 0,
        "created_at": T0, "updated_at": T0, "version": 1,
    }
    doc.update(fields)
    return doc


def investment(
    client_id: ObjectId, created_by: ObjectId, *, n: int, amount: str = "25000.00",
    deposit: datetime = datetime(2025, 9, 1, tzinfo=UTC), created_at: datetime = T0,
    **fields: Any,
) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "_id": ObjectId(), "investment_id": f"INV-CORE-2025-{n:06d}", "client_id": client_id,
        "fund_code": "CORE", "principal_amount": Decimal128(amount), "currency": "USD",
        "deposit_date": deposit, "status": "active", "status_reason": None,
        "current_value": Decimal128(Decimal(amount) + Decimal("123.4567")),
        "gain_amount": None, "return_pct": None, "performance_updated_at": None,
        "mt5_account_id": None, "idempotency_key": None, "redeemed_at": None,
        "cancelled_at": None, "created_by": created_by, "created_at": created_at,
        "updated_at": created_at, "version": Int64(3),
    }
    doc.update(fields)
    return doc
