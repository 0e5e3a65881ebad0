"""verify's checks of the money engine: the ledger, the schedules and the paid items agree.

- every ledger entry names an existing investment, and every payout entry an existing item;
- paid items and payout entries match one to one (the item names its entry, the entry's key
  names the item);
- no schedule item without its investment, and every confirmed investment has its schedule and
  its subscription entry (a creation interrupted part-way; `make lifecycle` completes it).

Raw reads (this is a data script); nothing here writes.
"""

from __future__ import annotations

from typing import Any

from pymongo.asynchronous.database import AsyncDatabase

from backend.ops.verify import CheckResult, check_reference

PAYOUT_KINDS = ("interest_paid", "performance_share_paid", "principal_returned")
CONFIRMED_STATUSES = ("incubating", "active", "matured", "closed")


async def check_paid_items_and_payout_entries(db: AsyncDatabase[dict[str, Any]]) -> CheckResult:
    result = CheckResult("paid schedule items <-> payout ledger entries (one to one)")
    items = {(doc["investment_id"], doc["number"]): doc async for doc in db["schedule_items"].find(
        {}, {"investment_id": 1, "number": 1, "status": 1, "ledger_entry_id": 1})}
    entries = [doc async for doc in db["ledger_entries"].find(
        {"kind": {"$in": list(PAYOUT_KINDS)}},
        {"investment_id": 1, "schedule_number": 1, "idempotency_key": 1})]
    paid_by = {}
    for entry in entries:
        result.checked += 1
        key = (entry.get("investment_id"), entry.get("schedule_number"))
        item = items.get(key)
        if item is None or item.get("status") != "paid" \
                or item.get("ledger_entry_id") != entry["_id"]:
            result.fail(entry["_id"])
        paid_by[key] = entry["_id"]
    for key, item in items.items():
        if item.get("status") == "paid":
            result.checked += 1
            if paid_by.get(key) != item.get("ledger_entry_id"):
                result.fail(item["_id"])
    return result


async def check_confirmed_investments_have_their_contract(
        db: AsyncDatabase[dict[str, Any]]) -> CheckResult:
    result = CheckResult("confirmed investments -> schedule and subscription entry")
    with_schedule = set(await db["schedule_items"].distinct("investment_id"))
    subscribed = set(await db["ledger_entries"].distinct(
        "investment_id", {"kind": "subscription"}))
    async for investment in db["investments"].find(
            {"status": {"$in": list(CONFIRMED_STATUSES)}, "terms_version": {"$ne": None}},
            {"_id": 1}):
        result.checked += 1
        if investment["_id"] not in with_schedule or investment["_id"] not in subscribed:
            result.fail(investment["_id"])
    return result


async def money_checks(db: AsyncDatabase[dict[str, Any]]) -> list[CheckResult]:
    return [
        await check_reference(db, "ledger_entries", "investment_id", "investments"),
        await check_reference(db, "schedule_items", "investment_id", "investments"),
        await check_paid_items_and_payout_entries(db),
        await check_confirmed_investments_have_their_contract(db),
    ]
