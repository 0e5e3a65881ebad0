"""The CRM pipeline: prospects move through agreed stages; a won prospect becomes a client."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bson import ObjectId

from backend.errors import (
    Conflict,
    DuplicateEntity,
    InvalidData,
    TransitionNotAllowed,
    VersionConflict,
)
from backend.models.crm_prospects import CrmProspect, ProspectCreate, ProspectStage, ProspectUpdate
from backend.models.users import User, UserCreate
from backend.repositories.base import Clock, Page, stored_time, utcnow
from backend.repositories.registry import Repositories
from backend.security.passwords import check_password_policy
from backend.services.audit import Actor, AuditTrail
from backend.services.idempotency import Created, create_once, key_reused
from backend.services.users import UserService, same_account

S = ProspectStage
STAGE_MOVES: dict[ProspectStage, frozenset[ProspectStage]] = {
    S.LEAD: frozenset({S.CONTACTED, S.LOST}),
    S.CONTACTED: frozenset({S.QUALIFIED, S.LOST}),
    S.QUALIFIED: frozenset({S.PROPOSAL, S.LOST}),
    S.PROPOSAL: frozenset({S.NEGOTIATION, S.LOST}),
    S.NEGOTIATION: frozenset({S.WON, S.LOST}),
    S.WON: frozenset(),
    S.LOST: frozenset({S.LEAD}),
}

#: How often finishing a conversion re-reads a prospect someone keeps editing before giving up.
FINISH_ATTEMPTS = 5


@dataclass(frozen=True, slots=True)
class Conversion:
    """A converted prospect and its client; `created` is False for a repeated request."""

    prospect: CrmProspect
    client: User
    created: bool


class CrmService:
    def __init__(self, repos: Repositories, audit: AuditTrail, users: UserService, *,
                 clock: Clock = utcnow) -> None:
        self.audit = audit
        self.clock = clock
        self.users = users
        self.repo = repos.prospects

    async def create(self, data: ProspectCreate, *, actor: Actor) -> CrmProspect:
        return (await self.create_once(data, actor=actor)).item

    async def create_once(self, data: ProspectCreate, *, actor: Actor,
                          idempotency_key: str | None = None) -> Created[CrmProspect]:
        """Add a lead, once per Idempotency-Key (see `backend/services/idempotency.py`)."""
        email = str(data.email).lower()

        async def build() -> CrmProspect:
            now = self.clock()
            return CrmProspect(
                name=data.name, email=email, phone=data.phone,
                stage=ProspectStage.LEAD, stage_changed_at=now, assigned_to=data.assigned_to,
                next_follow_up=data.next_follow_up, source=data.source, notes=data.notes,
                idempotency_key=idempotency_key, created_at=now, updated_at=now, version=1,
            )

        def same(prospect: CrmProspect) -> bool:
            return (prospect.name, prospect.email, prospect.phone, prospect.assigned_to,
                    prospect.next_follow_up, prospect.source, prospect.notes) == (
                data.name, email, data.phone, data.assigned_to,
                stored_time(data.next_follow_up), data.source, data.notes)

        return await create_once(
            self.audit, self.repo, build, key=idempotency_key, same=same, what="prospect",
            name=lambda prospect: {"prospect_id": str(prospect.id)}, actor=actor,
            action="prospect.create", entity_type="prospect")

    async def _change(self, current: CrmProspect, changes: dict[str, Any], *, actor: Actor,
                      action: str, reason: str | None = None,
                      expected_version: int | None = None) -> CrmProspect:
        return await self.audit.update(self.repo, current, changes, actor=actor, action=action,
                                       entity_type="prospect", reason=reason,
                                       expected_version=expected_version)

    async def update(self, prospect_id: ObjectId | str, data: ProspectUpdate, *,
                     actor: Actor) -> CrmProspect:
        current = await self.repo.get(prospect_id)
        changes = data.model_dump(exclude_unset=True, exclude={"version"})
        if "name" in changes and changes["name"] is None:
            raise InvalidData("name cannot be empty", code="FIELD_REQUIRED")
        if not changes:
            return current
        return await self._change(current, changes, actor=actor, action="prospect.update",
                                  expected_version=data.version)

    async def move(self, prospect_id: ObjectId | str, stage: ProspectStage, *, actor: Actor,
                   reason: str | None = None,
                   expected_version: int | None = None) -> CrmProspect:
        current = await self.repo.get(prospect_id)
        if stage not in STAGE_MOVES[current.stage]:
            raise TransitionNotAllowed(
                f"a prospect cannot move from {current.stage.value} to {stage.value}",
                details={"from": current.stage.value, "to": stage.value,
                         "allowed": sorted(s.value for s in STAGE_MOVES[current.stage])})
        if stage is ProspectStage.LOST and not reason:
            raise InvalidData("moving a prospect to lost needs a reason",
                              code="REASON_REQUIRED")
        changes: dict[str, Any] = {"stage": stage.value, "stage_changed_at": self.clock()}
        if stage is ProspectStage.LOST:
            changes["lost_reason"] = reason
        return await self._change(current, changes, actor=actor,
                                  action=f"prospect.stage.{stage.value}", reason=reason,
                                  expected_version=expected_version)

    async def get(self, prospect_id: ObjectId | str) -> CrmProspect:
        return await self.repo.get(prospect_id)

    async def search(self, **filters: Any) -> Page[CrmProspect]:
        return await self.repo.search(**filters)

    async def convert(self, prospect_id: ObjectId | str, account: UserCreate, *,
                      actor: Actor, idempotency_key: str | None = None) -> Conversion:
        """Create the client user of a won prospect, once, in steps that a retry or a
        concurrent twin completes instead of repeating:

        1. claim: the prospect gets `conversion_client_id`, the id its client will have, set
           by whichever attempt comes first and used by every later one;
        2. the client is created under that id, carrying the prospect's id in
           `source_prospect_id` (unique), with its `user.create` record: one attempt creates
           it, the others find it;
        3. the prospect is marked converted (`converted_client_id`, with its
           `prospect.convert` record) by whichever attempt gets there first.

        The attempt that created the client answers with it (`created`, 201). Every other one
        completes step 3, then answers with the same result when it repeats the creating
        attempt's Idempotency-Key (200), or 409 `ALREADY_CONVERTED` naming the client.
        A client the conversion could not create (its e-mail, username or Idempotency-Key is
        another user's) releases the claim.
        """
        current = await self.repo.get(prospect_id)
        assert current.id is not None
        if current.converted_client_id is not None:
            client = await self.users.repo.get(current.converted_client_id)
            return self._repeated(current, client, account, idempotency_key)
        if current.stage is not ProspectStage.WON:
            raise TransitionNotAllowed("only a won prospect can be converted",
                                       details={"stage": current.stage.value})
        check_password_policy(account.password.get_secret_value())
        claimed = await self.repo.claim_conversion(current.id, client_id=ObjectId(),
                                                   now=self.clock())
        if claimed is None or claimed.conversion_client_id is None:
            # Converted meanwhile (or gone): answer as for a conversion found done.
            return await self.convert(current.id, account, actor=actor,
                                      idempotency_key=idempotency_key)
        client_id = claimed.conversion_client_id
        client = await self.users.build_user(account, id_=client_id,
                                             source_prospect_id=current.id,
                                             idempotency_key=idempotency_key)
        try:
            client = await self.users.add_user(client, actor=actor)
        except DuplicateEntity as error:
            existing = await self.users.repo.converted_from(current.id)
            if existing is None:
                await self.repo.release_conversion(current.id, client_id=client_id)
                if error.field == "idempotency_key":
                    raise key_reused("conversion", {"prospect_id": str(current.id)}) from error
                raise
            converted = await self.finish_conversion(current.id, existing, actor=actor)
            return self._repeated(converted, existing, account, idempotency_key)
        converted = await self.finish_conversion(current.id, client, actor=actor)
        return Conversion(converted, client, created=True)

    async def finish_conversion(self, prospect_id: ObjectId, client: User, *,
                                actor: Actor) -> CrmProspect:
        """Step 3 of a conversion: point the prospect at its client, once, with its audit
        record; whoever comes second finds it done. Also how `verify --fix` finishes a
        conversion whose client was created and whose attempt stopped there."""
        for _ in range(FINISH_ATTEMPTS):
            current = await self.repo.get(prospect_id)
            if current.converted_client_id is not None:
                return current
            try:
                return await self._change(
                    current, {"converted_client_id": client.id, "converted_at": self.clock(),
                              "conversion_client_id": client.id},
                    actor=actor, action="prospect.convert", expected_version=current.version)
            except VersionConflict:
                continue  # edited (or converted) meanwhile: read it again
        raise VersionConflict("the prospect keeps changing; try the conversion again",
                              details={"prospect_id": str(prospect_id)})

    @staticmethod
    def _repeated(prospect: CrmProspect, client: User, account: UserCreate,
                  idempotency_key: str | None) -> Conversion:
        """The answer to a conversion found already done."""
        if idempotency_key and client.idempotency_key == idempotency_key:
            if not same_account(client, account):
                raise key_reused("conversion", {"client_id": str(client.id)})
            return Conversion(prospect, client, created=False)
        raise Conflict("this prospect was already converted", code="ALREADY_CONVERTED",
                       details={"client_id": str(client.id), "prospect_id": str(prospect.id)})
