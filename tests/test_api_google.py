"""Admin Google sign-in against a locally generated key set served through httpx.MockTransport."""

from __future__ import annotations

import json
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi import FastAPI
from jwt.algorithms import RSAAlgorithm

from backend.models.admin_google_sessions import AdminGoogleSession
from backend.models.users import KycStatus, UserType
from backend.settings import Settings
from tests.api_support import (
    ADMIN_EMAIL,
    API,
    MovableClock,
    api_settings,
    assert_error,
    bearer,
    install_clock,
    services,
)
from tests.factories import make_user

CLIENT_ID = "1234567890-fidus.apps.googleusercontent.com"
JWKS_URL = "https://keys.google.example/oauth2/v3/certs"


class KeyServer:
    def __init__(self, max_age: int | None = 3600) -> None:
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.kid = "test-key-1"
        self.max_age = max_age
        self.requests = 0

    def handler(self, request: httpx.Request) -> httpx.Response:
        self.requests += 1
        jwk = json.loads(RSAAlgorithm.to_jwk(self.key.public_key()))
        jwk.update({"kid": self.kid, "alg": "RS256", "use": "sig"})
        headers = {"cache-control": f"public, max-age={self.max_age}"} if self.max_age else {}
        return httpx.Response(200, json={"keys": [jwk]}, headers=headers)

    def token(self, clock: MovableClock, **claims: Any) -> str:
        now = int(clock().timestamp())
        values: dict[str, Any] = {
            "iss": "https://accounts.google.com", "aud": CLIENT_ID, "sub": "1098765432",
            "email": ADMIN_EMAIL, "email_verified": True, "iat": now, "exp": now + 3600,
        }
        values.update(claims)
        return jwt.encode(values, self.key, algorithm="RS256", headers={"kid": self.kid})


@pytest.fixture
def settings(mongo_uri: str, db_name: str) -> Settings:
    return api_settings(mongo_uri, db_name, google_client_id=CLIENT_ID,
                        google_jwks_url=JWKS_URL,
                        google_admin_emails=f"{ADMIN_EMAIL},client@fidus.example")


@pytest.fixture
def keys(app: FastAPI) -> KeyServer:
    server = KeyServer()
    app.state.google_transport = httpx.MockTransport(server.handler)
    return server


async def test_an_allowlisted_admin_signs_in_and_the_session_is_kept_encrypted(
        app: FastAPI, client: httpx.AsyncClient, keys: KeyServer) -> None:
    clock = install_clock(app)
    id_token = keys.token(clock)
    response = await client.post(f"{API}/auth/google", json={"id_token": id_token})
    assert response.status_code == 200, response.text
    tokens = response.json()
    assert tokens["user"]["email"] == ADMIN_EMAIL
    assert (await client.get(f"{API}/admin/users", headers=bearer(tokens))).status_code == 200

    db = app.state.connection.database
    raw = await db["admin_google_sessions"].find_one({})
    assert raw is not None
    record = AdminGoogleSession.from_document(raw)
    assert record.google_email == ADMIN_EMAIL and record.google_subject == "1098765432"
    assert raw is not None and id_token not in str(raw)
    assert services(app).cipher.decrypt(record.access_token_encrypted) == id_token
    assert record.token_expires_at > clock()


async def test_keys_are_cached_for_their_max_age(app: FastAPI, client: httpx.AsyncClient,
                                                 keys: KeyServer) -> None:
    clock = install_clock(app)
    for _ in range(3):
        response = await client.post(f"{API}/auth/google", json={"id_token": keys.token(clock)})
        assert response.status_code == 200
    assert keys.requests == 1
    clock.advance(seconds=3601)
    assert (await client.post(f"{API}/auth/google",
                              json={"id_token": keys.token(clock)})).status_code == 200
    assert keys.requests == 2


@pytest.mark.parametrize(("claims", "status", "code"), [
    ({"aud": "someone-else.apps.googleusercontent.com"}, 401, "GOOGLE_TOKEN_INVALID"),
    ({"iss": "https://evil.example"}, 401, "GOOGLE_TOKEN_INVALID"),
    ({"email_verified": False}, 401, "GOOGLE_EMAIL_UNVERIFIED"),
    ({"exp": 1_000_000_000}, 401, "GOOGLE_TOKEN_EXPIRED"),
    ({"email": "stranger@fidus.example"}, 403, "GOOGLE_ACCOUNT_NOT_ALLOWED"),
    ({"email": "client@fidus.example"}, 403, "GOOGLE_ACCOUNT_NOT_ADMIN"),
])
async def test_refusals(app: FastAPI, client: httpx.AsyncClient, keys: KeyServer,
                        claims: dict[str, Any], status: int, code: str) -> None:
    clock = install_clock(app)
    await make_user(services(app), email="client@fidus.example", kyc=KycStatus.APPROVED,
                    user_type=UserType.CLIENT)
    response = await client.post(f"{API}/auth/google", json={"id_token": keys.token(clock,
                                                                                    **claims)})
    assert_error(response, status, code)


async def test_a_token_signed_by_another_key_is_refused(app: FastAPI, client: httpx.AsyncClient,
                                                        keys: KeyServer) -> None:
    clock = install_clock(app)
    forger = KeyServer()
    response = await client.post(f"{API}/auth/google", json={"id_token": forger.token(clock)})
    assert_error(response, 401, "GOOGLE_TOKEN_INVALID")
    assert_error(await client.post(f"{API}/auth/google", json={"id_token": "not-a-jwt"}),
                 401, "GOOGLE_TOKEN_INVALID")


async def test_unreachable_keys_give_502(app: FastAPI, client: httpx.AsyncClient) -> None:
    clock = install_clock(app)
    app.state.google_transport = httpx.MockTransport(lambda request: httpx.Response(500))
    response = await client.post(f"{API}/auth/google",
                                 json={"id_token": KeyServer().token(clock)})
    assert_error(response, 502, "GOOGLE_KEYS_UNAVAILABLE")
