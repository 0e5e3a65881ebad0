"""verify: the integrity check. Every reference resolves, money agrees with MT5, no duplicates,
every audited document has its audit trail, no multi-document operation is left half-done.

One line per check: how many documents were checked, how many failed, and sample ids.

Audit coverage (collections and actions: `backend/ops/_audit.py`):
- every document of an audited collection has exactly one creation record (the action its
  service writes, or `<entity>.import` for data a script brought in), in `audit_log` or still
  in its outbox;
- every audit record of an audited entity names a document that exists, or one removed by a
  recorded removal (`<entity>.delete`, `<entity>.quarantine`) or expired (a Google session past
  its TTL);
- no outbox entry is older than a minute (the relay runs every few seconds);
- every client created by a conversion is the converted client of its prospect, and no
  conversion claim older than a minute is left without its client.

`--fix` finishes what faults left behind, then checks again: it relays outbox entries past the
relay's grace period, finishes conversions whose client exists (`prospect.convert`, by the
script), and releases claims a minute old whose client was never created. It invents no audit
record: a document without its creation record stays reported, for a person to look into.

Money: investments sharing an MT5 account hold units of it (`backend.money.units`). The
account's last equity snapshot (a negative one as zero) is compared with the sum of
`current_value` of the live investments (pending to matured) that hold its units; those awaiting
their deposit (`awaiting_deposit`, valued at cost) are left out, since their money is not in
the account. Both sides are written by the same sync pass, so they agree within the rounding
the unit rules document: n x 0.005 + T x 0.5E-12 (n investments holding units, T units
outstanding), i.e. half a cent per investment, rounded up to the cent. Accounts never synced
(no equity yet), and accounts none of whose investments holds units yet, are not compared.
"""

from __future__ import annotations

import argparse
import uuid
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import ROUND_CEILING, Decimal
from typing import Any

from bson import Decimal128
from pymongo.asynchronous.database import AsyncDatabase

from backend.models._base import OUTBOX_FIELD
from backend.models.users import User
from backend.ops._audit import (
    AUDITED_COLLECTIONS,
    REMOVAL_VERBS,
    AuditedCollection,
    record_script_run,
)
from backend.ops._cli import Context, Outcome, base_parser, run_command
from backend.ops.dedupe import find_duplicates
from backend.repositories.base import utcnow
from backend.services import Actor, Services
from backend.services.audit import RELAY_GRACE
from backend.settings import Settings

SAMPLE_IDS = 5
HALF_CENT = Decimal("0.005")
VALUE_PER_UNIT_HALF_STEP = Decimal("0.5E-12")
LIVE_STATUSES = ("pending", "incubating", "active", "matured")
_CHUNK = 1000
#: An outbox entry or a conversion claim older than this was left behind by a fault.
LEFT_BEHIND_AFTER = timedelta(minutes=1)


@dataclass(slots=True)
class CheckResult:
    name: str
    checked: int = 0
    failed: int = 0
    sample_ids: list[str] = field(default_factory=list)
    note: str = ""

    @property
    def ok(self) -> bool:
        return self.failed == 0

    def fail(self, doc_id: Any) -> None:
        self.failed += 1
        if len(self.sample_ids) < SAMPLE_IDS:
            self.sample_ids.append(str(doc_id))


async def _existing(db: AsyncDatabase[dict[str, Any]], collection: str, ids: set[Any]) -> set[Any]:
    found: set[Any] = set()
    values = list(ids)
    for start in range(0, len(values), _CHUNK):
        chunk = values[start:start + _CHUNK]
        async for doc in db[collection].find({"_id": {"$in": chunk}}, {"_id": 1}):
            found.add(doc["_id"])
    return found


async def check_reference(
    db: AsyncDatabase[dict[str, Any]], source: str, field_name: str, target: str,
    *, required: bool = True,
) -> CheckResult:
    """`source.field_name` names an existing `target._id` (null allowed unless `required`)."""
    result = CheckResult(f"{source}.{field_name} -> {target}")
    refs: list[tuple[Any, Any]] = []
    async for doc in db[source].find({}, {field_name: 1}):
        value = doc.get(field_name)
        if value is None and not required:
            continue
        refs.append((doc["_id"], value))
    result.checked = len(refs)
    existing = await _existing(db, target, {v for _, v in refs if v is not None})
    for doc_id, value in refs:
        if value is None or value not in existing:
            result.fail(doc_id)
    return result


async def check_audit_actors(db: AsyncDatabase[dict[str, Any]]) -> CheckResult:
    result = CheckResult("audit_log.actor_id -> users")
    refs: list[tuple[Any, Any]] = []
    async for doc in db["audit_log"].find({}, {"actor_id": 1, "actor_type": 1}):
        result.checked += 1
        actor_id = doc.get("actor_id")
        if actor_id is None:
            if doc.get("actor_type") in ("admin", "manager", "client"):
                result.fail(doc["_id"])  # a person acted but is not named
            continue
        refs.append((doc["_id"], actor_id))
    existing = await _existing(db, "users", {v for _, v in refs})
    # A person who acted and whose account was removed on record is still accounted for.
    removed = {record["entity_id"] async for record in db["audit_log"].find(
        {"entity_type": "user", "action": {"$in": [f"user.{verb}" for verb in REMOVAL_VERBS]}},
        {"entity_id": 1})}
    for doc_id, value in refs:
        if value not in existing and str(value) not in removed:
            result.fail(doc_id)
    return result


async def check_mt5_investment_links(db: AsyncDatabase[dict[str, Any]]) -> CheckResult:
    """mt5_accounts.investment_id resolves, to an investment of the same client and fund."""
    result = CheckResult("mt5_accounts.investment_id -> investments")
    accounts = [a async for a in db["mt5_accounts"].find(
        {"investment_id": {"$ne": None}}, {"investment_id": 1, "client_id": 1, "fund_code": 1})]
    result.checked = len(accounts)
    ids = {a["investment_id"] for a in accounts}
    investments: dict[Any, dict[str, Any]] = {}
    for start in range(0, len(ids), _CHUNK):
        chunk = list(ids)[start:start + _CHUNK]
        async for inv in db["investments"].find({"_id": {"$in": chunk}},
                                                {"client_id": 1, "fund_code": 1}):
            investments[inv["_id"]] = inv
    for account in accounts:
        target = investments.get(account["investment_id"])
        if target is None or (target.get("client_id"), target.get("fund_code")) != (
                account.get("client_id"), account.get("fund_code")):
            result.fail(account["_id"])
    return result


def _decimal(value: Any) -> Decimal | None:
    if isinstance(value, Decimal128):
        return value.to_decimal()
    if isinstance(value, Decimal):
        return value
    return None


async def check_money(db: AsyncDatabase[dict[str, Any]]) -> CheckResult:
    result = CheckResult("investment current_value vs MT5 equity")
    carried: dict[Any, list[dict[str, Any]]] = defaultdict(list)
    fields = {"mt5_account_id": 1, "current_value": 1, "currency": 1, "units": 1,
              "awaiting_deposit": 1}
    async for inv in db["investments"].find(
        {"status": {"$in": list(LIVE_STATUSES)}, "mt5_account_id": {"$ne": None}}, fields,
    ):
        carried[inv["mt5_account_id"]].append(inv)
    async for account in db["mt5_accounts"].find({}, {"investment_id": 1}):
        linked = account.get("investment_id")
        if linked is not None and not any(i["_id"] == linked for i in carried[account["_id"]]):
            linked_inv = await db["investments"].find_one(
                {"_id": linked, "status": {"$in": list(LIVE_STATUSES)}}, fields)
            if linked_inv is not None:
                carried[account["_id"]].append(linked_inv)
    unsynced = unheld = 0
    accounts = await _by_id(db, "mt5_accounts", set(carried), {"equity": 1, "currency": 1})
    for account_id, investments in carried.items():
        mapped = accounts.get(account_id)
        if mapped is None:
            continue  # an unresolved mapping is reported by the reference check
        equity = _decimal(mapped.get("equity"))
        if equity is None:
            unsynced += 1
            continue
        holders = [i for i in investments if not i.get("awaiting_deposit")]
        if not holders:
            unheld += 1
            continue
        result.checked += 1
        values = [_decimal(i.get("current_value")) for i in holders]
        currencies = {i.get("currency") for i in investments}
        if any(v is None for v in values) or currencies != {mapped.get("currency")}:
            result.fail(account_id)
            continue
        total = sum((v for v in values if v is not None), Decimal(0))
        if abs(total - max(equity, Decimal(0))) > unit_rounding(holders):
            result.fail(account_id)
    result.note = (f"tolerance n x {HALF_CENT} + units x {VALUE_PER_UNIT_HALF_STEP}, up to "
                   f"the cent; {unsynced} not yet synced, {unheld} with no units held yet")
    return result


def unit_rounding(holders: Sequence[dict[str, Any]]) -> Decimal:
    """What the unit rules' rounding allows between the holders' values and the equity."""
    units = sum((_decimal(i.get("units")) or Decimal(0) for i in holders), Decimal(0))
    bound = len(holders) * HALF_CENT + units * VALUE_PER_UNIT_HALF_STEP
    return bound.quantize(Decimal("0.01"), rounding=ROUND_CEILING)


async def _by_id(db: AsyncDatabase[dict[str, Any]], collection: str, ids: set[Any],
                 projection: dict[str, int]) -> dict[Any, dict[str, Any]]:
    found: dict[Any, dict[str, Any]] = {}
    values = list(ids)
    for start in range(0, len(values), _CHUNK):
        async for doc in db[collection].find({"_id": {"$in": values[start:start + _CHUNK]}},
                                             projection):
            found[doc["_id"]] = doc
    return found


async def check_duplicate_investments(db: AsyncDatabase[dict[str, Any]]) -> CheckResult:
    result = CheckResult("duplicate investments (client, fund, amount, deposit date)")
    result.checked = await db["investments"].count_documents({})
    for group in await find_duplicates(db):
        for dup in group.duplicates:
            result.fail(dup["_id"])
    return result


async def _duplicates_by(db: AsyncDatabase[dict[str, Any]], name: str, collection: str,
                         filter_: dict[str, Any], key: Any) -> CheckResult:
    result = CheckResult(name)
    first: dict[Any, Any] = {}
    async for doc in db[collection].find(filter_):
        result.checked += 1
        value = key(doc)
        if value is None:
            continue
        if value in first:
            result.fail(doc["_id"])
        else:
            first[value] = doc["_id"]
    return result


# audit coverage ---------------------------------------------------------------------------


async def check_creation_records(db: AsyncDatabase[dict[str, Any]],
                                 audited: AuditedCollection) -> CheckResult:
    """Each document has exactly one creation record (copied, or still in its outbox)."""
    result = CheckResult(f"{audited.collection}: one creation record each")
    records: dict[str, set[Any]] = defaultdict(set)
    async for record in db["audit_log"].find(
            {"entity_type": audited.entity_type,
             "action": {"$in": sorted(audited.creation_actions)}}, {"entity_id": 1}):
        records[record["entity_id"]].add(record["_id"])
    async for document in db[audited.collection].find(
            {}, {audited.entity_key: 1, f"{OUTBOX_FIELD}._id": 1,
                 f"{OUTBOX_FIELD}.action": 1}):
        result.checked += 1
        entity_id = audited.entity_id(document)
        found = set(records.get(entity_id, ())) if entity_id is not None else set()
        found |= {entry.get("_id") for entry in document.get(OUTBOX_FIELD) or []
                  if entry.get("action") in audited.creation_actions}
        if len(found) != 1:
            result.fail(document["_id"])
    return result


def _moment(value: Any) -> datetime | None:
    return value if isinstance(value, datetime) else None


async def check_audit_entities(db: AsyncDatabase[dict[str, Any]], *,
                               now: datetime) -> CheckResult:
    """Each record of an audited entity names a document that exists or was removed by a
    recorded removal or expired."""
    result = CheckResult("audit_log entities exist (or were removed on record)")
    for audited in AUDITED_COLLECTIONS:
        named: dict[str, list[Any]] = defaultdict(list)
        explained: set[str] = set()
        async for record in db["audit_log"].find(
                {"entity_type": audited.entity_type},
                {"entity_id": 1, "action": 1, f"after.{audited.expires_field or '_'}": 1}):
            entity_id = str(record.get("entity_id"))
            named[entity_id].append(record["_id"])
            if str(record.get("action", "")).rsplit(".", 1)[-1] in REMOVAL_VERBS:
                explained.add(entity_id)
            expires = _moment((record.get("after") or {}).get(audited.expires_field or "_"))
            if expires is not None and expires <= now:
                explained.add(entity_id)
        existing = {key async for document in db[audited.collection].find(
            {}, {audited.entity_key: 1}) if (key := audited.entity_id(document)) is not None}
        for entity_id, record_ids in named.items():
            result.checked += len(record_ids)
            if entity_id not in existing and entity_id not in explained:
                for record_id in record_ids:
                    result.fail(record_id)
    return result


async def check_outboxes(db: AsyncDatabase[dict[str, Any]], *, now: datetime) -> CheckResult:
    result = CheckResult("audit outboxes: nothing older than a minute")
    cutoff = now - LEFT_BEHIND_AFTER
    for audited in AUDITED_COLLECTIONS:
        async for document in db[audited.collection].find(
                {f"{OUTBOX_FIELD}.0": {"$exists": True}}, {f"{OUTBOX_FIELD}.at": 1}):
            result.checked += 1
            if any(_moment(entry.get("at")) is None or entry["at"] < cutoff
                   for entry in document[OUTBOX_FIELD]):
                result.fail(f"{audited.collection}:{document['_id']}")
    result.note = "documents with records waiting for the relay"
    return result


@dataclass(slots=True)
class ConversionState:
    """Conversions as stored: clients pointing at prospects, prospects at their claims."""

    unfinished: list[tuple[Any, Any]] = field(default_factory=list)  # (prospect, client)
    orphans: list[Any] = field(default_factory=list)                  # clients, no prospect
    claims_left: list[tuple[Any, Any]] = field(default_factory=list)  # (prospect, reserved)
    clients: int = 0
    claims: int = 0


async def conversion_state(db: AsyncDatabase[dict[str, Any]], *,
                           now: datetime) -> ConversionState:
    state = ConversionState()
    clients: dict[Any, Any] = {}
    async for user in db["users"].find({"source_prospect_id": {"$type": "objectId"}},
                                       {"source_prospect_id": 1}):
        clients[user["source_prospect_id"]] = user["_id"]
    state.clients = len(clients)
    prospects = await _by_id(db, "crm_prospects", set(clients), {"converted_client_id": 1})
    for prospect_id, client_id in clients.items():
        prospect = prospects.get(prospect_id)
        if prospect is None:
            state.orphans.append(client_id)
        elif prospect.get("converted_client_id") != client_id:
            state.unfinished.append((prospect_id, client_id))
    cutoff = now - LEFT_BEHIND_AFTER
    async for prospect in db["crm_prospects"].find(
            {"conversion_client_id": {"$type": "objectId"}, "converted_client_id": None},
            {"conversion_client_id": 1, "conversion_claimed_at": 1}):
        state.claims += 1
        claimed_at = _moment(prospect.get("conversion_claimed_at"))
        if prospect["_id"] not in clients and (claimed_at is None or claimed_at < cutoff):
            state.claims_left.append((prospect["_id"], prospect["conversion_client_id"]))
    return state


def check_conversions(state: ConversionState) -> list[CheckResult]:
    clients = CheckResult("users.source_prospect_id: conversions finished")
    clients.checked = state.clients
    for prospect_id, _ in state.unfinished:
        clients.fail(prospect_id)
    for client_id in state.orphans:
        clients.fail(client_id)
    claims = CheckResult("crm_prospects: no conversion claim left behind")
    claims.checked = state.claims
    for prospect_id, _ in state.claims_left:
        claims.fail(prospect_id)
    return [clients, claims]


async def verify(db: AsyncDatabase[dict[str, Any]], *,
                 now: datetime | None = None) -> list[CheckResult]:
    """Run every check; none writes."""
    from backend.ops.verify_money import money_checks

    now = now or utcnow()
    def lower(field_name: str) -> Any:
        return lambda d: d.get(field_name).lower() if isinstance(d.get(field_name), str) else None

    return [
        await check_reference(db, "investments", "client_id", "users"),
        await check_reference(db, "investments", "created_by", "users"),
        await check_reference(db, "investments", "mt5_account_id", "mt5_accounts",
                              required=False),
        await check_reference(db, "mt5_accounts", "client_id", "users"),
        await check_mt5_investment_links(db),
        await check_reference(db, "sessions", "user_id", "users"),
        await check_reference(db, "documents", "user_id", "users"),
        await check_reference(db, "crm_prospects", "converted_client_id", "users",
                              required=False),
        await check_reference(db, "crm_prospects", "assigned_to", "users", required=False),
        await check_reference(db, "admin_google_sessions", "admin_id", "users"),
        await check_audit_actors(db),
        await check_money(db),
        await check_duplicate_investments(db),
        await _duplicates_by(db, "duplicate user e-mails (case-insensitive)", "users", {},
                             lower("email")),
        await _duplicates_by(db, "duplicate active MT5 logins per server", "mt5_accounts",
                             {"is_active": True},
                             lambda d: (d.get("mt5_login"), d.get("server"))),
        *await money_checks(db),
        *[await check_creation_records(db, audited) for audited in AUDITED_COLLECTIONS],
        await check_audit_entities(db, now=now),
        await check_outboxes(db, now=now),
        *check_conversions(await conversion_state(db, now=now)),
    ]


@dataclass(slots=True)
class Repairs:
    relayed: int = 0
    conversions_finished: int = 0
    claims_released: int = 0
    left_alone: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"relayed": self.relayed, "conversions_finished": self.conversions_finished,
                "claims_released": self.claims_released, "left_alone": self.left_alone}


async def repair(db: AsyncDatabase[dict[str, Any]], settings: Settings, *,
                 now: datetime | None = None) -> Repairs:
    """What `--fix` does (see the module docstring); safe to run while the API serves."""
    now = now or utcnow()
    services = Services(db, settings)
    actor = Actor.script("verify")
    repairs = Repairs()
    repairs.relayed = await services.audit.relay(older_than=now - RELAY_GRACE)
    state = await conversion_state(db, now=now)
    for prospect_id, client_id in state.unfinished:
        prospect = await services.crm.get(prospect_id)
        if prospect.converted_client_id is not None:
            repairs.left_alone.append(f"prospect {prospect_id} names another client")
            continue
        client: User = await services.users.get(client_id)
        await services.crm.finish_conversion(prospect_id, client, actor=actor)
        repairs.conversions_finished += 1
    for prospect_id, reserved in state.claims_left:
        repairs.claims_released += await services.repos.prospects.release_conversion(
            prospect_id, client_id=reserved)
    for client_id in state.orphans:
        repairs.left_alone.append(f"client {client_id} names a prospect that does not exist")
    # Finishing a conversion wrote its record; copy it now rather than at the next pass.
    repairs.relayed += await services.audit.relay()
    return repairs


# command line -----------------------------------------------------------------------------


def parser() -> argparse.ArgumentParser:
    p = base_parser("make verify", "Integrity check: references, money against MT5 equity, "
                    "duplicates, audit coverage, half-done conversions. Reads only, unless "
                    "--fix.", writes=False)
    p.add_argument("--fix", action="store_true",
                   help="relay audit records left in outboxes, finish conversions whose "
                        "client exists, release conversion claims left behind; then check")
    return p


async def _command(ctx: Context) -> Outcome:
    repairs: Repairs | None = None
    if ctx.args.fix:
        repairs = await repair(ctx.db, ctx.settings)
        await record_script_run(ctx.db, script="verify", action="data_script.verify_fix",
                                run_id=f"verify-fix-{uuid.uuid4().hex[:12]}",
                                summary=repairs.as_dict())
    results = await verify(ctx.db)
    failed = [r for r in results if not r.ok]
    fixed = [] if repairs is None else [
        f"fixed: {repairs.relayed} audit record(s) relayed, {repairs.conversions_finished} "
        f"conversion(s) finished, {repairs.claims_released} claim(s) released",
        *(f"left alone: {what}" for what in repairs.left_alone)]
    messages = fixed + [
        f"{'FAIL' if not r.ok else 'ok  '} {r.name}: {r.checked} checked, {r.failed} failed"
        + (f" (e.g. {', '.join(r.sample_ids)})" if r.sample_ids else "")
        + (f" [{r.note}]" if r.note else "")
        for r in results
    ]
    return Outcome(
        title=f"integrity: {len(failed)} of {len(results)} checks failed" if failed
        else f"integrity: all {len(results)} checks passed",
        columns=("check", "checked", "failed", "sample ids"),
        rows=[(r.name, r.checked, r.failed, ", ".join(r.sample_ids)) for r in results],
        data={"checks": [{"name": r.name, "checked": r.checked, "failed": r.failed,
                          "sample_ids": r.sample_ids, "note": r.note} for r in results],
              **({"fixed": repairs.as_dict()} if repairs is not None else {})},
        findings=bool(failed),
        messages=messages,
    )


def main(argv: Sequence[str] | None = None, *, settings: Settings | None = None) -> int:
    return run_command(argv, parser=parser(), handler=_command, settings=settings)
