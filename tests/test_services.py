import asyncio
from datetime import timedelta
from decimal import Decimal

import pytest
from bson import Decimal128

from backend.errors import (
    AuthenticationFailed,
    DatabaseUnavailable,
    DuplicateEntity,
    FundMinimumNotMet,
    InvalidData,
    SignInRefused,
    TransitionNotAllowed,
    VersionConflict,
)
from backend.models.users import KycStatus
from backend.repositories.base import utcnow
from backend.services import Services
from tests.factories import ADMIN, PASSWORD, investment_create, make_user, mt5_create
from tests.support import CommandRecorder, InspectableServices


class Clock:
    def __init__(self) -> None:
        self.now = utcnow()

    def __call__(self):  # type: ignore[no-untyped-def]
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def services(synced_db, settings, clock) -> Services:  # type: ignore[no-untyped-def]
    return InspectableServices(synced_db, settings, clock=clock)


async def audit_records(services: Services, entity_id: str) -> list[dict]:  # type: ignore[type-arg]
    return [r async for r in services.db["audit_log"].find({"entity_id": entity_id})]


async def test_user_round_trip_and_duplicate_email(services: Services) -> None:
    user = await make_user(services, email="ada@fidus.example", username="ada")
    fetched = await services.users.repo.get(str(user.id))
    assert fetched.email == "ada@fidus.example"
    assert fetched.password_hash != PASSWORD and fetched.password_hash.startswith("$2b$04$")
    with pytest.raises(DuplicateEntity) as caught:
        await make_user(services, email="ADA@fidus.example", username="ada2")
    assert caught.value.field == "email"
    assert await services.db["users"].count_documents({}) == 1


async def test_long_passwords_are_not_truncated(services: Services) -> None:
    base = "x" * 100
    user = await make_user(services, password=base + "A")
    with pytest.raises(AuthenticationFailed):
        await services.auth.login(user.email, base + "B")
    pair = await services.auth.login(user.email, base + "A")
    assert pair.user.id == user.id


async def test_lockout_after_five_failures_and_unlock_after_window(
    services: Services, clock: Clock
) -> None:
    user = await make_user(services)
    for attempt in range(5):
        with pytest.raises(SignInRefused) as caught:
            await services.auth.login(user.username, "wrong-password")
        assert caught.value.code == "INVALID_CREDENTIALS"
        assert caught.value.locked is (attempt == 4)
    # Locked: even the right password is refused, with the very same answer.
    with pytest.raises(SignInRefused) as locked:
        await services.auth.login(user.username, PASSWORD)
    assert (locked.value.code, locked.value.message, locked.value.locked) == (
        "INVALID_CREDENTIALS", "the login or password is wrong", True)
    clock.now += timedelta(minutes=14, seconds=59)
    with pytest.raises(SignInRefused):
        await services.auth.login(user.username, PASSWORD)
    clock.now += timedelta(seconds=2)
    pair = await services.auth.login(user.username, PASSWORD)
    stored = await services.users.repo.get(user.id)  # type: ignore[arg-type]
    assert pair.user.id == user.id
    assert stored.failed_login_attempts == 0 and stored.locked_until is None


async def test_success_resets_the_failure_counter(services: Services) -> None:
    user = await make_user(services)
    for _ in range(4):
        with pytest.raises(AuthenticationFailed):
            await services.auth.login(user.email, "wrong-password")
    await services.auth.login(user.email, PASSWORD)
    for _ in range(4):
        with pytest.raises(AuthenticationFailed):
            await services.auth.login(user.email, "wrong-password")
    assert (await services.auth.login(user.email, PASSWORD)).user.id == user.id


async def test_unknown_user_is_checked_against_a_dummy_hash(services: Services) -> None:
    calls: list[str] = []
    real = services.auth.dummy_hash.value

    async def spy() -> str:
        calls.append("dummy")
        return await real()

    services.auth.dummy_hash.value = spy  # type: ignore[method-assign]
    with pytest.raises(AuthenticationFailed) as caught:
        await services.auth.login("nobody@fidus.example", "whatever-password")
    assert caught.value.code == "INVALID_CREDENTIALS"
    assert calls == ["dummy"]


async def test_kyc_transitions(services: Services) -> None:
    user = await make_user(services)
    with pytest.raises(InvalidData) as caught:
        await services.users.set_kyc(user.id, KycStatus.REJECTED, actor=ADMIN)  # type: ignore[arg-type]
    assert caught.value.code == "REASON_REQUIRED"
    approved = await services.users.set_kyc(user.id, KycStatus.APPROVED, actor=ADMIN,  # type: ignore[arg-type]
                                            reason="passport ok")
    assert approved.kyc_status is KycStatus.APPROVED
    assert approved.kyc_reviewed_by == ADMIN.id and approved.kyc_decided_at is not None
    with pytest.raises(TransitionNotAllowed):
        await services.users.set_kyc(user.id, KycStatus.REJECTED, actor=ADMIN, reason="x")  # type: ignore[arg-type]
    with pytest.raises(TransitionNotAllowed):
        await services.users.set_kyc(user.id, KycStatus.APPROVED, actor=ADMIN)  # type: ignore[arg-type]
    back = await services.users.set_kyc(user.id, KycStatus.IN_REVIEW, actor=ADMIN)  # type: ignore[arg-type]
    assert back.kyc_status is KycStatus.IN_REVIEW


async def test_every_mutation_leaves_one_audit_record(services: Services) -> None:
    user = await make_user(services)
    records = await audit_records(services, str(user.id))
    assert [r["action"] for r in records] == ["user.create"]
    assert records[0]["before"] is None and records[0]["after"]["email"] == user.email
    assert "password_hash" not in records[0]["after"]
    approved = await services.users.set_kyc(user.id, KycStatus.APPROVED, actor=ADMIN,  # type: ignore[arg-type]
                                            reason="ok")
    records = await audit_records(services, str(user.id))
    assert [r["action"] for r in records] == ["user.create", "user.kyc.approved"]
    decision = records[1]
    assert decision["before"]["kyc_status"] == "pending"
    assert decision["after"]["kyc_status"] == "approved"
    assert decision["actor_id"] == ADMIN.id and decision["reason"] == "ok"
    created = await services.investments.create(investment_create(approved), actor=ADMIN)
    inv_records = await audit_records(services, created.investment.investment_id)
    assert len(inv_records) == 1 and inv_records[0]["after"]["principal_amount"] == Decimal128(
        "10000.00")


async def test_a_change_and_its_audit_record_are_stored_together_when_the_relay_fails(
    services: Services,
) -> None:
    """The record rides in the changed document; a relay that cannot copy it leaves it there,
    and the next relay copies it exactly once."""
    user = await make_user(services)
    real_append = services.audit.log.append_once

    async def down(entry: dict) -> bool:  # type: ignore[type-arg]
        raise DatabaseUnavailable("the database is unavailable")

    services.audit.log.append_once = down  # type: ignore[method-assign]
    changed = await services.users.set_kyc(user.id, KycStatus.APPROVED, actor=ADMIN, reason="ok")  # type: ignore[arg-type]
    assert changed.kyc_status is KycStatus.APPROVED
    assert [r for r in await audit_records(services, str(user.id))
            if r["action"] == "user.kyc.approved"] == []
    raw = await services.db["users"].find_one({"_id": user.id})
    assert [entry["action"] for entry in raw["_outbox"]] == ["user.kyc.approved"]

    services.audit.log.append_once = real_append  # type: ignore[method-assign]
    assert await services.audit.relay() == 1
    assert await services.audit.relay() == 0
    records = [r for r in await audit_records(services, str(user.id))
               if r["action"] == "user.kyc.approved"]
    assert len(records) == 1 and records[0]["_id"] == raw["_outbox"][0]["_id"]
    assert records[0]["after"]["kyc_status"] == "approved"
    assert records[0]["before"]["kyc_status"] == "pending"
    assert (await services.db["users"].find_one({"_id": user.id}))["_outbox"] == []


async def test_a_relay_that_dies_after_copying_copies_nothing_twice(services: Services) -> None:
    user = await make_user(services)
    real_clear = services.users.repo.clear_audit

    async def crash(*args: object, **kwargs: object) -> None:
        raise DatabaseUnavailable("the database is unavailable")

    services.users.repo.clear_audit = crash  # type: ignore[method-assign]
    await services.users.set_kyc(user.id, KycStatus.APPROVED, actor=ADMIN, reason="ok")  # type: ignore[arg-type]
    services.users.repo.clear_audit = real_clear  # type: ignore[method-assign]
    # The fast path copied the record, then failed to clear it; the relay finds it copied.
    assert await services.audit.relay() == 0
    records = [r for r in await audit_records(services, str(user.id))
               if r["action"] == "user.kyc.approved"]
    assert len(records) == 1
    assert (await services.db["users"].find_one({"_id": user.id}))["_outbox"] == []


async def test_fund_minimum_refusal_names_fund_and_minimum(services: Services) -> None:
    client = await make_user(services, kyc=KycStatus.APPROVED)
    with pytest.raises(FundMinimumNotMet) as caught:
        await services.investments.create(
            investment_create(client, fund_code="BALANCE", principal_amount=Decimal("49999.99")),
            actor=ADMIN)
    assert "BALANCE" in caught.value.message and "50000.00" in caught.value.message
    assert caught.value.details["minimum"] == "50000.00"
    assert await services.db["investments"].count_documents({}) == 0


async def test_investment_needs_an_approved_active_client(services: Services) -> None:
    pending = await make_user(services)
    with pytest.raises(InvalidData) as caught:
        await services.investments.create(investment_create(pending), actor=ADMIN)
    assert caught.value.code == "KYC_NOT_APPROVED"


async def test_twenty_concurrent_creates_store_one(services: Services) -> None:
    client = await make_user(services, kyc=KycStatus.APPROVED)
    data = investment_create(client)
    results = await asyncio.gather(
        *(services.investments.create(data, actor=ADMIN) for _ in range(20)),
        return_exceptions=True)
    created = [r for r in results if not isinstance(r, BaseException) and r.created]
    duplicates = [r for r in results if isinstance(r, DuplicateEntity)]
    assert len(created) == 1
    assert len(duplicates) == 19
    assert await services.db["investments"].count_documents({}) == 1


async def test_twenty_concurrent_creates_with_one_key_return_the_first(
    services: Services,
) -> None:
    client = await make_user(services, kyc=KycStatus.APPROVED)
    data = investment_create(client)
    results = await asyncio.gather(
        *(services.investments.create(data, actor=ADMIN, idempotency_key="key-0001-abcdef")
          for _ in range(20)), return_exceptions=True)
    assert not [r for r in results if isinstance(r, BaseException)]
    ids = {r.investment.id for r in results}  # type: ignore[union-attr]
    assert len(ids) == 1
    assert sum(1 for r in results if r.created) == 1  # type: ignore[union-attr]
    assert await services.db["investments"].count_documents({}) == 1


async def test_concurrent_updates_from_one_version_one_wins(services: Services) -> None:
    user = await make_user(services)
    repo = services.users.repo
    results = await asyncio.gather(
        repo.update(user.id, {"first_name": "Grace"}, expected_version=user.version),  # type: ignore[arg-type]
        repo.update(user.id, {"first_name": "Marie"}, expected_version=user.version),  # type: ignore[arg-type]
        return_exceptions=True)
    wins = [r for r in results if not isinstance(r, BaseException)]
    conflicts = [r for r in results if isinstance(r, VersionConflict)]
    assert len(wins) == 1 and len(conflicts) == 1
    stored = await repo.get(user.id)  # type: ignore[arg-type]
    assert stored.version == user.version + 1
    assert stored.first_name == wins[0].first_name


async def test_mt5_password_encrypted_at_rest(services: Services) -> None:
    client = await make_user(services, kyc=KycStatus.APPROVED)
    account = await services.mt5.create_mapping(mt5_create(client), actor=ADMIN)
    raw = await services.db["mt5_accounts"].find_one({"_id": account.id})
    assert raw is not None
    assert "investor-pass-1" not in str(raw)
    assert await services.mt5.repo.investor_password(account) == "investor-pass-1"
    audit = await audit_records(services, str(account.id))
    assert "investor_password_encrypted" not in audit[0]["after"]


async def test_investment_links_the_clients_mt5_account(services: Services) -> None:
    client = await make_user(services, kyc=KycStatus.APPROVED)
    account = await services.mt5.create_mapping(mt5_create(client), actor=ADMIN)
    result = await services.investments.create(investment_create(client), actor=ADMIN)
    assert result.investment.mt5_account_id == account.id
    linked = await services.mt5.repo.get(account.id)  # type: ignore[arg-type]
    assert linked.investment_id == result.investment.id


async def test_investment_creates_the_mapping_when_none_exists(services: Services) -> None:
    client = await make_user(services, kyc=KycStatus.APPROVED)
    result = await services.investments.create(
        investment_create(client), actor=ADMIN, mt5_account=mt5_create(client))
    mapping = await services.mt5.repo.for_client_fund(client.id, "CORE")  # type: ignore[arg-type]
    assert mapping is not None and mapping.investment_id == result.investment.id
    assert result.investment.mt5_account_id == mapping.id


async def test_no_raw_session_token_is_stored(services: Services) -> None:
    user = await make_user(services)
    pair = await services.auth.login(user.email, PASSWORD)
    everything = ""
    for name in await services.db.list_collection_names():
        everything += str([d async for d in services.db[name].find()])
    assert pair.refresh_token not in everything
    assert pair.access_token not in everything


async def test_listing_investments_with_client_names_costs_few_round_trips(
    services: Services, command_recorder: CommandRecorder
) -> None:
    clients = [await make_user(services, kyc=KycStatus.APPROVED) for _ in range(4)]
    docs = []
    for i in range(100):
        client = clients[i % 4]
        inv = investment_create(client, principal_amount=Decimal(10000 + i))
        docs.append(inv)
    for data in docs:
        await services.investments.create(data, actor=ADMIN)
    command_recorder.reset()
    rows, total = await services.investments.list_with_client_names(page=1, page_size=100)
    assert total == 100 and len(rows) == 100
    assert all(row.client_name and row.client_name.startswith("Ada Client") for row in rows)
    assert command_recorder.count() <= 2, command_recorder.names()


async def test_money_sums_stay_exact(services: Services) -> None:
    client = await make_user(services, kyc=KycStatus.APPROVED)
    for amount in ("10000.10", "10000.20", "10000.30"):
        await services.investments.create(
            investment_create(client, principal_amount=Decimal(amount)), actor=ADMIN)
    [row] = await services.investments.repo.totals_by_fund()
    assert row["principal"].to_decimal() == Decimal("30000.60")


async def test_performance_update_stores_exact_money(services: Services) -> None:
    client = await make_user(services, kyc=KycStatus.APPROVED)
    created = await services.investments.create(investment_create(client), actor=ADMIN)
    updated = await services.investments.update_performance(
        created.investment, Decimal("10312.55"), at=utcnow())
    assert updated.current_value == Decimal("10312.55")
    assert updated.gain_amount == Decimal("312.55") and updated.return_pct == Decimal("3.13")
    raw = await services.db["investments"].find_one({"_id": created.investment.id})
    assert raw is not None and raw["current_value"] == Decimal128("10312.55")


async def test_prospect_pipeline_moves_and_converts_once(services: Services) -> None:
    from backend.errors import Conflict
    from backend.models.crm_prospects import ProspectCreate, ProspectStage
    from tests.factories import user_create

    prospect = await services.crm.create(
        ProspectCreate(name="Grace Prospect", email="grace@fidus.example"), actor=ADMIN)
    assert prospect.stage is ProspectStage.LEAD
    with pytest.raises(TransitionNotAllowed):
        await services.crm.move(prospect.id, ProspectStage.WON, actor=ADMIN)  # type: ignore[arg-type]
    with pytest.raises(TransitionNotAllowed):
        await services.crm.convert(prospect.id, user_create(), actor=ADMIN)  # type: ignore[arg-type]
    for stage in (ProspectStage.CONTACTED, ProspectStage.QUALIFIED, ProspectStage.PROPOSAL,
                  ProspectStage.NEGOTIATION, ProspectStage.WON):
        prospect = await services.crm.move(prospect.id, stage, actor=ADMIN)  # type: ignore[arg-type]
    conversion = await services.crm.convert(prospect.id, user_create(), actor=ADMIN)  # type: ignore[arg-type]
    converted, client = conversion.prospect, conversion.client
    assert conversion.created and converted.converted_client_id == client.id
    assert client.source_prospect_id == prospect.id
    with pytest.raises(Conflict) as again:
        await services.crm.convert(prospect.id, user_create(), actor=ADMIN)  # type: ignore[arg-type]
    assert again.value.code == "ALREADY_CONVERTED"
    assert await services.db["users"].count_documents({}) == 1
    actions = [r["action"] for r in await audit_records(services, str(prospect.id))]
    assert actions[0] == "prospect.create" and actions[-1] == "prospect.convert"
    assert len(actions) == 7


async def test_follow_up_due_excludes_prospects_without_a_date(
    services: Services, clock: Clock
) -> None:
    from backend.models.crm_prospects import ProspectCreate

    due = await services.crm.create(ProspectCreate(
        name="Due Soon", email="due@fidus.example",
        next_follow_up=clock.now - timedelta(days=1)), actor=ADMIN)
    await services.crm.create(ProspectCreate(name="Later", email="later@fidus.example",
                                             next_follow_up=clock.now + timedelta(days=9)),
                              actor=ADMIN)
    await services.crm.create(ProspectCreate(name="Undated", email="undated@fidus.example"),
                              actor=ADMIN)
    page = await services.crm.repo.search(follow_up_due_by=clock.now)
    assert [p.id for p in page.items] == [due.id] and page.total == 1


async def test_an_admin_cannot_deactivate_or_demote_themselves(services: Services) -> None:
    from backend.errors import PermissionDenied
    from backend.models.users import UserType, UserUpdate
    from backend.services import Actor

    admin = await make_user(services, user_type=UserType.ADMIN)
    me = Actor.user(admin.id, "admin")
    with pytest.raises(PermissionDenied):
        await services.users.deactivate(admin.id, actor=me)  # type: ignore[arg-type]
    with pytest.raises(PermissionDenied):
        await services.users.update_user(admin.id, UserUpdate(user_type=UserType.CLIENT),  # type: ignore[arg-type]
                                         actor=me)
    renamed = await services.users.update_user(admin.id, UserUpdate(first_name="Still"),  # type: ignore[arg-type]
                                               actor=me)
    assert renamed.is_active and renamed.user_type is UserType.ADMIN
    other = await make_user(services)
    assert not (await services.users.deactivate(other.id, actor=me)).is_active  # type: ignore[arg-type]


async def test_parallel_guesses_cannot_outrun_the_lockout(services: Services) -> None:
    user = await make_user(services)
    calls: list[int] = []
    import backend.services.sign_in_guard as guard_module

    real_verify = guard_module.verify_password
    dummy: list[int] = []

    async def counting(password: str, password_hash: str) -> bool:
        (calls if password_hash == user.password_hash else dummy).append(1)
        return await real_verify(password, password_hash)

    guard_module.verify_password = counting  # type: ignore[assignment]
    try:
        results = await asyncio.gather(
            *(services.auth.login(user.email, f"wrong-password-{i}") for i in range(30)),
            return_exceptions=True)
    finally:
        guard_module.verify_password = real_verify  # type: ignore[assignment]
    assert {getattr(r, "code", "?") for r in results} == {"INVALID_CREDENTIALS"}
    assert sum(1 for r in results if not getattr(r, "locked", True)) == 4
    assert len(calls) == 5, "only five passwords may be checked"
    # Every refusal cost one bcrypt check: the locked ones against the dummy hash.
    assert len(dummy) == 25
    with pytest.raises(SignInRefused):
        await services.auth.login(user.email, PASSWORD)


async def test_amounts_in_fractions_of_a_cent_and_future_deposits_are_refused(
    services: Services, clock: Clock
) -> None:
    client = await make_user(services, kyc=KycStatus.APPROVED)
    with pytest.raises(InvalidData) as precision:
        await services.investments.create(
            investment_create(client, principal_amount=Decimal("10000.001")), actor=ADMIN)
    assert precision.value.code == "AMOUNT_PRECISION"
    with pytest.raises(InvalidData) as future:
        await services.investments.create(
            investment_create(client, deposit_date=(clock.now + timedelta(days=1)).date()),
            actor=ADMIN)
    assert future.value.code == "DEPOSIT_DATE_IN_FUTURE"
    assert await services.db["investments"].count_documents({}) == 0


async def test_an_active_investment_entered_by_mistake_can_be_cancelled(
    services: Services,
) -> None:
    from backend.models.investments import InvestmentStatus

    client = await make_user(services, kyc=KycStatus.APPROVED)
    created = (await services.investments.create(investment_create(client),
                                                 actor=ADMIN)).investment
    with pytest.raises(InvalidData) as no_reason:
        await services.investments.set_status(created.id, InvestmentStatus.CANCELLED,  # type: ignore[arg-type]
                                              actor=ADMIN)
    assert no_reason.value.code == "REASON_REQUIRED"
    cancelled = await services.investments.set_status(
        created.id, InvestmentStatus.CANCELLED, actor=ADMIN, reason="wrong amount entered")  # type: ignore[arg-type]
    assert cancelled.status is InvestmentStatus.CANCELLED and cancelled.cancelled_at
    again = await services.investments.create(investment_create(client), actor=ADMIN)
    assert again.created, "a cancelled record does not block re-entering the deposit"


async def test_linking_an_existing_mapping_is_audited_on_the_mapping(
    services: Services,
) -> None:
    client = await make_user(services, kyc=KycStatus.APPROVED)
    account = await services.mt5.create_mapping(mt5_create(client), actor=ADMIN)
    created = await services.investments.create(investment_create(client), actor=ADMIN)
    records = await audit_records(services, str(account.id))
    assert [r["action"] for r in records] == ["mt5_account.create", "mt5_account.link"]
    assert records[1]["before"]["investment_id"] is None
    assert records[1]["after"]["investment_id"] == created.investment.id


async def test_a_failed_mapping_leaves_no_investment_behind(services: Services) -> None:
    client = await make_user(services, kyc=KycStatus.APPROVED)
    other = await make_user(services, kyc=KycStatus.APPROVED)
    taken = await services.mt5.create_mapping(mt5_create(other), actor=ADMIN)
    clash = mt5_create(client, mt5_login=taken.mt5_login, server=taken.server)
    with pytest.raises(DuplicateEntity) as caught:
        await services.investments.create(investment_create(client), actor=ADMIN,
                                          mt5_account=clash)
    assert caught.value.details["collection"] == "mt5_accounts"
    assert await services.db["investments"].count_documents({}) == 0
    again = await services.investments.create(investment_create(client), actor=ADMIN)
    assert again.created


async def test_negative_equity_values_the_investment_at_zero_consistently(
    services: Services,
) -> None:
    client = await make_user(services, kyc=KycStatus.APPROVED)
    created = (await services.investments.create(investment_create(client),
                                                 actor=ADMIN)).investment
    valued = await services.investments.update_performance(created, Decimal("-250.00"),
                                                           at=utcnow())
    assert valued.current_value == Decimal("0")
    assert valued.gain_amount == Decimal("-10000.00") and valued.return_pct == Decimal("-100.00")
