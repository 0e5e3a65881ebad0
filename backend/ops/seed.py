"""seed: a known data set, created through the services in dependency order.

States:
    empty  the collections, validators and indexes, and no data
    test   1 admin, 1 manager, 2 clients with one investment each, 1 prospect
    dev    1 admin, 1 manager, 6 clients, investments in CORE and BALANCE, MT5 mappings for
           half of them, 4 prospects of which one converted
    demo   the demo logins below, 4 clients whose investments are each carried by an MT5
           account (logins 80000001 onwards, server "FidusSim-Server") for `make bridge` +
           `make sync` to fill, 3 prospects; and the whole contract lifecycle: the payouts
           due more than 45 days ago are paid (the later ones, and the principal of the
           matured ones, stay due), plus one investment
           closed (every item paid, principal included), one incubating in the
           invitation-only DYNAMIC fund, one pending (money announced) and one cancelled
           (its subscription reversed in the ledger)

Logins (every seeded user has the same password, shown by the command as well; the domain
    is the reserved `.example`, because sign-up refuses special-use domains such as `.test`):
    admin@fidus.example    / FidusDemo-2026!   admin
    manager@fidus.example  / FidusDemo-2026!   manager
    client1@fidus.example  / FidusDemo-2026!   client (client2@..., client3@... likewise)

Everything goes through `backend.services` (bcrypt hashes, fund rules, audit records), after
the schemas are applied, so `make verify` finds nothing right after. The same `--seed` gives
the same people, amounts, dates and MT5 logins; ObjectIds, generated business ids and
timestamps are new on every run. It refuses production, and a database that already holds
users unless `--reset`.

`--reset` empties the seeded collections first, after backing them up (the file is printed).
The demo's ledger goes with the investments it records (this is a development database, backed
up first; the product itself never deletes a ledger entry). It never deletes `audit_log`, which
is append-only: the reset itself is recorded there, with
one `<entity>.delete` record per audited document it removes (so `make verify` finds every
audit record's entity accounted for). It
refuses when any user's e-mail is outside the seed's own domain (@fidus.example), since that
is not data this command made, unless `--reset-non-demo-data` is given as well.
`--dry-run` reports what would be deleted and created, and writes nothing.
"""

from __future__ import annotations

import argparse
import json
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from bson import ObjectId
from pydantic import SecretStr
from pymongo.asynchronous.database import AsyncDatabase

from backend.db import index_sync
from backend.models.crm_prospects import ProspectCreate, ProspectStage
from backend.models.investments import Investment, InvestmentCreate, InvestmentStatus
from backend.models.mt5_accounts import Mt5AccountCreate
from backend.models.schedule_items import ScheduleItemKind, ScheduleItemStatus
from backend.models.users import KycStatus, User, UserCreate, UserType
from backend.ops._audit import audited_collection, record_each, record_script_run
from backend.ops._cli import CommandRefused, Context, Outcome, base_parser, run_command
from backend.ops.backup import backup, default_path
from backend.ops.backup_cipher import BackupKeys
from backend.services import Actor, Services
from backend.settings import REPO_ROOT, Environment, Settings

STATES = ("empty", "test", "dev", "demo")
DEMO_PASSWORD = "FidusDemo-2026!"
FIRST_MT5_LOGIN = 80000001
MT5_SERVER = "FidusSim-Server"  # the simulated terminal answers this server name
BROKER = "FIDUS_DEMO"
SEED_DOMAIN = "@fidus.example"
#: What --reset empties; never audit_log, which is append-only.
SEEDED_COLLECTIONS = ("users", "investments", "mt5_accounts", "crm_prospects", "sessions",
                      "documents", "admin_google_sessions", "mt5_deals", "mt5_equity_history",
                      "schedule_items", "ledger_entries")

_FIRST = ("Alejandro", "Lucia", "Mateo", "Sofia", "Diego", "Valentina", "Hugo", "Elena")
_LAST = ("Mariscal", "Herrera", "Ortega", "Navarro", "Castillo", "Romero", "Vidal", "Prieto")


@dataclass(frozen=True, slots=True)
class Plan:
    clients: int
    mapped_every: int  # every n-th investment gets an MT5 account; 0 for none
    prospects: int
    convert_one: bool
    funds: tuple[str, ...]


PLANS = {
    "test": Plan(clients=2, mapped_every=0, prospects=1, convert_one=False, funds=("CORE",)),
    "dev": Plan(clients=6, mapped_every=2, prospects=4, convert_one=True,
                funds=("CORE", "BALANCE")),
    "demo": Plan(clients=4, mapped_every=1, prospects=3, convert_one=False,
                 funds=("CORE", "BALANCE")),
}


@dataclass(slots=True)
class SeedReport:
    state: str
    seed: int
    counts: dict[str, int] = field(default_factory=dict)
    logins: list[tuple[str, str, str]] = field(default_factory=list)
    mt5_logins: list[int] = field(default_factory=list)
    mt5_deposits: dict[int, Decimal] = field(default_factory=dict)
    dry_run: bool = False
    #: Documents --reset deleted (or would delete), per non-empty collection.
    deleted: dict[str, int] = field(default_factory=dict)
    backup_path: Path | None = None
    would_create: dict[str, int] = field(default_factory=dict)


#: Read by `make bridge`'s simulated terminal, so the demo's MT5 deposits equal its investments.
DEMO_DEPOSITS_FILE = REPO_ROOT / "var" / "demo_mt5_deposits.json"


def _write_demo_deposits(deposits: dict[int, Decimal]) -> None:
    DEMO_DEPOSITS_FILE.parent.mkdir(parents=True, exist_ok=True)
    DEMO_DEPOSITS_FILE.write_text(
        json.dumps({str(login): str(amount) for login, amount in deposits.items()}, indent=2),
        encoding="utf-8")


def planned_counts(state: str) -> dict[str, int]:
    """The documents a state creates, per collection."""
    plan = PLANS.get(state)
    if plan is None:
        return dict.fromkeys(("users", "investments", "mt5_accounts", "crm_prospects"), 0)
    mapped = (sum(1 for index in range(1, plan.clients + 1) if index % plan.mapped_every == 0)
              if plan.mapped_every else 0)
    # The demo's lifecycle showcase: closed, incubating, pending and cancelled investments,
    # the first two on MT5 accounts of their own.
    showcase = 4 if state == "demo" else 0
    return {"users": 2 + plan.clients + (1 if plan.convert_one else 0),
            "investments": plan.clients + showcase,
            "mt5_accounts": mapped + showcase // 2,
            "crm_prospects": plan.prospects}


async def _refuse_non_demo_users(db: AsyncDatabase[dict[str, Any]]) -> None:
    outside = 0
    async for doc in db["users"].find({}, {"email": 1}):
        email = doc.get("email")
        if not isinstance(email, str) or not email.lower().endswith(SEED_DOMAIN):
            outside += 1
    if outside:
        raise CommandRefused(
            f"refusing --reset: {outside} user(s) have an e-mail outside {SEED_DOMAIN}, so this "
            "is not only seeded data; pass --reset-non-demo-data as well to delete them "
            "(after a backup)")


async def _reset(
    db: AsyncDatabase[dict[str, Any]], report: SeedReport, backup_directory: Path | None,
    keys: BackupKeys | None,
) -> None:
    counts = {name: await db[name].count_documents({}) for name in SEEDED_COLLECTIONS}
    report.deleted = {name: count for name, count in counts.items() if count}
    if report.dry_run or not report.deleted:
        return
    # Encrypted like every other backup when BACKUP_ENCRYPTION_KEY is set.
    report.backup_path = default_path(db.name, "before-seed-reset", directory=backup_directory,
                                      encrypted=keys is not None)
    await backup(db, report.backup_path, collections=list(report.deleted), keys=keys)
    run_id = f"seed-reset-{ObjectId()}"
    for name in report.deleted:
        audited = audited_collection(name)
        if audited is not None:
            # The audit records of these documents stay; each removal is recorded first.
            removed = [doc async for doc in db[name].find({}, {audited.entity_key: 1})]
            await record_each(db, name, removed, script="seed", verb="delete",
                                  run_id=run_id,
                                  reason=f"seed --reset (backup {report.backup_path.name})")
        await db[name].delete_many({})
    await record_script_run(db, script="seed", action="data_script.seed_reset",
                            run_id=run_id,
                            summary={"deleted": report.deleted,
                                     "backup": str(report.backup_path)})


async def seed(
    db: AsyncDatabase[dict[str, Any]],
    settings: Settings,
    *,
    state: str,
    seed_number: int = 1,
    reset: bool = False,
    reset_non_demo_data: bool = False,
    dry_run: bool = False,
    backup_directory: Path | None = None,
) -> SeedReport:
    if settings.is_production:
        raise CommandRefused("refusing to seed a production database")
    if state not in STATES:
        raise CommandRefused(f"unknown state {state!r}; choose one of {', '.join(STATES)}")
    report = SeedReport(state=state, seed=seed_number, dry_run=dry_run)
    if reset:
        if not reset_non_demo_data:
            await _refuse_non_demo_users(db)
    elif await db["users"].count_documents({}, limit=1):
        raise CommandRefused("the database already holds users; pass --reset to replace the "
                             "seeded collections")
    if dry_run:
        if reset:
            await _reset(db, report, backup_directory, BackupKeys.from_settings(settings))
        report.would_create = planned_counts(state)
        return report
    await index_sync.apply(db, await index_sync.plan(db))
    if reset:
        await _reset(db, report, backup_directory, BackupKeys.from_settings(settings))
    if state != "empty":
        await _populate(Services(db, settings), PLANS[state], random.Random(seed_number), report)
    for name in ("users", "investments", "mt5_accounts", "crm_prospects"):
        report.counts[name] = await db[name].count_documents({})
    if report.mt5_deposits and settings.fidus_env is Environment.DEVELOPMENT:
        _write_demo_deposits(report.mt5_deposits)
    await record_script_run(db, script="seed", action="data_script.seed",
                            run_id=f"seed-{state}-{ObjectId()}",
                            summary={"state": state, "seed": seed_number, **report.counts})
    return report


def _id(value: ObjectId | None) -> ObjectId:
    if value is None:
        raise CommandRefused("a created document came back without an _id")
    return value


def _account(email: str, username: str, first: str, last: str,
             user_type: UserType) -> UserCreate:
    return UserCreate(email=email, username=username, password=SecretStr(DEMO_PASSWORD),
                      first_name=first, last_name=last, user_type=user_type)


async def _populate(services: Services, plan: Plan, rng: random.Random,
                    report: SeedReport) -> None:
    script = Actor.script("seed")
    admin = await services.users.create_user(
        _account("admin@fidus.example", "admin", "Ada", "Admin", UserType.ADMIN), actor=script,
        kyc_status=KycStatus.APPROVED)
    as_admin = Actor.user(admin.id, "admin")
    manager = await services.users.create_user(
        _account("manager@fidus.example", "manager", "Marco", "Manager", UserType.MANAGER),
        actor=as_admin, kyc_status=KycStatus.APPROVED)
    report.logins += [("admin@fidus.example", DEMO_PASSWORD, "admin"),
                      ("manager@fidus.example", DEMO_PASSWORD, "manager")]
    names = rng.sample([(f, last) for f in _FIRST for last in _LAST], plan.clients)
    for index, (first, last) in enumerate(names, start=1):
        email = f"client{index}@fidus.example"
        client = await services.users.create_user(
            _account(email, f"client{index}", first, last, UserType.CLIENT), actor=as_admin,
            kyc_status=KycStatus.APPROVED)
        report.logins.append((email, DEMO_PASSWORD, "client"))
        fund = plan.funds[(index - 1) % len(plan.funds)]
        minimum = services.funds.get(fund).minimum
        amount = (minimum * rng.randint(1, 8)).quantize(Decimal("0.01"))
        deposit = date(2025, 1, 1) + timedelta(days=rng.randint(0, 300))
        mapping = None
        if plan.mapped_every and index % plan.mapped_every == 0:
            login = FIRST_MT5_LOGIN + len(report.mt5_logins)
            report.mt5_logins.append(login)
            report.mt5_deposits[login] = amount
            mapping = Mt5AccountCreate(
                account_id=f"MT5-{login}", client_id=client.id, fund_code=fund,
                mt5_login=login, broker_code=BROKER, server=MT5_SERVER,
                investor_password=SecretStr(f"investor-{login}"), currency="USD")
        await services.investments.create(
            InvestmentCreate(client_id=client.id, fund_code=fund, principal_amount=amount,
                             currency="USD", deposit_date=deposit),
            actor=as_admin, idempotency_key=f"seed-{report.state}-{report.seed}-{index:04d}",
            mt5_account=mapping)
    if report.state == "demo":
        await _lifecycle_showcase(services, report, actor=as_admin)
    for index in range(1, plan.prospects + 1):
        first, last = rng.choice(_FIRST), rng.choice(_LAST)
        prospect = await services.crm.create(
            ProspectCreate(name=f"{first} {last}", email=f"prospect{index}@fidus.example",
                           assigned_to=manager.id, source="referral"), actor=as_admin)
        if plan.convert_one and index == 1:
            for stage in (ProspectStage.CONTACTED, ProspectStage.QUALIFIED,
                          ProspectStage.PROPOSAL, ProspectStage.NEGOTIATION, ProspectStage.WON):
                prospect = await services.crm.move(_id(prospect.id), stage, actor=as_admin)
            email = f"prospect{index}@fidus.example"
            account = _account(email, f"prospect{index}", first, last, UserType.CLIENT)
            await services.crm.convert(_id(prospect.id), account, actor=as_admin)
            report.logins.append((f"prospect{index}@fidus.example", DEMO_PASSWORD, "client"))


# command line -----------------------------------------------------------------------------


def parser() -> argparse.ArgumentParser:
    result = base_parser("make seed", __doc__ or "", writes=True)
    result.add_argument("--state", choices=STATES, default="dev")
    result.add_argument("--seed", type=int, default=1, help="the same number, the same data")
    result.add_argument("--reset", action="store_true",
                        help="empty the seeded collections first, after a backup (never "
                             "audit_log; never in production)")
    result.add_argument("--reset-non-demo-data", action="store_true",
                        help=f"let --reset delete users outside {SEED_DOMAIN} too")
    result.add_argument("--backup-dir", type=Path, default=None,
                        help="where --reset writes its backup (default: var/backups)")
    return result


def _refuse_production(args: argparse.Namespace, settings: Settings) -> None:
    if settings.is_production:
        raise CommandRefused("refusing to seed a production database")


async def _command(ctx: Context) -> Outcome:
    args = ctx.args
    report = await seed(ctx.db, ctx.settings, state=args.state, seed_number=args.seed,
                        reset=args.reset, reset_non_demo_data=args.reset_non_demo_data,
                        dry_run=args.dry_run, backup_directory=args.backup_dir)
    if report.dry_run:
        names = sorted(set(report.deleted) | set(report.would_create))
        return Outcome(
            title=f"seed state {report.state} (seed {report.seed}): dry run, nothing written",
            columns=("collection", "would delete", "would create"),
            rows=[(name, report.deleted.get(name, 0), report.would_create.get(name, 0))
                  for name in names],
            data={"state": report.state, "seed": report.seed, "dry_run": True,
                  "would_delete": report.deleted, "would_create": report.would_create},
        )
    messages = []
    if report.backup_path is not None:
        messages.append(f"backup of the reset collections: {report.backup_path}")
    messages += [f"login: {email} / {password} ({role})" for email, password, role in
                 report.logins]
    if report.mt5_logins:
        messages.append("MT5 logins mapped (server " + MT5_SERVER + "): "
                        + ", ".join(map(str, report.mt5_logins)) + "; run make bridge + make sync")
    return Outcome(
        title=f"seeded state {report.state} (seed {report.seed})",
        columns=("collection", "documents"),
        rows=list(report.counts.items()),
        data={"state": report.state, "seed": report.seed, "counts": report.counts,
              "deleted": report.deleted,
              "backup": str(report.backup_path) if report.backup_path else None,
              "logins": [{"email": e, "password": p, "role": r} for e, p, r in report.logins],
              "mt5_logins": report.mt5_logins},
        messages=messages,
    )


def main(argv: Sequence[str] | None = None, *, settings: Settings | None = None) -> int:
    return run_command(argv, parser=parser(), handler=_command, settings=settings,
                       check=_refuse_production)


async def _pay_due(services: Services, investment: Investment, *, actor: Actor,
                   paid_before: date, principal: bool = False) -> None:
    """Pay the items of `investment` due before `paid_before`, on their due dates; the
    principal only when asked."""
    for item in await services.contracts.items_of(investment):
        due = item.due_date.date()
        if item.status is ScheduleItemStatus.DUE and item.amount is not None \
                and due < paid_before \
                and (principal or item.kind is not ScheduleItemKind.PRINCIPAL):
            await services.contracts.pay(
                investment, item.number, paid_on=due, reference=f"DEMO-{item.investment_ref}-"
                f"{item.number:02d}", request_key=f"seed-payout-{investment.id}-{item.number}",
                actor=actor)


def _demo_mapping(client: User, fund: str, amount: Decimal,
                        report: SeedReport) -> Mt5AccountCreate:
    login = FIRST_MT5_LOGIN + len(report.mt5_logins)
    report.mt5_logins.append(login)
    report.mt5_deposits[login] = amount
    return Mt5AccountCreate(
        account_id=f"MT5-{login}", client_id=client.id, fund_code=fund, mt5_login=login,
        broker_code=BROKER, server=MT5_SERVER, investor_password=SecretStr(f"investor-{login}"),
        currency="USD")


async def _lifecycle_showcase(services: Services, report: SeedReport, *, actor: Actor) -> None:
    """Investments in every state of the contract, with paid and due items."""
    today = services.contracts.today()
    clients = {user.email: user for user in (await services.users.search(
        user_type=UserType.CLIENT, page_size=100)).items}
    for investment in (await services.investments.search(page_size=100)).items:
        await _pay_due(services, investment, actor=actor,
                       paid_before=today - timedelta(days=45))

    async def record(email: str, fund: str, amount: str, deposit: date, *, mapped: bool,
                     **extra: Any) -> Investment:
        client = clients[email]
        mapping = _demo_mapping(client, fund, Decimal(amount), report) if mapped else None
        created = await services.investments.create(
            InvestmentCreate(client_id=_id(client.id), fund_code=fund,
                             principal_amount=Decimal(amount), currency="USD",
                             deposit_date=deposit, **extra),
            actor=actor,
            idempotency_key=f"seed-{report.state}-{report.seed}-{fund}-{email.split('@')[0]}",
            mt5_account=mapping)
        return created.investment

    closed = await record("client1@fidus.example", "BALANCE", "50000.00", date(2024, 6, 14),
                          mapped=True)
    await _pay_due(services, closed, actor=actor, paid_before=today + timedelta(days=1),
                   principal=True)
    await record("client2@fidus.example", "DYNAMIC", "250000.00", today - timedelta(days=20),
                 mapped=True, invitation_reason="introduced by the fund's board")
    if "client3@fidus.example" in clients:
        await record("client3@fidus.example", "BALANCE", "60000.00", today - timedelta(days=2),
                     mapped=False, deposit_received=False)
    if "client4@fidus.example" in clients:
        mistaken = await record("client4@fidus.example", "CORE", "15000.00",
                                today - timedelta(days=40), mapped=False)
        await services.investments.set_status(
            _id(mistaken.id), InvestmentStatus.CANCELLED, actor=actor,
            reason="recorded against the wrong client")
