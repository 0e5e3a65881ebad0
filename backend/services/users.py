"""Users: creation, profile and role changes, deactivation, KYC/AML decisions, passwords."""

from __future__ import annotations

import secrets
from typing import Any

from bson import ObjectId

from backend.errors import (
    InvalidData,
    PermissionDenied,
    SignInRefused,
    TransitionNotAllowed,
)
from backend.models.users import (
    AmlStatus,
    KycStatus,
    ProfileUpdate,
    User,
    UserCreate,
    UserType,
    UserUpdate,
)
from backend.repositories.base import Clock, Page, utcnow
from backend.repositories.registry import Repositories
from backend.security.passwords import check_password_policy, hash_password
from backend.services.audit import Actor, AuditTrail
from backend.services.idempotency import Created, create_once
from backend.services.sign_in_guard import SignInGuard
from backend.settings import Settings

#: The review moves a compliance officer may make. A decision is never "re-decided" in place:
#: an approved or rejected file goes back to review first.
REVIEW_TRANSITIONS: dict[str, frozenset[str]] = {
    "pending": frozenset({"in_review", "approved", "rejected"}),
    "in_review": frozenset({"approved", "rejected", "pending"}),
    "approved": frozenset({"in_review"}),
    "rejected": frozenset({"in_review"}),
}


def check_review_move(kind: str, current: str, target: str, reason: str | None) -> None:
    if target not in REVIEW_TRANSITIONS[current]:
        raise TransitionNotAllowed(
            f"{kind.upper()} status cannot move from {current} to {target}",
            details={"from": current, "to": target,
                     "allowed": sorted(REVIEW_TRANSITIONS[current])},
        )
    if target == "rejected" and not reason:
        raise InvalidData(f"a {kind.upper()} rejection needs a reason", code="REASON_REQUIRED")


def new_user_id() -> str:
    return f"usr_{secrets.token_hex(8)}"


def same_account(user: User, data: UserCreate) -> bool:
    """The stored user is what `data` asks for (the password aside, which is only hashed)."""
    return (user.email == str(data.email).lower() and user.username == data.username
            and user.first_name == data.first_name and user.last_name == data.last_name
            and user.phone == data.phone and user.user_type is data.user_type)


class UserService:
    def __init__(self, repos: Repositories, settings: Settings, audit: AuditTrail, *,
                 guard: SignInGuard, clock: Clock = utcnow) -> None:
        self.settings = settings
        self.clock = clock
        self.audit = audit
        self.guard = guard
        self.repo = repos.users
        self.sessions = repos.sessions
        self.google_sessions = repos.google_sessions

    async def create_user(self, data: UserCreate, *, actor: Actor,
                          kyc_status: KycStatus = KycStatus.PENDING) -> User:
        return (await self.create_user_once(data, actor=actor, kyc_status=kyc_status)).item

    async def create_user_once(self, data: UserCreate, *, actor: Actor,
                               kyc_status: KycStatus = KycStatus.PENDING,
                               idempotency_key: str | None = None) -> Created[User]:
        """Create a user once per Idempotency-Key (see `backend/services/idempotency.py`)."""
        check_password_policy(data.password.get_secret_value())

        async def build() -> User:
            return await self.build_user(data, kyc_status=kyc_status,
                                         idempotency_key=idempotency_key)

        return await create_once(
            self.audit, self.repo, build, key=idempotency_key,
            same=lambda user: same_account(user, data) and user.source_prospect_id is None,
            what="user", name=lambda user: {"user_id": str(user.id)}, actor=actor,
            action="user.create", entity_type="user")

    async def build_user(self, data: UserCreate, *, kyc_status: KycStatus = KycStatus.PENDING,
                         idempotency_key: str | None = None, id_: ObjectId | None = None,
                         source_prospect_id: ObjectId | None = None) -> User:
        """A new user (not yet stored): the password checked against the policy and hashed."""
        password = data.password.get_secret_value()
        check_password_policy(password)
        now = self.clock()
        return User(
            id=id_,
            user_id=new_user_id(),
            username=data.username,
            email=str(data.email).lower(),
            user_type=data.user_type,
            first_name=data.first_name,
            last_name=data.last_name,
            phone=data.phone,
            is_active=True,
            kyc_status=kyc_status,
            aml_status=AmlStatus.PENDING,
            password_hash=await hash_password(password, rounds=self.settings.bcrypt_rounds),
            password_changed_at=now,
            failed_login_attempts=0,
            source_prospect_id=source_prospect_id,
            idempotency_key=idempotency_key,
            created_at=now,
            updated_at=now,
            version=1,
        )

    async def add_user(self, user: User, *, actor: Actor) -> User:
        """Store a user built by `build_user`, with its `user.create` record."""
        return await self.audit.create(self.repo, user, actor=actor, action="user.create",
                                       entity_type="user")

    async def get(self, user_id: ObjectId | str) -> User:
        return await self.repo.get(user_id)

    async def by_login(self, login: str) -> User | None:
        return await self.repo.by_login(login)

    async def any_admin(self) -> bool:
        return bool(await self.repo.by_type(UserType.ADMIN, active_only=False))

    async def any_user(self) -> bool:
        return not await self.repo.is_empty()

    async def search(self, **filters: Any) -> Page[User]:
        return await self.repo.search(**filters)

    async def statistics(self) -> dict[str, Any]:
        return await self.repo.statistics()

    async def _update(self, user: User, changes: dict[str, Any], *, actor: Actor, action: str,
                      reason: str | None = None, expected_version: int | None = None) -> User:
        return await self.audit.update(self.repo, user, changes, actor=actor, action=action,
                                       entity_type="user", reason=reason,
                                       expected_version=expected_version)

    async def update_user(self, user_id: ObjectId | str, data: UserUpdate, *,
                          actor: Actor) -> User:
        user = await self.repo.get(user_id)
        changes = data.model_dump(exclude_unset=True, exclude={"version"})
        if "email" in changes and changes["email"] is not None:
            changes["email"] = str(changes["email"]).lower()
        if "user_type" in changes and changes["user_type"] is not None:
            changes["user_type"] = UserType(changes["user_type"]).value
        if changes.get("is_active") is False:
            changes["deactivated_at"] = self.clock()
        elif changes.get("is_active") is True:
            changes["deactivated_at"] = None
        for required in ("email", "username", "first_name", "last_name", "user_type",
                         "is_active"):
            if required in changes and changes[required] is None:
                raise InvalidData(f"{required} cannot be empty", code="FIELD_REQUIRED",
                                  details={"field": required})
        if not changes:
            return user
        self._refuse_own_lockout(user, actor, changes)
        action = "user.update"
        if "user_type" in changes and changes["user_type"] != user.user_type.value:
            action = "user.role_change"
        elif "is_active" in changes and changes["is_active"] != user.is_active:
            action = "user.activate" if changes["is_active"] else "user.deactivate"
        updated = await self._update(user, changes, actor=actor, action=action,
                                     expected_version=data.version)
        if not updated.is_active and user.is_active:
            await self._end_every_session(user)
        return updated

    async def _end_every_session(self, user: User) -> None:
        now = self.clock()
        await self.sessions.revoke_all(user.id, now=now)  # type: ignore[arg-type]
        await self.google_sessions.revoke_for_admin(user.id, now=now)  # type: ignore[arg-type]

    @staticmethod
    def _refuse_own_lockout(user: User, actor: Actor, changes: dict[str, Any]) -> None:
        """An admin cannot deactivate or demote themselves: the last admin could otherwise
        lock everyone out, and such changes deserve a second person."""
        if actor.id is None or actor.id != user.id:
            return
        if changes.get("is_active") is False or (
                "user_type" in changes and changes["user_type"] != user.user_type.value):
            raise PermissionDenied("you cannot deactivate yourself or change your own role",
                                   code="OWN_ACCESS_CHANGE")

    async def deactivate(self, user_id: ObjectId | str, *, actor: Actor,
                         reason: str | None = None) -> User:
        user = await self.repo.get(user_id)
        self._refuse_own_lockout(user, actor, {"is_active": False})
        if not user.is_active:
            return user
        updated = await self._update(
            user, {"is_active": False, "deactivated_at": self.clock()}, actor=actor,
            action="user.deactivate", reason=reason)
        await self._end_every_session(user)
        return updated

    async def update_profile(self, user: User, data: ProfileUpdate) -> User:
        changes = data.model_dump(exclude_unset=True)
        for required in ("first_name", "last_name"):
            if required in changes and changes[required] is None:
                raise InvalidData(f"{required} cannot be empty", code="FIELD_REQUIRED",
                                  details={"field": required})
        if not changes:
            return user
        return await self._update(user, changes, actor=Actor.user(user.id, user.user_type),
                                  action="user.profile_update")

    async def set_kyc(self, user_id: ObjectId | str, status: KycStatus, *, actor: Actor,
                      reason: str | None = None) -> User:
        return await self._decide("kyc", user_id, status.value, actor=actor, reason=reason)

    async def set_aml(self, user_id: ObjectId | str, status: AmlStatus, *, actor: Actor,
                      reason: str | None = None) -> User:
        return await self._decide("aml", user_id, status.value, actor=actor, reason=reason)

    async def _decide(self, kind: str, user_id: ObjectId | str, status: str, *, actor: Actor,
                      reason: str | None) -> User:
        """A KYC or AML review decision: same moves, same record, fields named by kind."""
        user = await self.repo.get(user_id)
        check_review_move(kind, getattr(user, f"{kind}_status").value, status, reason)
        return await self._update(
            user,
            {f"{kind}_status": status, f"{kind}_decided_at": self.clock(),
             f"{kind}_reviewed_by": actor.id, f"{kind}_reason": reason},
            actor=actor, action=f"user.{kind}.{status}", reason=reason)

    async def change_password(self, user: User, *, current: str, new: str,
                              source: str | None = None,
                              session_id: ObjectId | None = None) -> User:
        """Change a password; every session of the user ends at once.

        The current password is checked behind the sign-in guard: a wrong one counts toward
        the account's lockout like a failed sign-in, and when a lock begins (or stands) the
        session it was tried from ends too.
        """
        try:
            await self.guard.check(user, current, login=user.email, source=source,
                                   message="the current password is wrong")
        except SignInRefused as refused:
            if refused.locked and session_id is not None:
                await self.sessions.revoke(session_id, now=self.clock())
            raise
        check_password_policy(new)
        new_hash = await hash_password(new, rounds=self.settings.bcrypt_rounds)
        now = self.clock()
        updated = await self._update(
            user, {"password_hash": new_hash, "password_changed_at": now,
                   "password_reset_required_at": None},
            actor=Actor.user(user.id, user.user_type), action="user.password_change")
        await self._end_every_session(user)
        return updated
