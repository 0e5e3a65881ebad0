"""Sessions: a replayed refresh token ends the whole session, a session has an absolute
lifetime, legacy bcrypt passwords sign in once and are upgraded, and the admin Google session
follows refresh rotation and ends with the session."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx
import pytest
from bson import ObjectId
from fastapi import FastAPI

from backend.security.passwords import verify_legacy_password_sync, verify_password_sync
from backend.security.tokens import hash_token
from backend.settings import Settings
from tests.api_support import (
    API,
    api_settings,
    assert_error,
    bearer,
    install_clock,
    login,
    services,
)
from tests.factories import make_user
from tests.test_api_google import CLIENT_ID, JWKS_URL, KeyServer

#: A real bcrypt hash from the old system (plain bcrypt over the password, cost 4), and the
#: password it was made from.
LEGACY_PASSWORD = "Old-System-Passw0rd"
LEGACY_HASH = "$2b$04$hDzWQfzeqkJTQbTeWX4PYeZBNGCDHZJn.Xkgegigs26IZYaR86Pjy"


@pytest.fixture
def settings(mongo_uri: str, db_name: str) -> Settings:
    from tests.api_support import ADMIN_EMAIL

    return api_settings(mongo_uri, db_name, refresh_token_days=1, session_absolute_days=3,
                        google_client_id=CLIENT_ID, google_jwks_url=JWKS_URL,
                        google_admin_emails=ADMIN_EMAIL)


async def _refresh(client: httpx.AsyncClient, token: str) -> httpx.Response:
    return await client.post(f"{API}/auth/refresh", json={"refresh_token": token})


async def _audit(app: FastAPI, action: str) -> list[dict[str, Any]]:
    cursor = app.state.connection.database["audit_log"].find({"action": action})
    return [record async for record in cursor]


async def test_a_replayed_refresh_token_ends_the_whole_session(
        app: FastAPI, client: httpx.AsyncClient) -> None:
    user = await make_user(services(app))
    first = await login(client, user.email)
    other = await login(client, user.email)
    second = (await _refresh(client, first["refresh_token"])).json()
    assert second["refresh_token"].startswith(first["session_id"] + ".")
    assert (await client.get(f"{API}/auth/me", headers=bearer(second))).status_code == 200

    # The rotated token comes back (a thief, or a replay): the session ends, every token of it.
    replay = await _refresh(client, first["refresh_token"])
    assert_error(replay, 401, "SESSION_REVOKED")
    assert_error(await _refresh(client, second["refresh_token"]), 401, "SESSION_REVOKED")
    for tokens in (first, second):
        assert_error(await client.get(f"{API}/auth/me", headers=bearer(tokens)), 401,
                     "SESSION_REVOKED")
    # The user's other session is not touched.
    assert (await client.get(f"{API}/auth/me", headers=bearer(other))).status_code == 200

    [record] = await _audit(app, "session.refresh_token_reused")
    assert record["entity_type"] == "session" and record["entity_id"] == first["session_id"]
    assert record["after"]["user_id"] == user.id and record["after"]["ended_now"] is True
    assert record["actor_type"] == "system"


async def test_an_older_token_than_the_last_one_is_recognised_too(
        app: FastAPI, client: httpx.AsyncClient) -> None:
    user = await make_user(services(app))
    tokens = [await login(client, user.email)]
    for _ in range(3):
        tokens.append((await _refresh(client, tokens[-1]["refresh_token"])).json())
    assert_error(await _refresh(client, tokens[1]["refresh_token"]), 401, "SESSION_REVOKED")
    assert_error(await client.get(f"{API}/auth/me", headers=bearer(tokens[-1])), 401)
    # A made-up token naming the session is not a replay: nothing is recorded for it.
    made_up = await _refresh(client, tokens[0]["session_id"] + ".not-a-token-it-ever-had")
    assert_error(made_up, 401, "SESSION_INVALID")
    assert len(await _audit(app, "session.refresh_token_reused")) == 1


async def test_a_session_ends_at_its_absolute_lifetime_however_often_refreshed(
        app: FastAPI, client: httpx.AsyncClient) -> None:
    clock = install_clock(app)
    user = await make_user(services(app))
    tokens = await login(client, user.email)
    for _ in range(3):  # refreshed well within REFRESH_TOKEN_DAYS=1 every time
        clock.advance(hours=20)
        refreshed = await _refresh(client, tokens["refresh_token"])
        assert refreshed.status_code == 200, refreshed.text
        tokens = refreshed.json()
    session = await app.state.connection.database["sessions"].find_one(
        {"_id": ObjectId(tokens["session_id"])})
    # 60 hours in, a refresh would give another day; the session is capped at three.
    assert session is not None
    assert session["expires_at"] - session["created_at"] == timedelta(days=3)
    clock.advance(hours=13)  # 73 hours after sign-in
    assert_error(await _refresh(client, tokens["refresh_token"]), 401, "SESSION_EXPIRED")
    assert_error(await client.get(f"{API}/auth/me", headers=bearer(tokens)), 401)


async def _legacy_user(app: FastAPI) -> Any:
    user = await make_user(services(app))
    # As `validate-data --fix` leaves a user of the old system: its hash, no password change.
    await app.state.connection.database["users"].update_one(
        {"_id": user.id}, {"$set": {"password_hash": LEGACY_HASH, "password_changed_at": None}})
    return user


async def test_a_legacy_bcrypt_password_signs_in_and_is_upgraded_once(
        app: FastAPI, client: httpx.AsyncClient) -> None:
    assert verify_legacy_password_sync(LEGACY_PASSWORD, LEGACY_HASH)
    user = await _legacy_user(app)
    assert_error(await client.post(f"{API}/auth/login", json={
        "login": user.email, "password": "not-the-old-one"}), 401, "INVALID_CREDENTIALS")

    tokens = await login(client, user.email, LEGACY_PASSWORD)
    assert (await client.get(f"{API}/auth/me", headers=bearer(tokens))).status_code == 200
    stored = await app.state.connection.database["users"].find_one({"_id": user.id})
    assert stored is not None and stored["password_hash"] != LEGACY_HASH
    assert verify_password_sync(LEGACY_PASSWORD, stored["password_hash"])
    assert not verify_legacy_password_sync(LEGACY_PASSWORD, stored["password_hash"])
    assert stored["password_changed_at"] is not None
    [record] = await _audit(app, "user.password_rehash")
    assert record["entity_id"] == str(user.id) and "password_hash" not in record["after"]

    # Signed in again: the current scheme now, no second upgrade.
    await login(client, user.email, LEGACY_PASSWORD)
    assert len(await _audit(app, "user.password_rehash")) == 1


async def test_a_plain_bcrypt_hash_is_not_accepted_for_a_user_of_this_system(
        app: FastAPI, client: httpx.AsyncClient) -> None:
    user = await make_user(services(app))
    await app.state.connection.database["users"].update_one(
        {"_id": user.id}, {"$set": {"password_hash": LEGACY_HASH}})
    assert_error(await client.post(f"{API}/auth/login", json={
        "login": user.email, "password": LEGACY_PASSWORD}), 401, "INVALID_CREDENTIALS")


async def test_the_google_admin_session_follows_rotation_and_ends_on_logout(
        app: FastAPI, client: httpx.AsyncClient) -> None:
    clock = install_clock(app)
    keys = KeyServer()
    app.state.google_transport = httpx.MockTransport(keys.handler)
    signed_in = await client.post(f"{API}/auth/google", json={"id_token": keys.token(clock)})
    assert signed_in.status_code == 200, signed_in.text
    tokens = signed_in.json()
    records = app.state.connection.database["admin_google_sessions"]

    for _ in range(2):
        clock.advance(hours=1)
        tokens = (await _refresh(client, tokens["refresh_token"])).json()
        record = await records.find_one({})
        assert record is not None
        assert record["session_token_hash"] == hash_token(tokens["refresh_token"])
        assert record["revoked_at"] is None
        assert record["token_expires_at"] > clock()

    assert (await client.post(f"{API}/auth/logout", headers=bearer(tokens))).status_code == 204
    record = await records.find_one({})
    assert record is not None and record["revoked_at"] is not None


async def test_a_replay_ends_the_google_admin_session_too(
        app: FastAPI, client: httpx.AsyncClient) -> None:
    clock = install_clock(app)
    keys = KeyServer()
    app.state.google_transport = httpx.MockTransport(keys.handler)
    first = (await client.post(f"{API}/auth/google",
                               json={"id_token": keys.token(clock)})).json()
    await _refresh(client, first["refresh_token"])
    assert_error(await _refresh(client, first["refresh_token"]), 401, "SESSION_REVOKED")
    record = await app.state.connection.database["admin_google_sessions"].find_one({})
    assert record is not None and record["revoked_at"] is not None
