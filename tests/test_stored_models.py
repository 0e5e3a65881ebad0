"""The repositories' read path (`from_stored`) builds exactly the model full validation builds,
for every document the server's validator accepts, and hands anything unexpected to full
validation."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC
from decimal import Decimal
from typing import Any
from unittest import mock

import pytest
from bson import Decimal128, Int64, ObjectId
from bson.codec_options import CodecOptions
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError
from pymongo.asynchronous.database import AsyncDatabase

from backend.db.schema_registry import get_registry
from backend.models import STORED_MODELS
from backend.models._base import OUTBOX_FIELD, StoredDocument
from backend.models._types import bson_to_decimal, decimal_to_bson
from backend.models.investments import Investment, InvestmentStatus
from backend.repositories.investments import InvestmentRepository
from tests import ops_factories as f
from tests.test_schemas_agreement import COLLECTIONS, document_strategy

FAST = [name for name in COLLECTIONS if STORED_MODELS[name]._read_plan is not None]


@contextmanager
def full_validation_forbidden(model: type[StoredDocument]) -> Iterator[None]:
    def refuse(raw: Any) -> Any:
        raise AssertionError(f"from_stored fell back to full validation for {dict(raw)!r}")

    with mock.patch.object(model, "from_document", side_effect=refuse):
        yield


def test_every_stored_model_has_a_read_plan() -> None:
    assert FAST == COLLECTIONS


def _same_model(left: StoredDocument, right: StoredDocument) -> None:
    assert left == right
    assert left.__pydantic_fields_set__ == right.__pydantic_fields_set__
    for name in type(left).model_fields:
        assert type(getattr(left, name)) is type(getattr(right, name)), name
    assert left.to_document() == right.to_document()
    assert left.model_dump(mode="json") == right.model_dump(mode="json")


@pytest.mark.parametrize("name", FAST)
@settings(max_examples=20, deadline=None, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(data=st.data())
async def test_a_document_the_validator_accepted_loads_as_full_validation_loads_it(
        db: AsyncDatabase[dict[str, Any]], name: str, data: st.DataObject) -> None:
    schema = get_registry()[name]
    if name not in await db.list_collection_names():
        await db.create_collection(name, **schema.create_options())
    every_field = {**schema.json_schema,
                   "required": [p for p in schema.properties if p != OUTBOX_FIELD]}
    document = data.draw(document_strategy(every_field), label="stored document")
    document.pop(OUTBOX_FIELD, None)
    inserted = await db[name].insert_one(document)
    raw = await db[name].find_one({"_id": inserted.inserted_id})
    await db[name].delete_one({"_id": inserted.inserted_id})
    assert raw is not None
    model = STORED_MODELS[name]

    expected = model.from_document(raw)
    with full_validation_forbidden(model):
        loaded = model.from_stored(raw)
    _same_model(loaded, expected)


def _stored_investment() -> dict[str, Any]:
    """Every field of an investment in its stored form, the version as int64 as MongoDB keeps
    a counter that was incremented."""
    legacy_shaped = f.investment(ObjectId(), ObjectId(), n=7, idempotency_key="key-0000000007")
    stored = Investment.from_document(legacy_shaped).to_document()
    stored["version"] = Int64(3)
    return stored


def test_stored_forms_become_the_models_types() -> None:
    raw = _stored_investment()
    with full_validation_forbidden(Investment):
        loaded = Investment.from_stored(raw)
    assert loaded.status is InvestmentStatus.ACTIVE
    assert loaded.principal_amount == Decimal("25000.00")
    assert type(loaded.principal_amount) is Decimal
    assert type(loaded.version) is int and loaded.version == 3
    assert loaded.deposit_date.tzinfo is UTC


@pytest.mark.parametrize(("label", "change"), [
    ("an undeclared field", {"unexpected": 1}),
    ("money as a float", {"principal_amount": 25000.0}),
    ("a date as ISO text", {"created_at": "2025-01-01T00:00:00Z"}),
    ("a date that is not one", {"created_at": "yesterday"}),
    ("a status outside its enum", {"status": "frozen"}),
    ("an id as a number", {"client_id": 12}),
    ("an id as hex text", {"client_id": "665f1c2ab8e4a1d2c3b4a5f6"}),
])
def test_a_document_the_plan_does_not_expect_gets_full_validations_verdict(
        label: str, change: dict[str, Any]) -> None:
    raw = {**_stored_investment(), **change}
    try:
        expected = Investment.from_document(raw)
    except ValidationError as refusal:
        with pytest.raises(ValidationError) as refused:
            Investment.from_stored(raw)
        assert refused.value.errors(include_context=False) == (
            refusal.errors(include_context=False)), label
    else:
        _same_model(Investment.from_stored(raw), expected)


async def test_a_repository_on_a_client_without_aware_dates_validates_fully(
        db: AsyncDatabase[dict[str, Any]]) -> None:
    raw = _stored_investment()
    await db["investments"].insert_one(raw)
    naive = db.client.get_database(db.name, codec_options=CodecOptions(tz_aware=False))
    with pytest.raises(ValidationError):
        await InvestmentRepository(naive).get(raw["_id"])  # a naive date is refused
    assert (await InvestmentRepository(db).get(raw["_id"])).created_at.tzinfo is UTC


def test_a_missing_optional_field_gets_its_default_through_full_validation() -> None:
    raw = {k: v for k, v in _stored_investment().items() if k != "redeemed_at"}
    loaded = Investment.from_stored(raw)
    assert loaded.redeemed_at is None
    assert loaded == Investment.from_document(raw)


def test_the_audit_outbox_is_not_part_of_the_model() -> None:
    raw = {**_stored_investment(), OUTBOX_FIELD: [{"_id": ObjectId(), "action": "x"}]}
    with full_validation_forbidden(Investment):
        loaded = Investment.from_stored(raw)
    assert OUTBOX_FIELD not in loaded.to_document()


async def test_a_created_investment_equals_the_one_read_back(
        synced_db: AsyncDatabase[dict[str, Any]]) -> None:
    repo = InvestmentRepository(synced_db)
    raw = _stored_investment()
    raw.pop("_id")
    created = await repo.create(Investment.from_document(raw))
    read = await repo.get(created.id or ObjectId())
    _same_model(created, read)
    assert type(read.current_value) is Decimal
    stored = await synced_db["investments"].find_one({"_id": created.id})
    assert stored is not None and type(stored["current_value"]) is Decimal128


@pytest.mark.parametrize("text", [
    "0", "-0", "0.00", "-0.00", "1", "-1", "10000.00", "-5.000", "0.01", "0.000001", "1E-7",
    "1E+2", "-1.5E+3", "123456789012345678901234.5678901234", "1E+15", "0E-10", "999999999999999",
])
def test_decimal128_conversion_is_exact_for_every_written_form(text: str) -> None:
    amount = Decimal(text)
    stored = decimal_to_bson(amount)
    assert stored.bid == Decimal128(amount).bid
    back = bson_to_decimal(stored)
    assert str(back) == str(amount) and back.as_tuple() == amount.as_tuple()
