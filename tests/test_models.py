"""The shared field types and the stored-document conversions, without a server."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import bson
import pytest
from bson import Decimal128, ObjectId
from hypothesis import given
from hypothesis import strategies as st
from pydantic import BaseModel, ValidationError

from backend.models import (
    AuditRecord,
    AuditRecordRead,
    Investment,
    InvestmentCreate,
    Lock,
    Mt5Account,
    Mt5AccountRead,
    User,
    UserCreate,
    UserRead,
)
from backend.models._types import (
    Money,
    ObjectIdStr,
    PyObjectId,
    UtcDateTime,
    bson_to_decimal,
    decimal_to_bson,
)

NOW = datetime(2025, 10, 4, 12, 0, tzinfo=UTC)


class Holder(BaseModel):
    amount: Money | None = None
    at: UtcDateTime | None = None
    ref: PyObjectId | None = None
    ref_text: ObjectIdStr | None = None


def an_investment(**overrides: Any) -> dict[str, Any]:
    document: dict[str, Any] = {
        "_id": ObjectId("665f1c2ab8e4a1d2c3b4a5f6"),
        "investment_id": "INV-CORE-0001",
        "client_id": ObjectId(),
        "fund_code": "CORE",
        "principal_amount": Decimal128("10000.00"),
        "currency": "USD",
        "deposit_date": datetime(2025, 10, 1, tzinfo=UTC),
        "status": "active",
        "current_value": Decimal128("10250.50"),
        "gain_amount": Decimal128("250.50"),
        "created_by": ObjectId(),
        "created_at": NOW,
        "updated_at": NOW,
        "version": 1,
    }
    document.update(overrides)
    return document


@pytest.mark.parametrize("value", [Decimal("10.5"), Decimal128("10.5"), "10.5", "10.50"])
def test_money_accepts_exact_forms(value: Any) -> None:
    assert Holder(amount=value).amount == Decimal("10.5")


def test_money_from_the_api_is_stored_to_the_cent() -> None:
    # A JSON integer or a string with fewer decimals becomes N.00 / N.N0, never "10000".
    assert str(Holder(amount=10000).amount) == "10000.00"
    assert str(Holder.model_validate_json('{"amount": 13000}').amount) == "13000.00"
    assert str(Holder(amount="13000").amount) == "13000.00"
    assert str(Holder(amount="13000.5").amount) == "13000.50"
    assert str(Holder(amount="-7.25").amount) == "-7.25"


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (10.5, "never a float"),
        (10000.0, "never a float"),
        (True, "never a float"),
        ("NaN", "ASCII digits"),
        (Decimal("Infinity"), "finite"),
        ("ten", "ASCII digits"),
        ("1E+16", "ASCII digits"),
        ("10000000000000000", "at most"),
        (10**16, "at most"),
        ("1." + "1" * 40, "ASCII digits"),
        # Non-canonical forms the API once stored as given.
        ("1E4", "ASCII digits"),
        ("10000.1000000", "ASCII digits"),
        ("10000.001", "ASCII digits"),
        ("\u0661\u0660\u0660\u0660\u0660", "ASCII digits"),  # Arabic-Indic digits
        ("\uff11\uff10\uff10\uff10\uff10", "ASCII digits"),  # full-width digits
        ("12_500.00", "ASCII digits"),
        ("+13000.00", "ASCII digits"),
        (" 13500.00 ", "ASCII digits"),
        ("13500.", "ASCII digits"),
        (".50", "ASCII digits"),
        ("13500.00\n", "ASCII digits"),
    ],
)
def test_money_refuses(value: Any, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        Holder(amount=value)


def test_money_is_a_fixed_point_string_in_json() -> None:
    assert Holder(amount=Decimal("1E+5")).model_dump_json() == (
        '{"amount":"100000","at":null,"ref":null,"ref_text":null}'
    )


def test_money_float_in_a_json_body_is_refused() -> None:
    body = '{"client_id": "665f1c2ab8e4a1d2c3b4a5f6", "fund_code": "CORE",'
    with pytest.raises(ValidationError, match="never a float"):
        InvestmentCreate.model_validate_json(
            body + ' "principal_amount": 10000.5, "currency": "USD", "deposit_date": "2025-10-01"}'
        )
    created = InvestmentCreate.model_validate_json(
        body + ' "principal_amount": "10000.50", "currency": "USD", "deposit_date": "2025-10-01"}'
    )
    assert created.principal_amount == Decimal("10000.50")
    assert isinstance(created.client_id, ObjectId)


@given(
    st.decimals(min_value=Decimal("-1E+15"), max_value=Decimal("1E+15"), allow_nan=False, places=6)
)
def test_fast_decimal128_conversions_are_exact(amount: Decimal) -> None:
    stored = decimal_to_bson(amount)
    assert stored.bid == Decimal128(amount).bid
    back = bson_to_decimal(stored)
    assert str(back) == str(Decimal128(amount).to_decimal())


def test_utc_datetime_normalises_and_refuses_naive() -> None:
    paris = timezone(timedelta(hours=2))
    held = Holder(at=datetime(2025, 10, 4, 14, 0, 0, 123456, tzinfo=paris))
    assert held.at == datetime(2025, 10, 4, 12, 0, 0, 123000, tzinfo=UTC)
    assert held.at is not None and held.at.tzinfo is UTC
    with pytest.raises(ValidationError, match="timezone"):
        Holder(at=datetime(2025, 10, 4, 12, 0))


def test_object_ids() -> None:
    oid = ObjectId()
    assert Holder(ref=str(oid)).ref == oid
    assert Holder(ref_text=oid).ref_text == str(oid)
    assert f'"ref":"{oid}"' in Holder(ref=oid).model_dump_json()
    for bad in ("xyz", "z" * 24, 12):
        with pytest.raises(ValidationError):
            Holder(ref=bad)


def test_to_document_is_bson_ready_and_round_trips() -> None:
    raw = an_investment()
    investment = Investment.from_document(raw)
    stored = investment.to_document()
    assert list(stored)[0] == "_id"
    assert stored["principal_amount"] == Decimal128("10000.00")
    assert stored["status"] == "active"
    assert stored["mt5_account_id"] is None
    decoded: dict[str, Any] = bson.decode(
        bson.encode(stored), codec_options=bson.CodecOptions(tz_aware=True)
    )
    assert Investment.from_document(decoded) == investment
    assert {k: v for k, v in stored.items() if v is not None} == raw


def test_new_document_leaves_id_to_the_driver() -> None:
    raw = an_investment()
    del raw["_id"]
    assert "_id" not in Investment.from_document(raw).to_document()


def test_unknown_field_is_refused() -> None:
    with pytest.raises(ValidationError, match="Extra inputs"):
        Investment.from_document(an_investment(type="client"))


def test_lock_uses_its_name_as_id() -> None:
    lock = Lock.from_document(
        {"_id": "migrations", "owner": "host:1:abc", "acquired_at": NOW, "expires_at": NOW}
    )
    assert lock.to_document()["_id"] == "migrations"


def test_read_models_never_carry_secrets() -> None:
    user = User.from_document(
        {
            "_id": ObjectId(),
            "user_id": "client_alejandro",
            "username": "alejandro",
            "email": "Alejandro@Example.com",
            "user_type": "client",
            "first_name": "Alejandro",
            "last_name": "Mariscal",
            "is_active": True,
            "kyc_status": "pending",
            "aml_status": "pending",
            "password_hash": "$2b$12$" + "a" * 53,
            "failed_login_attempts": 0,
            "created_at": NOW,
            "updated_at": NOW,
            "version": 1,
        }
    )
    assert user.email == "alejandro@example.com"
    shown = UserRead.model_validate(user, from_attributes=True).model_dump_json()
    # The one password field shown is the flag that a new password is due, never a value.
    assert "$2b$" not in shown and "hash" not in shown
    assert [key for key in json.loads(shown) if "password" in key] == ["password_change_required"]
    assert "password" not in UserRead.model_fields

    account = Mt5Account.from_document(
        {
            "account_id": "MT5-CORE-0001",
            "client_id": ObjectId(),
            "fund_code": "CORE",
            "mt5_login": 886557,
            "broker_code": "MULTIBANK",
            "server": "MEXAtlantic-Real",
            "investor_password_encrypted": "gAAAAABsecretsecretsecret",
            "currency": "USD",
            "is_active": True,
            "sync_status": "never_synced",
            "balance": Decimal128("100000.00"),
            "created_at": NOW,
            "updated_at": NOW,
            "version": 1,
            "_id": ObjectId(),
        }
    )
    shown = Mt5AccountRead.model_validate(account, from_attributes=True).model_dump_json()
    assert "password" not in shown and "gAAAA" not in shown
    assert '"balance":"100000.00"' in shown


def test_audit_read_makes_snapshots_json_friendly() -> None:
    oid = ObjectId()
    record = AuditRecord(
        actor_type="admin",
        action="investment.create",
        entity_type="investment",
        entity_id=str(oid),
        before=None,
        after={"_id": oid, "principal_amount": Decimal("10000.00"), "at": NOW},
        at=NOW,
        id=ObjectId(),
    )
    stored = record.to_document()
    assert stored["after"]["principal_amount"] == Decimal128("10000.00")
    read = AuditRecordRead.model_validate(AuditRecord.from_document(stored), from_attributes=True)
    assert read.after == {"_id": str(oid), "principal_amount": "10000.00", "at": NOW.isoformat()}


def test_user_create_normalises_username_and_email() -> None:
    created = UserCreate(
        email="Alejandro@Example.com",
        username="Alejandro",
        password="correct horse battery",
        first_name="Alejandro",
        last_name="Mariscal",
    )
    assert created.username == "alejandro"
    assert created.email.endswith("@example.com")
    with pytest.raises(ValidationError):
        UserCreate(
            email="a@example.com", username="al", password="short", first_name="A", last_name="B"
        )
