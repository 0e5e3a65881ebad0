"""Converting a won prospect into a client: keyed steps that a retry or a concurrent twin
completes instead of repeating. One client per prospect, never an orphan client, never a
prospect left half-converted."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from bson import ObjectId

from backend.errors import Conflict, DatabaseUnavailable, DuplicateEntity
from backend.models.crm_prospects import CrmProspect, ProspectCreate, ProspectStage
from backend.services import Services
from backend.services.crm import Conversion
from tests.factories import ADMIN, make_user, user_create
from tests.support import InspectableServices


@pytest.fixture
async def services(synced_db: Any, settings: Any) -> InspectableServices:
    return InspectableServices(synced_db, settings)


async def won_prospect(services: Services, n: int = 1) -> CrmProspect:
    prospect = await services.crm.create(
        ProspectCreate(name=f"Katherine {n}", email=f"katherine{n}@fidus.example"), actor=ADMIN)
    assert prospect.id is not None
    for stage in (ProspectStage.CONTACTED, ProspectStage.QUALIFIED, ProspectStage.PROPOSAL,
                  ProspectStage.NEGOTIATION, ProspectStage.WON):
        prospect = await services.crm.move(prospect.id, stage, actor=ADMIN)
    return prospect


async def actions(services: InspectableServices, entity_id: Any) -> list[str]:
    return [r["action"] async for r in services.db["audit_log"].find(
        {"entity_id": str(entity_id)}, sort=[("at", 1), ("_id", 1)])]


async def test_ten_concurrent_conversions_create_one_client(
        services: InspectableServices) -> None:
    prospect = await won_prospect(services)
    account = user_create(email=prospect.email)

    results = await asyncio.gather(
        *(services.crm.convert(prospect.id, account, actor=ADMIN)  # type: ignore[arg-type]
          for _ in range(10)), return_exceptions=True)

    created = [r for r in results if isinstance(r, Conversion)]
    refused = [r for r in results if not isinstance(r, Conversion)]
    assert len(created) == 1 and created[0].created
    client = created[0].client
    assert all(isinstance(r, Conflict) and r.code == "ALREADY_CONVERTED" for r in refused)
    assert {r.details["client_id"] for r in refused if isinstance(r, Conflict)} == {
        str(client.id)}
    assert await services.db["users"].count_documents({"source_prospect_id": prospect.id}) == 1
    stored = await services.crm.get(prospect.id)  # type: ignore[arg-type]
    assert stored.converted_client_id == client.id
    await services.audit.relay()
    assert await actions(services, client.id) == ["user.create"]
    assert (await actions(services, prospect.id)).count("prospect.convert") == 1


async def test_a_conversion_stopped_after_creating_its_client_is_finished_by_the_retry(
        services: InspectableServices) -> None:
    prospect = await won_prospect(services)
    account = user_create(email=prospect.email)
    real_finish = services.crm.finish_conversion

    async def database_gone(*args: Any, **kwargs: Any) -> CrmProspect:
        raise DatabaseUnavailable("the database is unavailable")

    services.crm.finish_conversion = database_gone  # type: ignore[method-assign]
    with pytest.raises(DatabaseUnavailable):
        await services.crm.convert(prospect.id, account, actor=ADMIN,  # type: ignore[arg-type]
                                   idempotency_key="convert-katherine-1")
    services.crm.finish_conversion = real_finish  # type: ignore[method-assign]
    client = await services.db["users"].find_one({"source_prospect_id": prospect.id})
    assert client is not None
    assert (await services.crm.get(prospect.id)).converted_client_id is None  # type: ignore[arg-type]

    # The same request again: the same conversion, finished, answered as the first one.
    again = await services.crm.convert(prospect.id, account, actor=ADMIN,  # type: ignore[arg-type]
                                       idempotency_key="convert-katherine-1")
    assert not again.created and again.client.id == client["_id"]
    assert again.prospect.converted_client_id == client["_id"]
    # Another request (no key): refused, naming the client.
    with pytest.raises(Conflict) as refused:
        await services.crm.convert(prospect.id, account, actor=ADMIN)  # type: ignore[arg-type]
    assert refused.value.code == "ALREADY_CONVERTED"
    assert refused.value.details["client_id"] == str(client["_id"])
    assert await services.db["users"].count_documents({}) == 1


async def test_a_twin_finishes_a_conversion_its_first_attempt_left_half_done(
        services: InspectableServices) -> None:
    prospect = await won_prospect(services)
    account = user_create(email=prospect.email)
    real_finish = services.crm.finish_conversion

    async def database_gone(*args: Any, **kwargs: Any) -> CrmProspect:
        raise DatabaseUnavailable("the database is unavailable")

    services.crm.finish_conversion = database_gone  # type: ignore[method-assign]
    with pytest.raises(DatabaseUnavailable):
        await services.crm.convert(prospect.id, account, actor=ADMIN)  # type: ignore[arg-type]
    services.crm.finish_conversion = real_finish  # type: ignore[method-assign]

    with pytest.raises(Conflict) as twin:
        await services.crm.convert(prospect.id, user_create(email=prospect.email),  # type: ignore[arg-type]
                                   actor=ADMIN)
    client_id = ObjectId(twin.value.details["client_id"])
    assert (await services.crm.get(prospect.id)).converted_client_id == client_id  # type: ignore[arg-type]
    assert await services.db["users"].count_documents({}) == 1


async def test_the_same_key_for_another_conversion_is_refused(
        services: InspectableServices) -> None:
    prospect = await won_prospect(services)
    await services.crm.convert(prospect.id, user_create(email=prospect.email),  # type: ignore[arg-type]
                               actor=ADMIN, idempotency_key="convert-katherine-2")
    with pytest.raises(Conflict) as reused:
        await services.crm.convert(prospect.id, user_create(email=prospect.email),  # type: ignore[arg-type]
                                   actor=ADMIN, idempotency_key="convert-katherine-2")
    assert reused.value.code == "IDEMPOTENCY_KEY_REUSED"
    # A key another creation used already cannot name a conversion either.
    other = await won_prospect(services, 2)
    with pytest.raises(Conflict) as taken:
        await services.crm.convert(other.id, user_create(email=other.email),  # type: ignore[arg-type]
                                   actor=ADMIN, idempotency_key="convert-katherine-2")
    assert taken.value.code == "IDEMPOTENCY_KEY_REUSED"
    assert (await services.crm.get(other.id)).conversion_client_id is None  # type: ignore[arg-type]


async def test_a_client_that_cannot_be_created_releases_the_claim(
        services: InspectableServices) -> None:
    prospect = await won_prospect(services)
    await make_user(services, username="katherine")
    with pytest.raises(DuplicateEntity):
        await services.crm.convert(prospect.id, user_create(username="katherine"),  # type: ignore[arg-type]
                                   actor=ADMIN)
    released = await services.crm.get(prospect.id)  # type: ignore[arg-type]
    assert released.conversion_client_id is None and released.converted_client_id is None

    conversion = await services.crm.convert(prospect.id, user_create(username="katherine2"),  # type: ignore[arg-type]
                                            actor=ADMIN)
    assert conversion.created
    assert conversion.prospect.converted_client_id == conversion.client.id


async def test_the_claim_names_the_client_every_attempt_creates(
        services: InspectableServices) -> None:
    """A first attempt that claimed the prospect and stopped before creating the client leaves
    the claim; the next attempt creates the client under the claimed id."""
    prospect = await won_prospect(services)
    reserved = ObjectId()
    claimed = await services.repos.prospects.claim_conversion(
        prospect.id, client_id=reserved, now=services.clock())  # type: ignore[arg-type]
    assert claimed is not None and claimed.conversion_client_id == reserved
    assert claimed.version == prospect.version  # bookkeeping: no edit of the prospect

    conversion = await services.crm.convert(prospect.id, user_create(email=prospect.email),  # type: ignore[arg-type]
                                            actor=ADMIN)
    assert conversion.client.id == reserved
    assert conversion.prospect.converted_client_id == reserved
