"""Models and validators agree: for documents generated from each collection's `$jsonSchema`,
and for mutations of them that break one rule, the stored model accepts a document exactly when
the server's validator does (the embedded server, or a real MongoDB, is the oracle)."""

from __future__ import annotations

import string
from collections.abc import Mapping
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from bson import Decimal128, ObjectId
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import WriteError

from backend.db.schema_registry import CollectionSchema, get_registry
from backend.models import STORED_MODELS
from backend.models._base import OUTBOX_FIELD

VALIDATION_FAILED = 121
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
_TEXT = st.characters(codec="utf-8", exclude_categories=["Cs"])


def _types(prop: Mapping[str, Any]) -> list[str]:
    bson_type = prop.get("bsonType", "object")
    return list(bson_type) if isinstance(bson_type, list) else [bson_type]


def _decimals(prop: Mapping[str, Any]) -> st.SearchStrategy[Decimal128]:
    low = Decimal(prop.get("minimum", -(10**15)))
    high = Decimal(prop.get("maximum", 10**15))
    amounts = st.decimals(
        min_value=low, max_value=high, places=4, allow_nan=False, allow_infinity=False
    )
    if prop.get("exclusiveMinimum"):
        amounts = amounts.filter(lambda amount: amount > low)
    # -0 compares equal to 0; the embedded server lets it through exclusiveMinimum.
    return amounts.map(lambda amount: Decimal128(amount if amount else Decimal(0)))


def _strings(prop: Mapping[str, Any]) -> st.SearchStrategy[str]:
    low, high = prop.get("minLength", 0), prop.get("maxLength", 50)
    if "pattern" in prop:
        return st.from_regex(prop["pattern"], fullmatch=True).filter(
            lambda text: low <= len(text) <= high
        )
    return st.text(_TEXT, min_size=low, max_size=min(high, low + 30))


def _dates() -> st.SearchStrategy[datetime]:
    moments = st.datetimes(
        min_value=datetime(1970, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)
    )
    return moments.map(lambda moment: moment.replace(microsecond=moment.microsecond // 1000 * 1000))


def _free_objects() -> st.SearchStrategy[dict[str, Any]]:
    keys = st.text(string.ascii_lowercase, min_size=1, max_size=8)
    values = st.one_of(st.none(), st.integers(-1000, 1000), st.text(_TEXT, max_size=10))
    return st.dictionaries(keys, values, max_size=3)


def value_strategy(prop: Mapping[str, Any]) -> st.SearchStrategy[Any]:
    """BSON-ready Python values for one `$jsonSchema` property (the subset the files use)."""
    if "enum" in prop:
        return st.sampled_from(prop["enum"])
    options: list[st.SearchStrategy[Any]] = []
    for bson_type in _types(prop):
        match bson_type:
            case "null":
                options.append(st.none())
            case "string":
                options.append(_strings(prop))
            case "int" | "long":
                options.append(
                    st.integers(prop.get("minimum", INT64_MIN), prop.get("maximum", INT64_MAX))
                )
            case "bool":
                options.append(st.booleans())
            case "date":
                options.append(_dates())
            case "decimal":
                options.append(_decimals(prop))
            case "double":
                options.append(st.floats(allow_nan=False))
            case "objectId":
                options.append(st.binary(min_size=12, max_size=12).map(ObjectId))
            case "array":
                items = value_strategy(prop.get("items", {"bsonType": "string"}))
                options.append(st.lists(items, max_size=min(prop.get("maxItems", 5), 5)))
            case "object":
                if "properties" in prop:
                    options.append(document_strategy(prop))
                else:
                    options.append(_free_objects())
            case other:
                raise AssertionError(f"no strategy for bsonType {other!r}")
    return st.one_of(options)


def document_strategy(schema: Mapping[str, Any]) -> st.SearchStrategy[dict[str, Any]]:
    properties: Mapping[str, Mapping[str, Any]] = schema.get("properties", {})
    required = set(schema.get("required", ()))
    return st.fixed_dictionaries(
        {name: value_strategy(prop) for name, prop in properties.items() if name in required},
        optional={
            name: value_strategy(prop) for name, prop in properties.items() if name not in required
        },
    )


def _rule_breakers(
    schema: Mapping[str, Any], document: dict[str, Any]
) -> list[tuple[str, dict[str, Any]]]:
    """Copies of a valid document that each break one rule of the schema."""
    properties: Mapping[str, Mapping[str, Any]] = schema["properties"]
    broken: list[tuple[str, dict[str, Any]]] = []

    def variant(label: str, field: str, value: Any) -> None:
        changed = dict(document)
        changed[field] = value
        broken.append((label, changed))

    for field in schema.get("required", ()):
        if field != "_id":
            broken.append((f"missing {field}", {k: v for k, v in document.items() if k != field}))
    for field, prop in properties.items():
        types = _types(prop)
        if field == "_id":
            # The server refuses an array _id before validation (code 53), so only the
            # pattern of a string _id is exercised.
            if "pattern" in prop:
                variant("_id breaks its pattern", field, "!")
            continue
        if "decimal" in types:
            variant(f"float for money {field}", field, 1.5)
            if "maximum" in prop:
                variant(f"{field} above maximum", field, Decimal128(Decimal(prop["maximum"]) + 1))
            if "minimum" in prop:
                low = Decimal(prop["minimum"])
                below = low if prop.get("exclusiveMinimum") else low - Decimal("0.01")
                variant(f"{field} below minimum", field, Decimal128(below))
        elif "array" in types:
            variant(f"wrong type for {field}", field, "not-a-list")
        else:
            variant(f"wrong type for {field}", field, ["wrong"])
        if "enum" in prop:
            variant(f"{field} outside its enum", field, "not_in_enum")
        if "pattern" in prop:
            length = max(prop.get("minLength", 1), 1)
            variant(f"{field} breaks its pattern", field, "!" * length)
        if ("int" in types or "long" in types) and "minimum" in prop:
            variant(f"{field} below minimum", field, prop["minimum"] - 1)
    broken.append(("undeclared field", {**document, "unexpected_field": 1}))
    return broken


_created: set[tuple[str, str]] = set()


async def _validation_collection(
    db: AsyncDatabase[dict[str, Any]], schema: CollectionSchema
) -> Any:
    # Validator only, no indexes: a unique-index collision is not a validator rejection.
    if (db.name, schema.name) not in _created:
        await db.create_collection(schema.name, **schema.create_options())
        _created.add((db.name, schema.name))
    return db[schema.name]


async def _server_accepts(collection: Any, document: dict[str, Any]) -> bool:
    try:
        result = await collection.insert_one(dict(document))
    except WriteError as error:
        assert error.code == VALIDATION_FAILED, error
        return False
    await collection.delete_one({"_id": result.inserted_id})
    return True


def _model_accepts(name: str, document: dict[str, Any]) -> tuple[bool, Any]:
    try:
        return True, STORED_MODELS[name].from_document(document)
    except ValidationError as error:
        return False, error


COLLECTIONS = sorted(get_registry())


def test_every_collection_has_a_stored_model() -> None:
    assert sorted(STORED_MODELS) == COLLECTIONS


@pytest.mark.parametrize("name", COLLECTIONS)
def test_model_fields_match_the_schema(name: str) -> None:
    schema = get_registry()[name]
    model = STORED_MODELS[name]
    stored_names = {info.alias or field for field, info in model.model_fields.items()}
    required = {
        info.alias or field for field, info in model.model_fields.items() if info.is_required()
    }
    # The audit outbox is declared by every audited collection's validator and handled by
    # the base model, never by a field of its own.
    assert (OUTBOX_FIELD in schema.properties) == model.audited
    assert stored_names == set(schema.properties) - {OUTBOX_FIELD}
    assert required == set(schema.required)


@pytest.mark.parametrize("name", COLLECTIONS)
@settings(
    max_examples=25,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
async def test_model_accepts_exactly_what_the_validator_accepts(
    db: AsyncDatabase[dict[str, Any]], name: str, data: st.DataObject
) -> None:
    schema = get_registry()[name]
    collection = await _validation_collection(db, schema)
    document = data.draw(document_strategy(schema.json_schema), label="valid document")

    server_ok = await _server_accepts(collection, document)
    model_ok, model = _model_accepts(name, document)
    assert server_ok, f"a generated document was refused by the validator: {document!r}"
    assert model_ok, f"the validator accepts but the model refuses: {model}"
    # The model's own stored form passes the validator as well.
    assert await _server_accepts(collection, model.to_document()), model.to_document()

    label, broken = data.draw(st.sampled_from(_rule_breakers(schema.json_schema, document)))
    server_ok = await _server_accepts(collection, broken)
    model_ok, outcome = _model_accepts(name, broken)
    assert model_ok == server_ok, (
        f"{label}: validator {'accepts' if server_ok else 'refuses'}, "
        f"model {'accepts' if model_ok else 'refuses'}: {broken!r} ({outcome})"
    )
    if model_ok:
        assert await _server_accepts(collection, outcome.to_document())


@pytest.mark.parametrize("name", COLLECTIONS)
@settings(
    max_examples=2,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
async def test_every_rule_breaker_gets_the_same_verdict(
    db: AsyncDatabase[dict[str, Any]], name: str, data: st.DataObject
) -> None:
    schema = get_registry()[name]
    collection = await _validation_collection(db, schema)
    document = data.draw(document_strategy(schema.json_schema), label="valid document")
    disagreements = []
    for label, broken in _rule_breakers(schema.json_schema, document):
        server_ok = await _server_accepts(collection, broken)
        model_ok, _ = _model_accepts(name, broken)
        if server_ok != model_ok:
            disagreements.append(f"{label}: validator {server_ok}, model {model_ok}")
    assert not disagreements
