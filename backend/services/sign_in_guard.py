"""The guard around every password check: throttling, lockout, and answers that do not tell.

Three locks, each lasting `LOGIN_LOCKOUT_MINUTES`:

- an account from one source (`LOGIN_MAX_FAILURES` failures): someone guessing from one
  address cannot lock the real user out everywhere else;
- an account from every source (`LOGIN_ACCOUNT_MAX_FAILURES`, on the user record): guessing
  spread over many addresses still stops;
- a source over every account (`LOGIN_SOURCE_MAX_FAILURES`): one address trying many accounts.

And a rate limit: `LOGIN_IP_MAX_ATTEMPTS_PER_MINUTE` attempts per source, answered 429.

A locked account or source is answered exactly like a wrong password (401
`INVALID_CREDENTIALS`, the same message) after the same single bcrypt check, so neither the
status, the body nor the time says whether an account exists or is locked. Every lock is
written to the audit log when it begins. The counters live in MongoDB (`throttles` and the user
record), so every API process shares them.
"""

from __future__ import annotations

import hashlib
import logging
import math
from dataclasses import dataclass
from datetime import datetime, timedelta

from backend.errors import SignInRefused, Throttled
from backend.models.users import User
from backend.repositories.base import Clock, utcnow
from backend.repositories.registry import Repositories
from backend.repositories.throttles import throttle_key
from backend.security.passwords import DummyHash, verify_legacy_password, verify_password
from backend.services.audit import Actor, AuditTrail
from backend.settings import Settings

logger = logging.getLogger(__name__)

WRONG_CREDENTIALS = "the login or password is wrong"
RATE_WINDOW = timedelta(minutes=1)
#: The source of a request whose address is unknown (no peer address at all).
UNKNOWN_SOURCE = "unknown"


@dataclass(frozen=True, slots=True)
class PasswordCheck:
    """A password that passed the guard; `legacy` when it matched the old system's hash."""

    legacy: bool


def account_key(user: User | None, login: str) -> str:
    """What the per-account counters are keyed on: the user, or for an unknown login a digest
    of it, so unknown logins are counted and locked exactly like real ones."""
    if user is not None:
        return str(user.id)
    return "login-" + hashlib.sha256(login.strip().lower().encode("utf-8")).hexdigest()[:40]


class SignInGuard:
    def __init__(self, repos: Repositories, settings: Settings, audit: AuditTrail, *,
                 clock: Clock = utcnow) -> None:
        self.settings = settings
        self.audit = audit
        self.clock = clock
        self.users = repos.users
        self.throttles = repos.throttles
        self.dummy_hash = DummyHash(settings.bcrypt_rounds)
        self.lockout = timedelta(minutes=settings.login_lockout_minutes)

    async def throttle(self, source: str | None, *, now: datetime) -> None:
        """At most LOGIN_IP_MAX_ATTEMPTS_PER_MINUTE sign-in attempts from a source: 429.
        A caller without an address (the services called in-process) is not rate limited."""
        if not source:
            return
        limit = self.settings.login_ip_max_attempts_per_minute
        window = await self.throttles.hit(throttle_key("signin-rate", source),
                                          window=RATE_WINDOW, now=now)
        if window.count > limit:
            retry = max(math.ceil((window.expires_at - now).total_seconds()), 1)
            raise Throttled("too many sign-in attempts from this address",
                            retry_after_seconds=retry, details={"retry_after_seconds": retry})

    async def check(self, user: User | None, password: str, *, login: str,
                    source: str | None, message: str = WRONG_CREDENTIALS) -> PasswordCheck:
        """The password is the user's and no lock stands in the way, or `SignInRefused`
        (401 `INVALID_CREDENTIALS` with `message`, the same for every reason)."""
        now = self.clock()
        source = source or UNKNOWN_SOURCE
        account = account_key(user, login)
        source_key = throttle_key("signin-source", source)
        pair_key = throttle_key("signin-pair", account, source)
        limit = self.settings.login_max_failures

        refused = await self._source_locked(source_key, now)
        pair = None if refused else await self.throttles.reserve(
            pair_key, limit=limit, window=self.lockout, now=now)
        attempts = None
        if pair is not None and user is not None:
            attempts = await self.users.reserve_sign_in_attempt(
                user, max_failures=self.settings.login_account_max_failures, now=now)
        if pair is None or (user is not None and attempts is None):
            # Locked: the same one bcrypt check as any other answer, then the same refusal.
            await verify_password(password, await self.dummy_hash.value())
            logger.info("sign-in refused while locked (%s, source %s)", account, source)
            raise SignInRefused(message, code="INVALID_CREDENTIALS", locked=True)

        legacy = False
        if user is None:
            await verify_password(password, await self.dummy_hash.value())
            matched = False
        else:
            matched = await verify_password(password, user.password_hash)
            if not matched and user.password_changed_at is None:
                legacy = matched = await verify_legacy_password(password, user.password_hash)
        if matched:
            assert user is not None
            await self.throttles.clear(pair_key)
            await self.users.clear_sign_in_failures(user.id)  # type: ignore[arg-type]
            return PasswordCheck(legacy=legacy)

        locked = await self._record_failure(user, source=source, source_key=source_key,
                                            pair_key=pair_key, pair_count=pair.count,
                                            attempts=attempts, now=now)
        raise SignInRefused(message, code="INVALID_CREDENTIALS", locked=locked)

    async def _source_locked(self, source_key: str, now: datetime) -> bool:
        window = await self.throttles.current(source_key, now=now)
        return window is not None and window.count >= self.settings.login_source_max_failures

    async def _record_failure(self, user: User | None, *, source: str, source_key: str,
                              pair_key: str, pair_count: int, attempts: int | None,
                              now: datetime) -> bool:
        """Count a wrong password; lock whatever reached its limit (audited). True when a lock
        now stands."""
        until = now + self.lockout
        locked = False
        if pair_count >= self.settings.login_max_failures:
            locked = True
            await self.throttles.hold_until(pair_key, until=until)
            if user is not None:
                await self._audit_lock(user, "user.sign_in_locked_for_source", source=source,
                                       until=until)
        if (user is not None and attempts is not None
                and attempts >= self.settings.login_account_max_failures):
            locked = True
            if await self.users.lock_sign_in(user.id, until=until):  # type: ignore[arg-type]
                await self._audit_lock(user, "user.sign_in_locked", source=source, until=until)
        failures = await self.throttles.hit(source_key, window=self.lockout, now=now)
        if failures.count >= self.settings.login_source_max_failures:
            locked = True
            await self.throttles.hold_until(source_key, until=until)
            if failures.count == self.settings.login_source_max_failures:
                await self.audit.record(
                    Actor.system(), action="sign_in.source_locked",
                    entity_type="sign_in_source", entity_id=source,
                    after={"source": source, "failures": failures.count,
                           "locked_until": until})
        return locked

    async def _audit_lock(self, user: User, action: str, *, source: str,
                          until: datetime) -> None:
        await self.audit.record(
            Actor.system(), action=action, entity_type="user", entity_id=str(user.id),
            after={"source": source, "locked_until": until})

    async def record_sign_in(self, user: User) -> User:
        """A successful sign-in: the account's failure count starts again."""
        return await self.users.record_sign_in(user.id, now=self.clock()) or user  # type: ignore[arg-type]

    async def unlock(self, user: User) -> None:
        """Clear every lock and count of the account (from any source)."""
        await self.throttles.clear_prefix(throttle_key("signin-pair", str(user.id)) + ":")

