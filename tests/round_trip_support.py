"""Round trips per request, shared by `tests/test_round_trips.py` and `make bench round_trips`.

- `CALLS`: how to call each GET operation of the OpenAPI document (who signs in, which query,
  how many commands the route may send, and what in the answer shows the rows it read);
- `grow`: the data, grown to a number of rows of every kind the operations list or aggregate,
  by bulk inserts through the repositories (the embedded server is slow at one insert a time);
- `RequestCommands`: the commands the driver sends for one request, and only those;
- `measure_sizes`: the app on a database of its own, filled to each size in turn, every
  operation called once at each.

A signed-in request first resolves its access token: a `find` on `sessions`, then one on
`users` (`AuthService.resolve`), before the route runs. `AUTH_COMMANDS` are those two; what
follows them is the route's own cost, which `Call.most` bounds.
"""

from __future__ import annotations

import hashlib
import itertools
import uuid
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from contextlib import asynccontextmanager, contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from enum import StrEnum
from typing import Any

import httpx
from asgi_lifespan import LifespanManager
from bson import ObjectId
from fastapi import FastAPI
from pydantic import SecretStr
from pymongo import monitoring

from backend.api.app import create_app
from backend.api.deps import services_for
from backend.db.connection import ConnectionManager
from backend.models.audit_log import ActorType, AuditRecord
from backend.models.crm_prospects import CrmProspect, ProspectStage
from backend.models.documents import (
    DocumentStorage,
    DocumentType,
    KycDocument,
    VerificationStatus,
)
from backend.models.investments import Investment, InvestmentStatus, deposit_day
from backend.models.ledger_entries import Direction, LedgerEntry, LedgerEntryKind
from backend.models.mt5_accounts import Mt5Account, SyncStatus
from backend.models.mt5_deals import DealEntry, DealType, Mt5Deal
from backend.models.mt5_equity_history import Mt5EquityPoint
from backend.models.schedule_items import ScheduleItem, ScheduleItemStatus
from backend.models.sessions import Session
from backend.models.users import KycStatus, User, UserCreate
from backend.money.schedule import build_schedule, lifecycle_state_on
from backend.repositories.base import MAX_PAGE_SIZE
from backend.services import Actor, Services
from backend.services.contracts import payout_key, subscription_key
from backend.services.users import new_user_id
from tests.api_support import ADMIN_EMAIL, ADMIN_PASSWORD, API, api_settings, bearer, login
from tests.factories import PASSWORD

#: The numbers of rows the operations are measured at.
SIZES = (10, 100)
#: What resolving an access token costs, before any route runs.
AUTH_COMMANDS = (("find", "sessions"), ("find", "users"))
#: A list endpoint reads its page in at most two commands: the count and the page, or one
#: aggregation doing both.
LIST_BUDGET = 2
#: The handshake and monitoring commands of the driver, not sent for any request.
_DRIVER_OWN = frozenset({"hello", "isMaster", "ismaster", "endSessions"})
#: A cursor's next batch. A real MongoDB sends the first 101 documents of a `find` and the
#: rest on `getMore`; the embedded server sends all at once. It continues a read already
#: counted, so it is counted apart (`Measure.batches`) and never compared.
CURSOR_BATCH = "getMore"

#: How long the driver waits for the embedded server, which answers one command at a time:
#: while it stores a bulk insert, the driver's heartbeat waits too, and a heartbeat that
#: times out cancels the insert (see `tests/benchmarks/_embedded.py`).
PATIENCE_MS = 120_000

Command = tuple[str, str]


# --- the commands of one request ------------------------------------------------------------

_recording: ContextVar[bool] = ContextVar("round_trip_recording", default=False)


class RequestCommands(monitoring.CommandListener):
    """The commands (name, collection) the driver sends from code running inside `recording()`.

    The driver tells a listener of a command from the task that sends it, so a context
    variable set around the request separates its commands from those of whatever runs beside
    it: the audit relay's timer (a task of the lifespan, started before any request) and the
    driver's own monitoring. Tasks the request starts inherit the context and are counted.
    """

    def __init__(self) -> None:
        self.commands: list[Command] = []

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        if not _recording.get() or event.command_name in _DRIVER_OWN:
            return
        target = event.command.get(event.command_name)
        collection = target if isinstance(target, str) else event.database_name
        if event.command_name == CURSOR_BATCH:
            collection = str(event.command.get("collection", ""))
        self.commands.append((event.command_name, collection))

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        pass

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        pass

    @contextmanager
    def recording(self) -> Iterator[list[Command]]:
        """Start afresh and record the commands sent inside the block."""
        self.commands = []
        token = _recording.set(True)
        try:
            yield self.commands
        finally:
            _recording.reset(token)


# --- how each GET operation is called --------------------------------------------------------


class Caller(StrEnum):
    PUBLIC = "public"
    ADMIN = "admin"
    CLIENT = "client"


def _total(body: Any) -> int:
    return int(body["total"])


def _listed(body: Any) -> int:
    return len(body)


def _lines(body: Any) -> int:
    return len(body["investments"])


@dataclass(frozen=True, slots=True)
class Call:
    caller: Caller
    #: The commands the route itself may send (authentication's two apart).
    most: int
    #: What those commands are, in the fund manager's words.
    reads: str
    #: A list of one kind of record: `most` may not exceed `LIST_BUDGET`.
    lists: bool = False
    #: The query string, from the world (its records and today's date).
    query: Callable[[World], dict[str, str]] = lambda world: {}
    #: How many rows the answer shows it read; None for an answer that does not show it
    #: (one record, or a health report).
    seen: Callable[[Any], int] | None = None


def _page(world: World) -> dict[str, str]:
    """The largest page: at 100 rows every row is on it, so a read per row shows as growth."""
    return {"page_size": str(MAX_PAGE_SIZE)}


def _this_year(world: World) -> dict[str, str]:
    return {"period": str(world.today.year)}


def _obligations_seen(body: Any) -> int:
    return len(body["overdue"]) + sum(int(month["items"]) for month in body["months"])


def _overview_seen(body: Any) -> int:
    return sum(int(fund["investments"]) + len(fund["accounts"]) for fund in body)


#: Every GET operation of the OpenAPI document, by path. Path parameters are filled from
#: `World.ids` by their name.
CALLS: dict[str, Call] = {
    "/health/live": Call(Caller.PUBLIC, 0, "nothing: the process answers"),
    "/health": Call(Caller.PUBLIC, 11, "ping, buildInfo, dbStats; stale MT5 accounts; the "
                                       "funds' coverage (investments, accounts, items, "
                                       "entries); the last backup, good backup and drill"),
    "/metrics": Call(Caller.PUBLIC, 0, "nothing: the pool figures are the driver monitor's"),
    f"{API}/auth/me": Call(Caller.CLIENT, 0, "nothing beyond authentication's reads"),
    f"{API}/funds": Call(Caller.CLIENT, 0, "nothing: the fund catalog is in memory",
                         lists=True),
    f"{API}/admin/users": Call(Caller.ADMIN, 2, "count, page", lists=True, query=_page,
                               seen=_total),
    f"{API}/admin/users/statistics": Call(Caller.ADMIN, 1, "one $facet aggregation",
                                          seen=_total),
    f"{API}/admin/users/{{user_id}}": Call(Caller.ADMIN, 1, "the user"),
    f"{API}/admin/investments": Call(Caller.ADMIN, 1, "one aggregation: $facet count and "
                                                      "page, clients' names by $lookup",
                                     lists=True, query=_page, seen=_total),
    f"{API}/admin/investments/{{investment_id}}": Call(Caller.ADMIN, 1, "the investment"),
    f"{API}/admin/investments/{{investment_id}}/schedule": Call(
        Caller.ADMIN, 2, "the investment, its items", lists=True),
    f"{API}/admin/obligations": Call(Caller.ADMIN, 2, "overdue items, open items",
                                     seen=_obligations_seen),
    f"{API}/admin/ledger": Call(Caller.ADMIN, 2, "count, page", lists=True, query=_page,
                                seen=_total),
    f"{API}/admin/clients/{{client_id}}/statement": Call(
        Caller.ADMIN, 9, "the client, investments, items, entries; valuation: accounts, "
                         "their investments, entries, deposits, equity points",
        query=_this_year, seen=_lines),
    f"{API}/admin/funds/overview": Call(Caller.ADMIN, 6, "investments, accounts, items, "
                                                         "entries, deposits, equity points",
                                       seen=_overview_seen),
    f"{API}/admin/crm/prospects": Call(Caller.ADMIN, 2, "count, page", lists=True,
                                       query=_page, seen=_total),
    f"{API}/admin/crm/prospects/{{prospect_id}}": Call(Caller.ADMIN, 1, "the prospect"),
    f"{API}/admin/mt5/accounts": Call(Caller.ADMIN, 2, "count, page", lists=True,
                                      query=_page, seen=_total),
    f"{API}/admin/mt5/accounts/{{account_id}}": Call(Caller.ADMIN, 1, "the account"),
    f"{API}/admin/mt5/accounts/{{account_id}}/equity": Call(
        Caller.ADMIN, 2, "count, page (the account is read only when it has none)",
        lists=True, query=_page, seen=_total),
    f"{API}/admin/mt5/accounts/{{account_id}}/deals": Call(
        Caller.ADMIN, 2, "count, page (the account is read only when it has none)",
        lists=True, query=_page, seen=_total),
    f"{API}/admin/documents/pending": Call(Caller.ADMIN, 2, "count, page", lists=True,
                                           query=_page, seen=_total),
    f"{API}/admin/documents/{{document_id}}/content": Call(
        Caller.ADMIN, 3, "the document, its GridFS file, its chunks"),
    f"{API}/admin/audit": Call(Caller.ADMIN, 2, "count, page", lists=True, query=_page,
                               seen=_total),
    f"{API}/admin/reconciliation/breaks": Call(
        Caller.ADMIN, 4, "accounts, their deposits, investments, the clients' names",
        seen=_total),
    f"{API}/client/profile": Call(Caller.CLIENT, 0, "nothing beyond authentication's reads"),
    f"{API}/client/investments": Call(Caller.CLIENT, 2, "count, page", lists=True,
                                      query=_page, seen=_total),
    f"{API}/client/investments/{{investment_id}}": Call(Caller.CLIENT, 1, "the investment"),
    f"{API}/client/investments/{{investment_id}}/schedule": Call(
        Caller.CLIENT, 2, "the investment, its items", lists=True),
    f"{API}/client/ledger": Call(Caller.CLIENT, 2, "count, page", lists=True, query=_page,
                                 seen=_total),
    f"{API}/client/statement": Call(
        Caller.CLIENT, 9, "the client (again), investments, items, entries; valuation: "
                          "accounts, their investments, entries, deposits, equity points",
        query=_this_year, seen=_lines),
    f"{API}/client/performance": Call(
        Caller.CLIENT, 9, "as the statement", seen=_lines),
    f"{API}/client/mt5-accounts": Call(Caller.CLIENT, 1, "the accounts", lists=True,
                                       seen=_listed),
    f"{API}/client/documents": Call(Caller.CLIENT, 1, "the documents", lists=True,
                                    seen=_listed),
    f"{API}/client/documents/{{document_id}}/content": Call(
        Caller.CLIENT, 3, "the document, its GridFS file, its chunks"),
}


# --- the data -------------------------------------------------------------------------------

#: The investments after the first (CORE, paid monthly) cycle through these funds: fixed
#: interest paid quarterly, a performance share, fixed interest paid half-yearly.
FUNDS = ("BALANCE", "UNLIMITED", "DYNAMIC")
PDF = b"%PDF-1.4\n% round trips\n" + b"0" * 2000 + b"\n%%EOF\n"


@dataclass(slots=True)
class World:
    """The signed-in admin and client, the records the calls name, and how many rows of each
    kind the database holds."""

    services: Services
    admin: User
    admin_headers: dict[str, str]
    client: User
    client_headers: dict[str, str]
    today: date
    #: Path parameter name -> the id of the record it names (the client's first investment,
    #: its MT5 account, its uploaded document, the first prospect, the client).
    ids: dict[str, str] = field(default_factory=dict)
    rows: int = 0
    #: MT5 deal tickets, unique across the growth steps.
    tickets: Iterator[int] = field(default_factory=lambda: itertools.count(1))

    def headers(self, caller: Caller) -> dict[str, str]:
        return {Caller.ADMIN: self.admin_headers, Caller.CLIENT: self.client_headers}.get(
            caller, {})


@dataclass(slots=True)
class _Batch:
    """One growth step's documents, inserted one kind at a time."""

    users: list[User] = field(default_factory=list)
    investments: list[Investment] = field(default_factory=list)
    items: list[ScheduleItem] = field(default_factory=list)
    entries: list[LedgerEntry] = field(default_factory=list)
    accounts: list[Mt5Account] = field(default_factory=list)
    deals: list[Mt5Deal] = field(default_factory=list)
    points: list[Mt5EquityPoint] = field(default_factory=list)
    prospects: list[CrmProspect] = field(default_factory=list)
    documents: list[KycDocument] = field(default_factory=list)
    sessions: list[Session] = field(default_factory=list)
    audit: list[AuditRecord] = field(default_factory=list)


def _midnight(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=UTC)


def _deposit(world: World, k: int) -> date:
    """The k-th investment's deposit: the first one 400 days ago (active: its incubation is
    over, some payouts paid, some due, most to come), the others spread over 16 months so
    some incubate, most are active and some have matured."""
    return world.today - timedelta(days=400 if k == 0 else 20 + (k * 53) % 480)


def _contract(world: World, batch: _Batch, *, k: int, client: User, fund_code: str,
              account_id: ObjectId | None) -> Investment:
    """An investment with the schedule its terms give, its subscription, and its first payout
    paid (with its ledger entry) once due; the later ones due are left unpaid (overdue)."""
    assert client.id is not None and world.admin.id is not None
    deposit = _deposit(world, k)
    terms = world.services.funds.terms_on(fund_code, deposit)
    principal = terms.minimum + Decimal(100 * k + 100) + Decimal(k % 7)
    plan = build_schedule(terms, principal=principal, deposit_date=deposit)
    now = world.services.clock()
    investment = Investment(
        id=ObjectId(), investment_id=f"INV-RT-{client.username[-6:].upper()}-{k:05d}",
        client_id=client.id, fund_code=fund_code, principal_amount=principal,
        currency=terms.currency, deposit_date=deposit_day(deposit),
        terms_version=terms.terms_version,
        incubation_end_date=deposit_day(plan.dates.incubation_end_date),
        maturity_date=deposit_day(plan.dates.maturity_date),
        invitation_reason="by the fund manager's invitation" if terms.invitation_only else None,
        status=InvestmentStatus(lifecycle_state_on(plan.dates, world.today).value),
        current_value=principal, gain_amount=Decimal("0"), return_pct=Decimal("0"),
        mt5_account_id=account_id, created_by=world.admin.id, created_at=now,
        updated_at=now, version=1)
    assert investment.id is not None
    batch.investments.append(investment)
    batch.entries.append(LedgerEntry(
        id=ObjectId(), kind=LedgerEntryKind.SUBSCRIPTION, direction=Direction.IN,
        client_id=client.id, investment_id=investment.id,
        investment_ref=investment.investment_id, fund_code=fund_code, amount=principal,
        currency=terms.currency, effective_date=deposit_day(deposit), booked_at=now,
        actor_id=world.admin.id, actor_type=ActorType.ADMIN,
        idempotency_key=subscription_key(investment)))
    for planned in plan.items:
        status = ScheduleItemStatus.SCHEDULED
        if planned.due_date <= world.today:
            status = ScheduleItemStatus.DUE
            if planned.amount is not None and planned.number == 1:
                status = ScheduleItemStatus.PAID
        item = ScheduleItem(
            id=ObjectId(), investment_id=investment.id, investment_ref=investment.investment_id,
            client_id=client.id, fund_code=fund_code, terms_version=terms.terms_version,
            number=planned.number, kind=planned.kind, due_date=_midnight(planned.due_date),
            amount=planned.amount, currency=terms.currency, status=status, created_at=now,
            updated_at=now, version=1)
        if status is ScheduleItemStatus.PAID:
            assert planned.amount is not None
            entry = LedgerEntry(
                id=ObjectId(), kind=LedgerEntryKind.INTEREST_PAID, direction=Direction.OUT,
                client_id=client.id, investment_id=investment.id,
                investment_ref=investment.investment_id, fund_code=fund_code,
                schedule_number=planned.number, amount=planned.amount,
                currency=terms.currency, effective_date=_midnight(planned.due_date),
                booked_at=now, actor_id=world.admin.id, actor_type=ActorType.ADMIN,
                idempotency_key=payout_key(investment.id, planned.number),
                reference=f"wire {investment.investment_id} #{planned.number}")
            batch.entries.append(entry)
            item = item.model_copy(update={
                "paid_on": _midnight(planned.due_date), "reference": entry.reference,
                "ledger_entry_id": entry.id,
                "payout_key": f"rt-payout-{investment.id}-{planned.number}"})
        batch.items.append(item)
    return investment


def _account(world: World, batch: _Batch, *, k: int, client: User, fund_code: str,
             sealed: Mapping[str, str]) -> Mt5Account:
    assert client.id is not None
    now = world.services.clock()
    account = Mt5Account(
        id=ObjectId(), account_id=f"RT-{k:05d}", client_id=client.id, fund_code=fund_code,
        mt5_login=90_000_000 + k, broker_code="MEXATLANTIC", server="MEXAtlantic-Real",
        investor_password_encrypted=sealed["investor_password_encrypted"],
        password_key_id=sealed["password_key_id"], currency="USD", is_active=True,
        sync_status=SyncStatus.OK, last_sync_at=now, last_success_at=now, snapshot_at=now,
        deals_synced_to=now, created_at=now, updated_at=now, version=1)
    batch.accounts.append(account)
    return account


def _deal(world: World, account: Mt5Account, *, at: datetime, deal_type: DealType,
          profit: Decimal) -> Mt5Deal:
    assert account.id is not None
    trade = deal_type is not DealType.BALANCE
    return Mt5Deal(
        id=ObjectId(), mt5_account_id=account.id, mt5_login=account.mt5_login,
        ticket=next(world.tickets), time=at, deal_type=deal_type,
        entry=DealEntry.OUT if trade else None, symbol="EURUSD" if trade else None,
        volume=Decimal("1.00") if trade else Decimal(0),
        price=Decimal("1.08520") if trade else Decimal(0), profit=profit,
        commission=Decimal("0.00"), swap=Decimal("0.00"), fee=Decimal("0.00"), currency="USD",
        synced_at=world.services.clock())


def _point(world: World, account: Mt5Account, *, day: date, equity: Decimal) -> Mt5EquityPoint:
    assert account.id is not None
    return Mt5EquityPoint(
        id=ObjectId(), mt5_account_id=account.id, mt5_login=account.mt5_login,
        day=_midnight(day), balance=equity, equity=equity, currency="USD",
        recorded_at=_midnight(day) + timedelta(hours=23))


async def start(app: FastAPI, http: httpx.AsyncClient) -> World:
    """The bootstrap admin and a client with approved KYC, both signed in over HTTP, and the
    client's one uploaded document (its content in GridFS)."""
    services = services_for(app)
    admin = await services.users.by_login(ADMIN_EMAIL)
    assert admin is not None
    actor = Actor.user(admin.id, admin.user_type.value)
    client = await services.users.create_user(UserCreate(
        email="rt-client@fidus.example", username="rt-client000000",
        password=SecretStr(PASSWORD), first_name="Rita", last_name="Roundtrip"), actor=actor)
    client = await services.users.set_kyc(client.id, KycStatus.APPROVED,  # type: ignore[arg-type]
                                          actor=actor, reason="documents checked")
    document = await services.documents.upload(
        client, document_type=DocumentType.PASSPORT, filename="passport.pdf",
        mime_type="application/pdf", content=PDF)
    world = World(services=services, admin=admin,
                  admin_headers=bearer(await login(http, ADMIN_EMAIL, ADMIN_PASSWORD)),
                  client=client, client_headers=bearer(await login(http, client.username)),
                  today=services.clock().date())
    world.ids.update(user_id=str(client.id), client_id=str(client.id),
                     document_id=str(document.id))
    return world


async def grow(world: World, *, to: int) -> None:
    """Add rows of every kind until each holds `to`:

    - clients: the signed-in one and `to - 1` others, each other one with a session and the
      audit record of its KYC decision;
    - investments (`to`): every even one the signed-in client's, every odd one another
      client's; each with its schedule, its subscription and its first payout once paid, on
      an MT5 account of its own (`to` accounts) holding its deposit (but every fifth, whose
      deposit reconciliation reports missing) and an equity point; the first account also
      holds `to` trades and `to` daily points;
    - prospects (`to`) and the signed-in client's KYC documents (`to`, the first uploaded).

    Schedules are kept short (quarterly and half-yearly funds; only the first investment pays
    monthly): every insert into the embedded server costs time in proportion to the
    collection's size.
    """
    services = world.services
    repos = services.repos
    sealed = repos.mt5_accounts.seal_password("investor-pass-1")
    template = await services.users.build_user(UserCreate(
        email="rt-template@fidus.example", username="rt-template", password=SecretStr(PASSWORD),
        first_name="Otto", last_name="Other"), kyc_status=KycStatus.APPROVED)
    now = services.clock()
    batch = _Batch()
    first_account: Mt5Account | None = None
    if world.rows:
        first_account = await repos.mt5_accounts.get(world.ids["account_id"])
    for k in range(world.rows, to):
        holder = world.client
        if k > 0:
            other = template.model_copy(update={
                "id": ObjectId(), "user_id": new_user_id(), "username": f"rt-other{k:05d}",
                "email": f"rt-other{k:05d}@fidus.example", "last_name": f"Other{k:05d}",
                "kyc_decided_at": now, "kyc_reviewed_by": world.admin.id})
            batch.users.append(other)
            batch.sessions.append(Session(
                id=ObjectId(), token_hash=hashlib.sha256(uuid.uuid4().bytes).hexdigest(),
                user_id=other.id, created_at=now, expires_at=now + timedelta(days=30)))
            batch.audit.append(AuditRecord(
                id=ObjectId(), actor_id=world.admin.id, actor_type=ActorType.ADMIN,
                action="user.kyc.approved", entity_type="user", entity_id=str(other.id),
                after={"kyc_status": "approved"}, at=now))
            batch.documents.append(KycDocument(
                id=ObjectId(), user_id=world.client.id, document_type=DocumentType.OTHER,
                storage=DocumentStorage.GRIDFS, storage_key=uuid.uuid4().hex,
                original_filename=f"bank-statement-{k}.pdf",
                sha256=hashlib.sha256(str(k).encode()).hexdigest(), size_bytes=2048,
                mime_type="application/pdf", verification_status=VerificationStatus.PENDING,
                created_at=now, updated_at=now, version=1))
            if k % 2 == 1:
                holder = other
        fund_code = "CORE" if k == 0 else FUNDS[k % len(FUNDS)]
        account = _account(world, batch, k=k, client=holder, fund_code=fund_code,
                           sealed=sealed)
        investment = _contract(world, batch, k=k, client=holder, fund_code=fund_code,
                               account_id=account.id)
        account.investment_id = investment.id
        account.balance = account.equity = investment.principal_amount * Decimal("1.02")
        if k % 5 != 4:
            batch.deals.append(_deal(
                world, account, at=_midnight(_deposit(world, k)) + timedelta(hours=10),
                deal_type=DealType.BALANCE, profit=investment.principal_amount))
        if k == 0:
            first_account = account
            world.ids.update(investment_id=str(investment.id), account_id=str(account.id))
        else:
            batch.points.append(_point(world, account, day=world.today - timedelta(days=1),
                                       equity=account.equity))
        assert first_account is not None and first_account.equity is not None
        batch.deals.append(_deal(world, first_account, at=now - timedelta(hours=k + 1),
                                 deal_type=DealType.SELL, profit=Decimal(k % 9 - 4)))
        batch.points.append(_point(world, first_account,
                                   day=world.today - timedelta(days=k + 1),
                                   equity=first_account.equity - Decimal(k)))
        batch.prospects.append(CrmProspect(
            id=ObjectId(), name=f"Prospect {k:05d}", email=f"rt-prospect{k:05d}@fidus.example",
            stage=list(ProspectStage)[k % 5], assigned_to=world.admin.id,
            next_follow_up=now + timedelta(days=k % 30), source="referral", created_at=now,
            updated_at=now, version=1))
    await _insert(world, batch)
    if not world.rows:
        world.ids["prospect_id"] = str(batch.prospects[0].id)
    world.rows = to


async def _insert(world: World, batch: _Batch) -> None:
    repos = world.services.repos
    kinds: Sequence[tuple[Any, Sequence[Any]]] = (
        (repos.users, batch.users), (repos.investments, batch.investments),
        (repos.schedule, batch.items), (repos.ledger, batch.entries),
        (repos.mt5_accounts, batch.accounts), (repos.deals, batch.deals),
        (repos.equity, batch.points), (repos.prospects, batch.prospects),
        (repos.documents, batch.documents), (repos.sessions, batch.sessions),
        (repos.audit_log, batch.audit))
    for repository, items in kinds:
        stored = await repository.create_many(items)
        assert stored == len(items), (repository.collection_name, stored, len(items))


# --- measuring --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Measure:
    """One request: its status, the commands it sent (cursor batches apart), and how many rows
    its answer shows it read."""

    path: str
    status: int
    commands: tuple[Command, ...]
    batches: int
    seen: int | None
    answer: str

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    def route_commands(self, caller: Caller) -> tuple[Command, ...]:
        """The commands after authentication's."""
        if caller is Caller.PUBLIC:
            return self.commands
        return self.commands[len(AUTH_COMMANDS):]


def fill(path: str, world: World) -> str:
    return path.format_map(world.ids)


async def measure(http: httpx.AsyncClient, world: World, recorder: RequestCommands,
                  path: str) -> Measure:
    call = CALLS[path]
    with recorder.recording() as sent:
        response = await http.get(fill(path, world), params=call.query(world),
                                  headers=world.headers(call.caller))
    commands = tuple(c for c in sent if c[0] != CURSOR_BATCH)
    seen = None
    if call.seen is not None and response.status_code == 200:
        seen = call.seen(response.json())
    return Measure(path=path, status=response.status_code, commands=commands,
                   batches=len(sent) - len(commands), seen=seen, answer=response.text[:500])


@asynccontextmanager
async def measured_app(uri: str, database: str, recorder: RequestCommands
                       ) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    """The app with its lifespan on `database` (dropped afterwards), its driver reporting to
    `recorder`, and an HTTP client on it."""
    settings = api_settings(uri, database, mongodb_connect_timeout_ms=PATIENCE_MS,
                            mongodb_socket_timeout_ms=PATIENCE_MS)
    connection = ConnectionManager(settings, event_listeners=[recorder])
    app = create_app(settings, connection=connection, configure_logs=False)
    async with LifespanManager(app):
        try:
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://fidus.test") as http:
                yield app, http
        finally:
            await connection.client.drop_database(database)


async def measure_sizes(uri: str, *, sizes: Sequence[int] = SIZES,
                        paths: Sequence[str] | None = None) -> dict[int, dict[str, Measure]]:
    """Every operation in `paths` (all of `CALLS` by default) called once at each size, the
    data grown between sizes."""
    recorder = RequestCommands()
    database = f"fidus_round_trips_{uuid.uuid4().hex[:12]}"
    found: dict[int, dict[str, Measure]] = {}
    async with measured_app(uri, database, recorder) as (app, http):
        world = await start(app, http)
        for size in sizes:
            await grow(world, to=size)
            found[size] = {path: await measure(http, world, recorder, path)
                           for path in (paths or sorted(CALLS))}
    return found
