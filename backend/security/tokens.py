"""Access tokens (short-lived JWTs naming their session) and opaque refresh tokens.

An access token carries the session id (`sid`); every request checks that the session is still
live, so logout, password change and deactivation end a token at once rather than at expiry.
Refresh tokens are random strings stored only as SHA-256 hashes.
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import jwt

from backend.errors import AuthenticationFailed
from backend.settings import Settings

_DEVELOPMENT_SIGNING_KEY = secrets.token_urlsafe(48)
ISSUER = "fidus"


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_opaque_token() -> str:
    return secrets.token_urlsafe(32)


@dataclass(frozen=True, slots=True)
class AccessClaims:
    user_id: str
    session_id: str
    role: str
    expires_at: datetime


class TokenIssuer:
    def __init__(self, settings: Settings) -> None:
        secret = settings.jwt_secret.get_secret_value() if settings.jwt_secret else None
        # Outside production a missing secret gets a per-process key: tokens end at restart.
        self._key = secret or _DEVELOPMENT_SIGNING_KEY
        self._algorithm = settings.jwt_algorithm
        self.access_ttl = timedelta(minutes=settings.access_token_minutes)
        self.refresh_ttl = timedelta(days=settings.refresh_token_days)

    def issue_access(self, *, user_id: str, session_id: str, role: str, now: datetime) -> str:
        claims: dict[str, Any] = {
            "iss": ISSUER,
            "sub": user_id,
            "sid": session_id,
            "role": role,
            "iat": int(now.timestamp()),
            "exp": int((now + self.access_ttl).timestamp()),
            "jti": uuid.uuid4().hex,
        }
        return jwt.encode(claims, self._key, algorithm=self._algorithm)

    def read_access(self, token: str, *, now: datetime) -> AccessClaims:
        try:
            claims = jwt.decode(
                token,
                self._key,
                algorithms=[self._algorithm],
                issuer=ISSUER,
                options={"require": ["exp", "sub", "sid", "iss"], "verify_exp": False,
                         "verify_iat": False},
            )
        except jwt.PyJWTError as error:
            raise AuthenticationFailed("the access token is not valid",
                                       code="INVALID_TOKEN") from error
        # Expiry is checked against the injected clock so tests need not sleep.
        if int(claims["exp"]) <= int(now.timestamp()):
            raise AuthenticationFailed("the access token has expired", code="TOKEN_EXPIRED")
        return AccessClaims(
            user_id=str(claims["sub"]),
            session_id=str(claims["sid"]),
            role=str(claims.get("role", "")),
            expires_at=datetime.fromtimestamp(int(claims["exp"]), tz=now.tzinfo),
        )
