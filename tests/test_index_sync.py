"""Index sync against a real server (embedded, or FIDUS_TEST_MONGODB_URI): the seed's index
counts, uniqueness and TTL, idempotence, validator errors and drift handling."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from bson import Decimal128, ObjectId
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError, WriteError

from backend.db import index_sync
from backend.db.index_sync import DriftKind, ValidatorAction
from backend.db.schema_registry import get_registry
from backend.models import User

SEED_INDEX_COUNTS = {
    "users": 8,
    "investments": 10,
    "crm_prospects": 8,
    "mt5_accounts": 9,
    "sessions": 6,
    "documents": 7,
    "admin_google_sessions": 6,
}
#: Beyond the seed's 54: an Idempotency-Key index on every collection an API route creates
#: documents in (users, prospects, MT5 mappings, documents), and the conversion's unique key
#: on users (`source_prospect_id`).
INTEGRITY_INDEXES = {"users": 2, "crm_prospects": 1, "mt5_accounts": 1, "documents": 1}
NOW = datetime(2025, 10, 4, 12, 0, tzinfo=UTC)
BCRYPT = "$2b$12$" + "a" * 53


def a_user(**overrides: Any) -> dict[str, Any]:
    document: dict[str, Any] = {
        "user_id": "client_alejandro",
        "username": "alejandro",
        "email": "alejandro@example.com",
        "user_type": "client",
        "first_name": "Alejandro",
        "last_name": "Mariscal",
        "is_active": True,
        "kyc_status": "approved",
        "aml_status": "approved",
        "password_hash": BCRYPT,
        "failed_login_attempts": 0,
        "created_at": NOW,
        "updated_at": NOW,
        "version": 1,
    }
    document.update(overrides)
    return document


def an_investment(**overrides: Any) -> dict[str, Any]:
    document: dict[str, Any] = {
        "investment_id": "INV-CORE-0001",
        "client_id": ObjectId("665f1c2ab8e4a1d2c3b4a5f6"),
        "fund_code": "CORE",
        "principal_amount": Decimal128("10000.00"),
        "currency": "USD",
        "deposit_date": datetime(2025, 10, 1, tzinfo=UTC),
        "status": "active",
        "current_value": Decimal128("10000.00"),
        "created_by": ObjectId(),
        "created_at": NOW,
        "updated_at": NOW,
        "version": 1,
    }
    document.update(overrides)
    return document


async def test_sync_on_empty_database_gives_the_seed_index_counts(
    synced_db: AsyncDatabase[dict[str, Any]],
) -> None:
    counts = {name: len(await synced_db[name].index_information()) for name in SEED_INDEX_COUNTS}
    assert counts == {name: count + INTEGRITY_INDEXES.get(name, 0)
                      for name, count in SEED_INDEX_COUNTS.items()}
    assert sum(counts.values()) == 54 + sum(INTEGRITY_INDEXES.values())
    for name in get_registry():
        info = await synced_db[name].index_information()
        assert len(info) == get_registry().declared_index_count(name), name


async def test_unique_and_ttl_indexes_are_in_place(
    synced_db: AsyncDatabase[dict[str, Any]],
) -> None:
    expected_unique = {
        "users": ["email"],
        "investments": ["investment_id"],
        "mt5_accounts": ["account_id"],
        "sessions": ["token_hash"],
        "crm_prospects": ["email"],
    }
    for name, fields in expected_unique.items():
        info = await synced_db[name].index_information()
        unique_keys = [[k for k, _ in spec["key"]] for spec in info.values() if spec.get("unique")]
        for field in fields:
            assert [field] in unique_keys, (name, field)
    users = await synced_db["users"].index_information()
    assert users["users_username_unique"]["unique"] is True
    for name, field in (("sessions", "expires_at"), ("admin_google_sessions", "token_expires_at")):
        info = await synced_db[name].index_information()
        ttl = [spec for spec in info.values() if "expireAfterSeconds" in spec]
        assert [[k for k, _ in spec["key"]] for spec in ttl] == [[field]]
        assert ttl[0]["expireAfterSeconds"] == 0


async def test_second_plan_creates_nothing(synced_db: AsyncDatabase[dict[str, Any]]) -> None:
    second = await index_sync.plan(synced_db)
    assert second.in_sync
    assert second.indexes_to_create == 0
    assert all(item.validator_action is ValidatorAction.NONE for item in second.collections)
    report = await index_sync.apply(synced_db, second)
    assert report.created == 0
    assert report.exit_code == 0


async def test_first_apply_reports_every_created_index(db: AsyncDatabase[dict[str, Any]]) -> None:
    report = await index_sync.sync(db)
    assert report.exit_code == 0, report.errors
    by_name = {row.collection: row for row in report.rows}
    assert by_name["investments"].created == 9
    assert by_name["investments"].present == 10
    assert by_name["users"].validator == "created"
    assert report.created == sum(len(s.indexes) for s in get_registry().values())


async def test_dry_run_changes_nothing(db: AsyncDatabase[dict[str, Any]]) -> None:
    sync_plan = await index_sync.plan(db)
    report = await index_sync.apply(db, sync_plan, dry_run=True)
    assert await db.list_collection_names() == []
    assert report.created == sum(len(s.indexes) for s in get_registry().values())
    assert report.exit_code == 1
    assert "users: create index users_email_unique" in sync_plan.describe()


async def test_validator_refuses_a_bad_document_with_121(
    synced_db: AsyncDatabase[dict[str, Any]],
) -> None:
    with pytest.raises(WriteError) as refused:
        await synced_db["users"].insert_one(a_user(user_type="superuser"))
    assert refused.value.code == 121
    assert await synced_db["users"].count_documents({}) == 0
    # The same document made valid goes in, and what the model writes back is accepted too.
    await synced_db["users"].insert_one(User.from_document(a_user()).to_document())
    assert await synced_db["users"].count_documents({}) == 1


async def test_float_money_is_refused_by_validator_and_model(
    synced_db: AsyncDatabase[dict[str, Any]],
) -> None:
    from pydantic import ValidationError

    from backend.models import Investment

    with pytest.raises(WriteError) as refused:
        await synced_db["investments"].insert_one(an_investment(principal_amount=10000.0))
    assert refused.value.code == 121
    with pytest.raises(ValidationError, match="never a float"):
        Investment.from_document(an_investment(principal_amount=10000.0))
    await synced_db["investments"].insert_one(an_investment())
    stored = await synced_db["investments"].find_one({})
    assert stored is not None
    assert Investment.from_document(stored).principal_amount == Decimal("10000.00")


async def test_duplicate_email_fails_with_11000_whatever_its_case(
    synced_db: AsyncDatabase[dict[str, Any]],
) -> None:
    users = synced_db["users"]
    await users.insert_one(a_user())
    with pytest.raises(DuplicateKeyError) as duplicate:
        await users.insert_one(
            a_user(user_id="client_other", username="other", email="alejandro@example.com")
        )
    assert duplicate.value.code == 11000
    # The model stores e-mails lower-case; the collated index also catches a raw upper-case one.
    raw = a_user(user_id="client_third", username="third")
    raw["email"] = "ALEJANDRO@example.com"
    with pytest.raises(DuplicateKeyError):
        await users.insert_one(raw)
    assert await users.count_documents({}) == 1


async def test_duplicate_investment_rule_ignores_cancelled_ones(
    synced_db: AsyncDatabase[dict[str, Any]],
) -> None:
    investments = synced_db["investments"]
    await investments.insert_one(an_investment())
    with pytest.raises(DuplicateKeyError):
        await investments.insert_one(an_investment(investment_id="INV-CORE-0002"))
    await investments.insert_one(an_investment(investment_id="INV-CORE-0003", status="cancelled"))
    # Investments without an idempotency key never collide with one another on it.
    await investments.insert_one(
        an_investment(investment_id="INV-CORE-0004", principal_amount=Decimal128("20000"))
    )
    await investments.insert_one(
        an_investment(
            investment_id="INV-CORE-0005",
            principal_amount=Decimal128("30000"),
            idempotency_key="key-00000001",
        )
    )
    with pytest.raises(DuplicateKeyError):
        await investments.insert_one(
            an_investment(
                investment_id="INV-CORE-0006",
                principal_amount=Decimal128("40000"),
                idempotency_key="key-00000001",
            )
        )
    assert await investments.count_documents({}) == 4


async def test_drift_is_reported_and_dropped_only_with_allow_drop(
    synced_db: AsyncDatabase[dict[str, Any]],
) -> None:
    users = synced_db["users"]
    await users.drop_index("users_is_active")
    await users.create_index(
        [("is_active", -1)], name="users_is_active"
    )  # declared name, other keys
    await users.create_index([("phone", 1)], name="users_phone_adhoc")  # nobody declared it

    drifting = await index_sync.plan(synced_db)
    kinds = {(d.name, d.kind) for d in drifting.drift}
    assert kinds == {
        ("users_is_active", DriftKind.CHANGED),
        ("users_phone_adhoc", DriftKind.UNDECLARED),
    }
    report = await index_sync.apply(synced_db, drifting)
    assert report.exit_code == 1
    assert report.drifted == 2
    info = await users.index_information()
    assert "users_phone_adhoc" in info
    assert info["users_is_active"]["key"] == [("is_active", -1)]

    report = await index_sync.apply(synced_db, await index_sync.plan(synced_db), allow_drop=True)
    assert report.exit_code == 0, report.errors
    info = await users.index_information()
    assert "users_phone_adhoc" not in info
    assert info["users_is_active"]["key"] == [("is_active", 1), ("user_type", 1)]
    assert (await index_sync.plan(synced_db)).in_sync


async def test_changed_options_under_a_declared_name_are_drift(
    synced_db: AsyncDatabase[dict[str, Any]],
) -> None:
    sessions = synced_db["sessions"]
    await sessions.drop_index("sessions_expires_at_ttl")
    await sessions.create_index(
        [("expires_at", 1)], name="sessions_expires_at_ttl", expireAfterSeconds=3600
    )
    crm = synced_db["crm_prospects"]
    await crm.drop_index("crm_prospects_email_unique")
    await crm.create_index([("email", 1)], name="crm_prospects_email_unique", unique=True)

    drift = {d.name: d for d in (await index_sync.plan(synced_db)).drift}
    assert set(drift) == {"sessions_expires_at_ttl", "crm_prospects_email_unique"}
    assert "expireAfterSeconds" in drift["sessions_expires_at_ttl"].detail
    assert "collation" in drift["crm_prospects_email_unique"].detail


async def test_an_undeclared_index_on_declared_keys_blocks_creation_and_is_reported(
    db: AsyncDatabase[dict[str, Any]],
) -> None:
    schema = get_registry()["migrations"]
    await db.create_collection("migrations", **schema.create_options())
    await db["migrations"].create_index([("version", 1)], name="legacy_version", unique=True)

    sync_plan = await index_sync.plan(db, {"migrations": schema})
    assert [(d.name, d.kind) for d in sync_plan.drift] == [("legacy_version", DriftKind.CONFLICT)]
    assert sync_plan.indexes_to_create == 0
    report = await index_sync.apply(db, sync_plan, allow_drop=True)
    assert report.exit_code == 0, report.errors
    assert set(await db["migrations"].index_information()) == {"_id_", "migrations_version_unique"}


async def test_a_failing_index_is_reported_and_the_others_still_created(
    db: AsyncDatabase[dict[str, Any]],
) -> None:
    schema = get_registry()["migrations"]
    record = {
        "version": "20251004120000",
        "name": "initial",
        "checksum": "0" * 64,
        "applied_at": NOW,
        "duration_ms": 5,
    }
    await db.create_collection("migrations", **schema.create_options())
    await db["migrations"].insert_many([dict(record), dict(record)])

    report = await index_sync.sync(db, {"migrations": schema})
    assert report.exit_code == 2
    assert "migrations_version_unique" in report.errors[0]


async def test_validator_comparison_is_order_insensitive(
    synced_db: AsyncDatabase[dict[str, Any]],
) -> None:
    schema = get_registry()["users"]
    async for entry in await synced_db.list_collections(filter={"name": "users"}):
        options = entry["options"]
    assert not index_sync.validator_differs(schema, options)
    changed = dict(options)
    changed["validationAction"] = "warn"
    assert index_sync.validator_differs(schema, changed)


@pytest.mark.real_mongodb
async def test_changed_validator_is_applied_with_collmod(
    db: AsyncDatabase[dict[str, Any]],
) -> None:
    schema = get_registry()["locks"]
    await db.create_collection("locks", validator={"$jsonSchema": {"bsonType": "object"}})
    sync_plan = await index_sync.plan(db, {"locks": schema})
    assert sync_plan.collections[0].validator_action is ValidatorAction.UPDATE
    report = await index_sync.apply(db, sync_plan)
    assert report.exit_code == 0, report.errors
    assert report.rows[0].validator == "updated"
    assert (await index_sync.plan(db, {"locks": schema})).in_sync
    with pytest.raises(WriteError) as refused:
        await db["locks"].insert_one({"_id": "migrations"})
    assert refused.value.code == 121
