"""Admin sign-in with a Google ID token.

The token is an RS256 JWT checked against Google's published keys (JWKS, fetched with httpx and
cached for the `max-age` Google sends, one hour when it sends none), for our client id, from
Google's issuer, with a verified e-mail on the admin allowlist. Only an existing, active admin
with that e-mail may sign in: the allowlist is a second lock, never a way to create an admin.
The sign-in is kept in `admin_google_sessions` with the ID token encrypted at rest.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import httpx
import jwt

from backend.errors import AuthenticationFailed, PermissionDenied, UpstreamUnavailable
from backend.models.admin_google_sessions import AdminGoogleSession
from backend.models.users import UserType
from backend.security.tokens import hash_token
from backend.services import Services
from backend.services.audit import Actor
from backend.services.auth import TokenPair

GOOGLE_ISSUERS = ("accounts.google.com", "https://accounts.google.com")
DEFAULT_KEYS_TTL = timedelta(hours=1)
#: An unknown key id triggers a refetch (Google rotated its keys), at most this often.
REFETCH_INTERVAL = timedelta(minutes=1)
SCOPES = ["openid", "email", "profile"]
_MAX_AGE = re.compile(r"max-age=(\d+)")


@dataclass(frozen=True, slots=True)
class _CachedKeys:
    keys: dict[str, Any]
    fetched_at: datetime
    expires_at: datetime


class GoogleKeySet:
    """Google's signing keys by key id, refreshed when the cache expires or a new id shows."""

    def __init__(self, url: str, *, clock: Any, transport: httpx.AsyncBaseTransport | None = None,
                 timeout: float = 5.0) -> None:
        self.url = url
        self.clock = clock
        self.transport = transport
        self.timeout = timeout
        self.fetches = 0
        self._cached: _CachedKeys | None = None
        self._lock = asyncio.Lock()

    async def _fetch(self) -> _CachedKeys:
        try:
            async with httpx.AsyncClient(transport=self.transport, timeout=self.timeout) as http:
                response = await http.get(self.url)
                response.raise_for_status()
                body = response.json()
        except (httpx.HTTPError, ValueError) as error:
            raise UpstreamUnavailable("Google's signing keys cannot be fetched",
                                      code="GOOGLE_KEYS_UNAVAILABLE") from error
        self.fetches += 1
        keys: dict[str, Any] = {}
        for jwk in body.get("keys", []) if isinstance(body, dict) else []:
            if jwk.get("kty") == "RSA" and jwk.get("kid"):
                try:
                    keys[jwk["kid"]] = jwt.PyJWK.from_dict(jwk, algorithm="RS256").key
                except jwt.PyJWTError:
                    continue
        match = _MAX_AGE.search(response.headers.get("cache-control", ""))
        ttl = timedelta(seconds=int(match.group(1))) if match else DEFAULT_KEYS_TTL
        now = self.clock()
        return _CachedKeys(keys=keys, fetched_at=now, expires_at=now + ttl)

    async def key(self, kid: str) -> Any:
        async with self._lock:
            now = self.clock()
            cached = self._cached
            stale = cached is None or cached.expires_at <= now
            unknown = cached is not None and kid not in cached.keys and (
                now - cached.fetched_at >= REFETCH_INTERVAL)
            if stale or unknown:
                self._cached = cached = await self._fetch()
            assert cached is not None
        found = cached.keys.get(kid)
        if found is None:
            raise AuthenticationFailed("the Google token is signed with an unknown key",
                                       code="GOOGLE_TOKEN_INVALID")
        return found


class GoogleSignIn:
    def __init__(self, services: Services, *,
                 transport: httpx.AsyncBaseTransport | None = None) -> None:
        self.services = services
        self.settings = services.settings
        self.clock = services.clock
        self.keys = GoogleKeySet(self.settings.google_jwks_url, clock=services.clock,
                                 transport=transport)
        self.sessions = services.repos.google_sessions

    async def verify(self, id_token: str) -> dict[str, Any]:
        """The claims of a genuine, current Google ID token for this application."""
        client_id = self.settings.google_client_id
        if not client_id:
            raise AuthenticationFailed("Google sign-in is not configured",
                                       code="GOOGLE_SIGN_IN_DISABLED")
        try:
            header = jwt.get_unverified_header(id_token)
        except jwt.PyJWTError as error:
            raise AuthenticationFailed("the Google token is not valid",
                                       code="GOOGLE_TOKEN_INVALID") from error
        if header.get("alg") != "RS256" or not isinstance(header.get("kid"), str):
            raise AuthenticationFailed("the Google token is not valid",
                                       code="GOOGLE_TOKEN_INVALID")
        key = await self.keys.key(header["kid"])
        try:
            claims: dict[str, Any] = jwt.decode(
                id_token, key, algorithms=["RS256"], audience=client_id,
                options={"require": ["exp", "iat", "iss", "aud", "sub"], "verify_exp": False,
                         "verify_iat": False, "verify_iss": False},
            )
        except jwt.PyJWTError as error:
            raise AuthenticationFailed("the Google token is not valid",
                                       code="GOOGLE_TOKEN_INVALID") from error
        if claims.get("iss") not in GOOGLE_ISSUERS:
            raise AuthenticationFailed("the token was not issued by Google",
                                       code="GOOGLE_TOKEN_INVALID")
        # Expiry against the injected clock, as for our own tokens.
        if int(claims["exp"]) <= int(self.clock().timestamp()):
            raise AuthenticationFailed("the Google token has expired",
                                       code="GOOGLE_TOKEN_EXPIRED")
        if claims.get("email_verified") is not True or not isinstance(claims.get("email"), str):
            raise AuthenticationFailed("the Google account's e-mail is not verified",
                                       code="GOOGLE_EMAIL_UNVERIFIED")
        return claims

    async def sign_in(self, id_token: str, *, ip: str | None = None,
                      user_agent: str | None = None) -> TokenPair:
        claims = await self.verify(id_token)
        email = claims["email"].strip().lower()
        allowed = {address.strip().lower() for address in self.settings.google_admin_emails}
        if email not in allowed:
            raise PermissionDenied("this Google account may not sign in here",
                                   code="GOOGLE_ACCOUNT_NOT_ALLOWED")
        user = await self.services.users.by_login(email)
        if user is None or user.user_type is not UserType.ADMIN or not user.is_active:
            raise PermissionDenied("no active admin has this e-mail address",
                                   code="GOOGLE_ACCOUNT_NOT_ADMIN")
        pair = await self.services.auth.open_session_for(user, ip=ip, user_agent=user_agent)
        now = self.clock()
        cipher = self.services.cipher
        record = AdminGoogleSession(
            admin_id=user.id,
            google_email=email,
            google_subject=str(claims["sub"]),
            session_token_hash=hash_token(pair.refresh_token),
            access_token_encrypted=cipher.encrypt(id_token),
            token_key_id=cipher.key_id,
            scopes=SCOPES,
            token_expires_at=now + self.services.auth.tokens.refresh_ttl,
            created_at=now,
            updated_at=now,
            version=1,
        )
        await self.services.audit.create(
            self.sessions, record, actor=Actor.user(user.id, user.user_type.value),
            action="admin.google_sign_in", entity_type="admin_google_session")
        return pair
