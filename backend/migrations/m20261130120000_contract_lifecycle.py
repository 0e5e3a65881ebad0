"""Move investments recorded before the money engine into the contract lifecycle.

up, for every investment without a `terms_version` (recorded before the engine) that is not
cancelled:

- its dates and terms: the fund terms version in force on its deposit date, incubation end and
  maturity from `backend/money/schedule.py`; a fund the catalog does not know is left alone
  and counted in `migration_state` as skipped;
- its status: `pending` stays pending (no dates: its deposit is not confirmed); `active` takes
  the state its dates give (incubating, active or matured); the legacy `redeemed` becomes
  `closed`;
- its schedule: the items the terms give, `due` or `scheduled` by their date. Nothing records
  which payouts the old system made, so no payout is invented: a closed investment's interest
  items are `cancelled`, and its principal item is paid by a `principal_returned` ledger entry
  dated the day it was redeemed;
- its `subscription` ledger entry.

Each change carries its audit record in the changed document (`_outbox`, actor `script`), for
the relay to copy, like every audited change. Before it writes, up records the fields it
changes as they were, with the document's version, in `migration_state`. Every write is keyed
(the investment's version, the items' unique (investment, number), the entries' idempotency
keys), so a rerun does only what is left.

down puts back the recorded fields where the investment is still as up left it (same version)
and removes the schedule items up created for it, unless one of them was paid since (then the
investment is left migrated, and the record kept). Ledger entries are never deleted: a rerun of
up finds them by their keys and books nothing twice.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from typing import Any

from bson import Decimal128, ObjectId
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import BulkWriteError, DuplicateKeyError

from backend.errors import InvalidData
from backend.funds import default_catalog
from backend.money.schedule import build_schedule, lifecycle_state_on

VERSION = "20261130120000"
STATE = "migration_state"
FIELDS = ("status", "terms_version", "incubation_end_date", "maturity_date", "closed_at")
REQUEST_ID = f"migration-{VERSION}"


def _midnight(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=UTC)


def _record(action: str, entity_type: str, entity_id: str, *, now: datetime,
            before: dict[str, Any] | None = None,
            after: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"_id": ObjectId(), "actor_id": None, "actor_type": "script", "action": action,
            "entity_type": entity_type, "entity_id": entity_id, "before": before,
            "after": after, "reason": f"migration {VERSION}", "at": now,
            "request_id": REQUEST_ID}


async def _insert_once(db: AsyncDatabase[dict[str, Any]], name: str,
                       documents: list[dict[str, Any]]) -> None:
    if not documents:
        return
    try:
        await db[name].insert_many(documents, ordered=False)
    except BulkWriteError as error:
        if any(e.get("code") != 11000 for e in error.details.get("writeErrors", [])):
            raise


async def _book(db: AsyncDatabase[dict[str, Any]], entry: dict[str, Any]) -> ObjectId:
    """The entry's id: the one stored now, or the one stored before under its key."""
    try:
        await db["ledger_entries"].insert_one(entry)
        return ObjectId(entry["_id"])
    except DuplicateKeyError:
        stored = await db["ledger_entries"].find_one({"idempotency_key": entry["idempotency_key"]},
                                                     {"_id": 1})
        assert stored is not None
        return ObjectId(stored["_id"])


def _entry(doc: dict[str, Any], *, kind: str, direction: str, amount: Decimal128,
           day: datetime, key: str, now: datetime, number: int | None = None) -> dict[str, Any]:
    return {"_id": ObjectId(), "kind": kind, "direction": direction,
            "client_id": doc["client_id"], "investment_id": doc["_id"],
            "investment_ref": doc["investment_id"], "fund_code": doc["fund_code"],
            "schedule_number": number, "amount": amount, "currency": doc["currency"],
            "effective_date": day, "booked_at": now, "actor_id": None, "actor_type": "script",
            "idempotency_key": key, "request_key": None, "reverses": None, "reference": None,
            "reason": f"migration {VERSION}"}


async def _migrate(db: AsyncDatabase[dict[str, Any]], doc: dict[str, Any],
                   now: datetime) -> str:
    deposit = doc["deposit_date"].astimezone(UTC).date()
    try:
        terms = default_catalog().terms_on(doc["fund_code"], deposit)
        plan = build_schedule(terms, principal=doc["principal_amount"].to_decimal(),
                              deposit_date=deposit)
    except InvalidData:
        return "skipped"
    today = now.date()
    closed = doc["status"] == "redeemed"
    changes: dict[str, Any] = {}
    if doc["status"] != "pending":
        state = "closed" if closed else lifecycle_state_on(plan.dates, today).value
        changes = {"status": state, "terms_version": terms.terms_version,
                   "incubation_end_date": _midnight(plan.incubation_end_date),
                   "maturity_date": _midnight(plan.maturity_date)}
        if closed:
            changes["closed_at"] = doc.get("redeemed_at") or now
    else:
        changes = {"terms_version": terms.terms_version}
    before = {name: doc[name] for name in FIELDS if name in doc}
    await db[STATE].replace_one(
        {"_id": {"migration": VERSION, "investment": doc["_id"]}},
        {"_id": {"migration": VERSION, "investment": doc["_id"]}, "migration": VERSION,
         "collection": "investments", "before": before, "after": changes,
         "version": doc.get("version", 1) + 1}, upsert=True)
    audit = _record("investment.migrate.lifecycle", "investment", doc["investment_id"], now=now,
                    before={k: v for k, v in doc.items() if k != "_outbox"},
                    after={**{k: v for k, v in doc.items() if k != "_outbox"}, **changes})
    result = await db["investments"].update_one(
        {"_id": doc["_id"], "version": doc.get("version"), "terms_version": None},
        {"$set": {**changes, "updated_at": now}, "$inc": {"version": 1},
         "$push": {"_outbox": audit}})
    if result.modified_count == 0 or doc["status"] == "pending":
        return "migrated" if result.modified_count else "unchanged"

    principal_entry = None
    if closed:
        principal_entry = await _book(db, _entry(
            doc, kind="principal_returned", direction="out", amount=doc["principal_amount"],
            day=_midnight((doc.get("redeemed_at") or now).astimezone(UTC).date()),
            key=f"payout:{doc['_id']}:{len(plan.items)}", now=now, number=len(plan.items)))
    items = []
    for planned in plan.items:
        status = "due" if planned.due_date <= today else "scheduled"
        paid: dict[str, Any] = {}
        if closed:
            status = "cancelled"
            if planned.kind.value == "principal":
                status = "paid"
                paid = {"paid_on": _midnight((doc.get("redeemed_at") or now).date()),
                        "ledger_entry_id": principal_entry}
        item_id = ObjectId()
        item = {"_id": item_id, "investment_id": doc["_id"],
                "investment_ref": doc["investment_id"], "client_id": doc["client_id"],
                "fund_code": doc["fund_code"], "terms_version": terms.terms_version,
                "number": planned.number, "kind": planned.kind.value,
                "due_date": _midnight(planned.due_date),
                "amount": Decimal128(planned.amount) if planned.amount is not None else None,
                "currency": planned.currency, "status": status,
                "paid_on": paid.get("paid_on"), "reference": None,
                "ledger_entry_id": paid.get("ledger_entry_id"), "payout_key": None,
                "created_at": now, "updated_at": now, "version": 1}
        item["_outbox"] = [_record("schedule_item.create", "schedule_item", str(item_id),
                                   now=now, after=dict(item))]
        items.append(item)
    await _insert_once(db, "schedule_items", items)
    await _book(db, _entry(doc, kind="subscription", direction="in",
                           amount=doc["principal_amount"], day=doc["deposit_date"],
                           key=f"subscription:{doc['_id']}", now=now))
    return "migrated"


async def up(db: AsyncDatabase[dict[str, Any]]) -> None:
    now = datetime.now(UTC)
    now = now.replace(microsecond=now.microsecond // 1000 * 1000)
    query = {"terms_version": None, "status": {"$in": ["pending", "active", "redeemed"]}}
    async for doc in db["investments"].find(query):
        await _migrate(db, doc, now)


async def down(db: AsyncDatabase[dict[str, Any]]) -> None:
    now = datetime.now(UTC)
    async for record in db[STATE].find({"migration": VERSION}):
        investment_id = record["_id"]["investment"]
        if await db["schedule_items"].count_documents(
                {"investment_id": investment_id, "status": "paid",
                 "ledger_entry_id": {"$ne": None}, "payout_key": {"$ne": None}}):
            continue  # paid through the API since: left migrated
        doc = await db["investments"].find_one({"_id": investment_id,
                                                "version": record["version"]})
        if doc is None:
            continue  # changed since: left as it is
        before: dict[str, Any] = record["before"]
        restore = {name: before[name] for name in FIELDS if name in before}
        absent = {name: "" for name in FIELDS if name not in before}
        audit = _record("investment.migrate.lifecycle_reverted", "investment",
                        doc["investment_id"], now=now, before=None, after=restore or None)
        update: dict[str, Any] = {"$push": {"_outbox": audit}, "$inc": {"version": 1}}
        if restore:
            update["$set"] = restore
        if absent:
            update["$unset"] = absent
        await db["investments"].update_one({"_id": investment_id,
                                            "version": record["version"]}, update)
        removed = [item async for item in db["schedule_items"].find(
            {"investment_id": investment_id}, {"_id": 1})]
        # Each removal is audited like any other, so no audit record is left without its story.
        await _insert_once(db, "audit_log", [
            _record("schedule_item.delete", "schedule_item", str(item["_id"]), now=now)
            for item in removed])
        await db["schedule_items"].delete_many({"investment_id": investment_id})
        await db[STATE].delete_one({"_id": record["_id"]})

