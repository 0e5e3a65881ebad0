"""An admin's remedies for a user's sign-in: lift every lock, or force a password reset.

Both are audited. A forced reset replaces the password with a temporary one, shown once to the
admin, ends every session of the user, and marks the account so that its next sign-in reaches
only the routes that set a new password.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from bson import ObjectId

from backend.models.users import User
from backend.repositories.base import Clock, utcnow
from backend.repositories.registry import Repositories
from backend.security.passwords import hash_password
from backend.services.audit import Actor, AuditTrail
from backend.services.sign_in_guard import SignInGuard
from backend.settings import Settings


@dataclass(frozen=True, slots=True)
class ForcedReset:
    user: User
    temporary_password: str


class AccountSecurityService:
    def __init__(self, repos: Repositories, settings: Settings, audit: AuditTrail,
                 guard: SignInGuard, *, clock: Clock = utcnow) -> None:
        self.settings = settings
        self.audit = audit
        self.guard = guard
        self.clock = clock
        self.users = repos.users
        self.sessions = repos.sessions
        self.google_sessions = repos.google_sessions

    async def unlock(self, user_id: ObjectId | str, *, actor: Actor,
                     reason: str | None = None) -> User:
        """Lift the account's lock and every per-source lock and count on it."""
        user = await self.users.get(user_id)
        await self.guard.unlock(user)
        return await self.audit.update(
            self.users, user, {"failed_login_attempts": 0, "locked_until": None},
            actor=actor, action="user.unlock", entity_type="user", reason=reason)

    async def force_password_reset(self, user_id: ObjectId | str, *, actor: Actor,
                                   reason: str | None = None) -> ForcedReset:
        """A temporary password, every session ended, a new password due at next sign-in."""
        user = await self.users.get(user_id)
        temporary = secrets.token_urlsafe(12)
        now = self.clock()
        new_hash = await hash_password(temporary, rounds=self.settings.bcrypt_rounds)
        await self.guard.unlock(user)
        updated = await self.audit.update(
            self.users, user,
            {"password_hash": new_hash, "password_changed_at": now,
             "password_reset_required_at": now, "failed_login_attempts": 0,
             "locked_until": None},
            actor=actor, action="user.password_reset_forced", entity_type="user",
            reason=reason)
        await self.sessions.revoke_all(user.id, now=now)  # type: ignore[arg-type]
        await self.google_sessions.revoke_for_admin(user.id, now=now)  # type: ignore[arg-type]
        return ForcedReset(updated, temporary)
