"""Sign-in: password login with lockout and per-IP throttling, refresh, logout, and the
resolution of an access token to its user."""

from __future__ import annotations

import asyncio
import math
from collections import defaultdict, deque
from dataclasses import dataclass
from datetime import datetime, timedelta

from bson import ObjectId

from backend.errors import AuthenticationFailed, Throttled
from backend.models.sessions import Session
from backend.models.users import User
from backend.repositories.base import Clock, utcnow
from backend.repositories.registry import Repositories
from backend.security.passwords import DummyHash
from backend.security.tokens import TokenIssuer
from backend.settings import Settings


@dataclass(frozen=True, slots=True)
class TokenPair:
    access_token: str
    refresh_token: str
    expires_in: int
    session_id: str
    user: User


class IpThrottle:
    """At most `limit` sign-in attempts per client IP in a sliding minute.

    Kept in process memory: with several API processes each one enforces the limit on its own,
    which still bounds guessing; the per-account lockout in the database is the hard limit.
    """

    def __init__(self, limit: int, window: timedelta = timedelta(minutes=1)) -> None:
        self.limit = limit
        self.window = window
        self._hits: dict[str, deque[datetime]] = defaultdict(deque)
        self._lock = asyncio.Lock()

    async def hit(self, ip: str | None, now: datetime) -> None:
        if not ip:
            return
        async with self._lock:
            hits = self._hits[ip]
            while hits and hits[0] <= now - self.window:
                hits.popleft()
            if len(hits) >= self.limit:
                retry = math.ceil((hits[0] + self.window - now).total_seconds())
                raise Throttled("too many sign-in attempts from this address",
                                retry_after_seconds=retry,
                                details={"retry_after_seconds": retry})
            hits.append(now)


class AuthService:
    def __init__(self, repos: Repositories, settings: Settings, *, clock: Clock = utcnow,
                 throttle: IpThrottle | None = None) -> None:
        self.settings = settings
        self.clock = clock
        self.users = repos.users
        self.sessions = repos.sessions
        self.tokens = TokenIssuer(settings)
        self.dummy_hash = DummyHash(settings.bcrypt_rounds)
        self.throttle = throttle or IpThrottle(settings.login_ip_max_attempts_per_minute)

    async def _issue(self, user: User, session: Session, refresh_token: str) -> TokenPair:
        now = self.clock()
        access = self.tokens.issue_access(
            user_id=str(user.id), session_id=str(session.id), role=user.user_type.value, now=now)
        return TokenPair(access_token=access, refresh_token=refresh_token,
                         expires_in=int(self.tokens.access_ttl.total_seconds()),
                         session_id=str(session.id), user=user)

    async def login(self, login: str, password: str, *, ip: str | None = None,
                    user_agent: str | None = None) -> TokenPair:
        now = self.clock()
        await self.throttle.hit(ip, now)
        user = await self.users.authenticate(
            login, password, now=now, dummy_hash=self.dummy_hash,
            max_failures=self.settings.login_max_failures,
            lockout=timedelta(minutes=self.settings.login_lockout_minutes),
        )
        session, refresh = await self.sessions.open(
            user.id, now=now, ttl=self.tokens.refresh_ttl, ip=ip,  # type: ignore[arg-type]
            user_agent=user_agent)
        return await self._issue(user, session, refresh)

    async def open_session_for(self, user: User, *, ip: str | None = None,
                               user_agent: str | None = None) -> TokenPair:
        """Tokens for a user whose identity was proven another way (Google sign-in)."""
        session, refresh = await self.sessions.open(
            user.id, now=self.clock(), ttl=self.tokens.refresh_ttl, ip=ip,  # type: ignore[arg-type]
            user_agent=user_agent)
        return await self._issue(user, session, refresh)

    async def refresh(self, refresh_token: str) -> TokenPair:
        now = self.clock()
        session = await self.sessions.validate_token(refresh_token, now=now)
        user = await self.users.find_by_id(session.user_id)
        if user is None or not user.is_active:
            await self.sessions.revoke(session.id, now=now)  # type: ignore[arg-type]
            raise AuthenticationFailed("the account is not active", code="ACCOUNT_INACTIVE")
        new_refresh = await self.sessions.rotate(session, now=now, ttl=self.tokens.refresh_ttl)
        return await self._issue(user, session, new_refresh)

    async def logout(self, session_id: str) -> None:
        await self.sessions.revoke(ObjectId(session_id), now=self.clock())

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
