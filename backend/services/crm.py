"""The CRM pipeline: prospects move through agreed stages; a won prospect becomes a client."""

from __future__ import annotations

from typing import Any

from bson import ObjectId

from backend.errors import Conflict, InvalidData, TransitionNotAllowed
from backend.models.crm_prospects import CrmProspect, ProspectCreate, ProspectStage, ProspectUpdate
from backend.models.users import User, UserCreate
from backend.repositories.base import Clock, Page, utcnow
from backend.repositories.registry import Repositories
from backend.services.audit import Actor, AuditTrail
from backend.services.users import UserService

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


class CrmService:
    def __init__(self, repos: Repositories, audit: AuditTrail, users: UserService, *,
                 clock: Clock = utcnow) -> None:
        self.audit = audit
        self.clock = clock
        self.users = users
        self.repo = repos.prospects

    async def create(self, data: ProspectCreate, *, actor: Actor) -> CrmProspect:
        now = self.clock()
        prospect = CrmProspect(
            name=data.name, email=str(data.email).lower(), phone=data.phone,
            stage=ProspectStage.LEAD, stage_changed_at=now, assigned_to=data.assigned_to,
            next_follow_up=data.next_follow_up, source=data.source, notes=data.notes,
            created_at=now, updated_at=now, version=1,
        )

        return await self.audit.create(self.repo, prospect, actor=actor,
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
                      actor: Actor) -> tuple[CrmProspect, User]:
        """Create the client user of a won prospect, once."""
        current = await self.repo.get(prospect_id)
        if current.converted_client_id is not None:
            raise Conflict("this prospect was already converted", code="ALREADY_CONVERTED",
                           details={"client_id": str(current.converted_client_id)})
        if current.stage is not ProspectStage.WON:
            raise TransitionNotAllowed("only a won prospect can be converted",
                                       details={"stage": current.stage.value})
        # Claim the conversion first (version check), so two parallel conversions cannot both
        # create a user; the claim is released if creating the user fails.
        claimed = await self.repo.update(current.id, {"converted_at": self.clock()},  # type: ignore[arg-type]
                                         expected_version=current.version,
                                         extra_filter={"converted_client_id": None})
        try:
            client = await self.users.create_user(account, actor=actor)
        except BaseException:
            await self.repo.release_conversion(current.id)  # type: ignore[arg-type]
            raise
        converted = await self._change(claimed, {"converted_client_id": client.id},
                                       actor=actor, action="prospect.convert")
        return converted, client
