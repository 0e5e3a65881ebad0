"""Sign-in: password login behind the sign-in guard (throttle, lockout), refresh with token
rotation and reuse detection, logout, and the resolution of an access token to its user.

A session lives `REFRESH_TOKEN_DAYS` past its last refresh and never longer than
`SESSION_ABSOLUTE_DAYS` after sign-in. Presenting a refresh token that the session has already
replaced means two parties hold the session's tokens (a theft, or a replay): the whole session
ends at once, every token of it, and the event is audited.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from bson import ObjectId

from backend.errors import AuthenticationFailed
from backend.models.sessions import Session
from backend.models.users import User
from backend.repositories.base import Clock, utcnow
from backend.repositories.registry import Repositories
from backend.security.passwords import hash_password
from backend.security.tokens import TokenIssuer, hash_token
from backend.services.audit import Actor, AuditTrail
from backend.services.sign_in_guard import SignInGuard
from backend.settings import Settings

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class TokenPair:
    access_token: str
    refresh_token: str
    expires_in: int
    session_id: str
    user: User


class AuthService:
    def __init__(self, repos: Repositories, settings: Settings, *, audit: AuditTrail,
                 guard: SignInGuard, clock: Clock = utcnow) -> None:
        self.settings = settings
        self.clock = clock
        self.audit = audit
        self.guard = guard
        self.users = repos.users
        self.sessions = repos.sessions
        self.google_sessions = repos.google_sessions
        self.tokens = TokenIssuer(settings)
        self.lifetime = timedelta(days=settings.session_absolute_days)

    @property
    def dummy_hash(self) -> Any:
        return self.guard.dummy_hash

    async def _issue(self, user: User, session: Session, refresh_token: str) -> TokenPair:
        now = self.clock()
        access = self.tokens.issue_access(
            user_id=str(user.id), session_id=str(session.id), role=user.user_type.value, now=now)
        return TokenPair(access_token=access, refresh_token=refresh_token,
                         expires_in=int(self.tokens.access_ttl.total_seconds()),
                         session_id=str(session.id), user=user)

    async def login(self, login: str, password: str, *, ip: str | None = None,
                    user_agent: str | None = None) -> TokenPair:
        await self.guard.throttle(ip, now=self.clock())
        user = await self.users.by_login(login)
        check = await self.guard.check(user, password, login=login, source=ip)
        assert user is not None  # the guard refuses an unknown login
        if not user.is_active:
            raise AuthenticationFailed("the account is deactivated", code="ACCOUNT_INACTIVE")
        user = await self.guard.record_sign_in(user)
        if check.legacy:
            user = await self._upgrade_legacy_hash(user, password)
        return await self.open_session_for(user, ip=ip, user_agent=user_agent)

    async def _upgrade_legacy_hash(self, user: User, password: str) -> User:
        """The old system's hash, just proven right, replaced by the current scheme."""
        now = self.clock()
        new_hash = await hash_password(password, rounds=self.settings.bcrypt_rounds)
        upgraded = await self.audit.update(
            self.users, user, {"password_hash": new_hash, "password_changed_at": now},
            actor=Actor.user(user.id, user.user_type.value), action="user.password_rehash",
            entity_type="user", reason="legacy bcrypt hash replaced at sign-in")
        logger.info("replaced the legacy password hash of user %s", user.id)
        return upgraded

    async def open_session_for(self, user: User, *, ip: str | None = None,
                               user_agent: str | None = None) -> TokenPair:
        """Tokens for a user whose identity was proven (password, or Google sign-in)."""
        session, refresh = await self.sessions.open(
            user.id, now=self.clock(), ttl=self.tokens.refresh_ttl,  # type: ignore[arg-type]
            lifetime=self.lifetime, ip=ip, user_agent=user_agent)
        return await self._issue(user, session, refresh)

    async def refresh(self, refresh_token: str, *, ip: str | None = None) -> TokenPair:
        now = self.clock()
        session = await self.sessions.by_token(refresh_token)
        if session is None:
            replayed = await self.sessions.replaced_by(refresh_token)
            if replayed is not None:
                await self._end_for_reuse(replayed, ip=ip)
                raise AuthenticationFailed("the session has ended", code="SESSION_REVOKED")
            raise AuthenticationFailed("the session does not exist", code="SESSION_INVALID")
        session = self.sessions.check_live(session, now)
        user = await self.users.find_by_id(session.user_id)
        if user is None or not user.is_active:
            await self.end_session(session)
            raise AuthenticationFailed("the account is not active", code="ACCOUNT_INACTIVE")
        new_refresh = await self.sessions.rotate(session, now=now, ttl=self.tokens.refresh_ttl,
                                                 lifetime=self.lifetime)
        if new_refresh is None:
            # Another request used this same token a moment ago: it is in two hands.
            await self._end_for_reuse(session, ip=ip)
            raise AuthenticationFailed("the session has ended", code="SESSION_REVOKED")
        await self.google_sessions.follow_rotation(
            session.token_hash, hash_token(new_refresh), now=now,
            expires_at=min(now + self.tokens.refresh_ttl, session.created_at + self.lifetime))
        return await self._issue(user, session, new_refresh)

    async def _end_for_reuse(self, session: Session, *, ip: str | None) -> None:
        """A replaced refresh token came back: end the session, every token of it, audited."""
        now = self.clock()
        ended = await self.sessions.revoke(session.id, now=now)  # type: ignore[arg-type]
        await self.google_sessions.revoke_for_token(session.token_hash, now=now)
        logger.warning("refresh token reuse on session %s (from %s): session ended",
                       session.id, ip or "unknown")
        await self.audit.record(
            Actor.system(), action="session.refresh_token_reused", entity_type="session",
            entity_id=str(session.id),
            after={"user_id": session.user_id, "ended_now": ended, "source": ip,
                   "revoked_at": now})

    async def end_session(self, session: Session) -> None:
        """End one session: its access and refresh tokens, and a Google sign-in behind it."""
        now = self.clock()
        await self.sessions.revoke(session.id, now=now)  # type: ignore[arg-type]
        await self.google_sessions.revoke_for_token(session.token_hash, now=now)

    async def logout(self, session_id: str) -> None:
        session = await self.sessions.find_by_id(ObjectId(session_id))
        if session is not None:
            await self.end_session(session)

    async def resolve(self, access_token: str) -> tuple[User, Session]:
        """The user and live session behind an access token, or `AuthenticationFailed`."""
        now = self.clock()
        claims = self.tokens.read_access(access_token, now=now)
        session = await self.sessions.validate_id(claims.session_id, now=now)
        user = await self.users.find_by_id(session.user_id)
        if user is None or str(user.id) != claims.user_id:
            raise AuthenticationFailed("the session does not match", code="SESSION_INVALID")
        if not user.is_active:
            raise AuthenticationFailed("the account is deactivated", code="ACCOUNT_INACTIVE")
        if user.password_changed_at and session.created_at < user.password_changed_at:
            raise AuthenticationFailed("the password has changed", code="SESSION_REVOKED")
        return user, session
