"""Password hashing with bcrypt, off the event loop.

bcrypt reads at most 72 bytes. Passwords up to 128 characters are accepted and never truncated:
they are first reduced to a fixed-length digest (HMAC-free SHA-256, base64, 44 bytes) so every
character counts. The digest is base64 so it contains no NUL byte, which bcrypt would stop at.

Users migrated from the old system (`validate-data --fix`) keep that system's hash: plain bcrypt
over the password's UTF-8 bytes, of which bcrypt read the first 72. `verify_legacy_password`
checks that form; the services replace it with the current one at the first sign-in.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib

import bcrypt

from backend.errors import InvalidData

MIN_PASSWORD_LENGTH = 8
MAX_PASSWORD_LENGTH = 128


def check_password_policy(password: str) -> None:
    if not MIN_PASSWORD_LENGTH <= len(password) <= MAX_PASSWORD_LENGTH:
        raise InvalidData(
            f"a password must have {MIN_PASSWORD_LENGTH} to {MAX_PASSWORD_LENGTH} characters",
            code="PASSWORD_POLICY",
        )


def _prehash(password: str) -> bytes:
    return base64.b64encode(hashlib.sha256(password.encode("utf-8")).digest())


def hash_password_sync(password: str, rounds: int) -> str:
    return bcrypt.hashpw(_prehash(password), bcrypt.gensalt(rounds=rounds)).decode()


def verify_password_sync(password: str, password_hash: str) -> bool:
    try:
        return bcrypt.checkpw(_prehash(password), password_hash.encode())
    except ValueError:
        return False


def verify_legacy_password_sync(password: str, password_hash: str) -> bool:
    # The old system's bcrypt silently read only the first 72 bytes; today's refuses more.
    try:
        return bcrypt.checkpw(password.encode("utf-8")[:72], password_hash.encode())
    except ValueError:
        return False


async def hash_password(password: str, *, rounds: int) -> str:
    check_password_policy(password)
    return await asyncio.to_thread(hash_password_sync, password, rounds)


async def verify_password(password: str, password_hash: str) -> bool:
    return await asyncio.to_thread(verify_password_sync, password, password_hash)


async def verify_legacy_password(password: str, password_hash: str) -> bool:
    return await asyncio.to_thread(verify_legacy_password_sync, password, password_hash)


class DummyHash:
    """A real hash of a random password, checked when the user does not exist, so an unknown
    login costs the same time as a wrong password."""

    def __init__(self, rounds: int) -> None:
        self.rounds = rounds
        self._value: str | None = None

    async def value(self) -> str:
        if self._value is None:
            self._value = await asyncio.to_thread(
                hash_password_sync, "unknown-user-placeholder-password", self.rounds
            )
        return self._value
