"""Sign-in, sessions and their end: logout, password change, deactivation, expiry, throttling,
and the bootstrap admin."""

from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI

from backend.models.users import UserType
from backend.settings import Settings
from tests.api_support import (
    ADMIN_EMAIL,
    ADMIN_PASSWORD,
    API,
    admin_headers,
    api_settings,
    assert_error,
    bearer,
    install_clock,
    login,
    services,
    signed_in_user,
)
from tests.factories import PASSWORD, make_user


@pytest.fixture
def settings(mongo_uri: str, db_name: str) -> Settings:
    return api_settings(mongo_uri, db_name, login_ip_max_attempts_per_minute=8)


async def test_the_bootstrap_admin_is_created_at_start_up_once(app: FastAPI,
                                                               client: httpx.AsyncClient) -> None:
    admins = await services(app).users.repo.by_type(UserType.ADMIN)
    assert [a.email for a in admins] == [ADMIN_EMAIL]
    tokens = await login(client, ADMIN_EMAIL, ADMIN_PASSWORD)
    assert tokens["user"]["user_type"] == "admin"
    assert tokens["token_type"] == "bearer"
    assert tokens["expires_in"] == 15 * 60

    from backend.api.startup import bootstrap_admin

    await bootstrap_admin(app, app.state.connection)
    assert len(await services(app).users.repo.by_type(UserType.ADMIN)) == 1


async def test_no_bootstrap_admin_without_the_settings(mongo_uri: str, db_name: str) -> None:
    from asgi_lifespan import LifespanManager

    from backend.api.app import create_app
    from tests.support import make_settings

    application = create_app(make_settings(mongo_uri, db_name), configure_logs=False)
    async with LifespanManager(application):
        assert await services(application).users.repo.by_type(UserType.ADMIN) == []
        await application.state.connection.client.drop_database(db_name)


async def test_login_by_email_or_username_and_me(app: FastAPI, client: httpx.AsyncClient) -> None:
    user = await make_user(services(app))
    by_email = await login(client, user.email.upper())
    by_username = await login(client, user.username)
    assert by_email["session_id"] != by_username["session_id"]
    me = await client.get(f"{API}/auth/me", headers=bearer(by_username))
    assert me.status_code == 200
    assert me.json()["id"] == str(user.id)
    assert "password_hash" not in me.json()


async def test_wrong_password_and_unknown_login_get_the_same_401(
        app: FastAPI, client: httpx.AsyncClient) -> None:
    user = await make_user(services(app))
    wrong = await client.post(f"{API}/auth/login", json={"login": user.email,
                                                         "password": "not-the-password"})
    unknown = await client.post(f"{API}/auth/login", json={"login": "nobody@fidus.example",
                                                           "password": "not-the-password"})
    assert_error(wrong, 401, "INVALID_CREDENTIALS")
    assert_error(unknown, 401, "INVALID_CREDENTIALS")
    assert wrong.json()["error"]["message"] == unknown.json()["error"]["message"]


async def test_no_token_bad_token_and_wrong_scheme_get_401(client: httpx.AsyncClient) -> None:
    assert_error(await client.get(f"{API}/auth/me"), 401, "NOT_AUTHENTICATED")
    assert_error(await client.get(f"{API}/auth/me", headers={"Authorization": "Bearer x.y.z"}),
                 401, "INVALID_TOKEN")
    assert_error(await client.get(f"{API}/auth/me", headers={"Authorization": "Basic abc"}),
                 401, "NOT_AUTHENTICATED")


async def test_logout_ends_the_session_at_once(app: FastAPI, client: httpx.AsyncClient) -> None:
    user = await make_user(services(app))
    tokens = await login(client, user.email)
    other = await login(client, user.email)
    assert (await client.post(f"{API}/auth/logout", headers=bearer(tokens))).status_code == 204
    assert_error(await client.get(f"{API}/auth/me", headers=bearer(tokens)), 401,
                 "SESSION_REVOKED")
    assert_error(await client.post(f"{API}/auth/refresh",
                                   json={"refresh_token": tokens["refresh_token"]}),
                 401, "SESSION_REVOKED")
    # Only that session ends; the user's other sign-in still works.
    assert (await client.get(f"{API}/auth/me", headers=bearer(other))).status_code == 200


async def test_refresh_rotates_the_refresh_token(app: FastAPI, client: httpx.AsyncClient) -> None:
    user = await make_user(services(app))
    tokens = await login(client, user.email)
    refreshed = await client.post(f"{API}/auth/refresh",
                                  json={"refresh_token": tokens["refresh_token"]})
    assert refreshed.status_code == 200
    new = refreshed.json()
    assert new["session_id"] == tokens["session_id"]
    assert new["refresh_token"] != tokens["refresh_token"]
    assert (await client.get(f"{API}/auth/me", headers=bearer(new))).status_code == 200
    assert_error(await client.post(f"{API}/auth/refresh",
                                   json={"refresh_token": tokens["refresh_token"]}), 401)


async def test_password_change_ends_every_session(app: FastAPI,
                                                  client: httpx.AsyncClient) -> None:
    user = await make_user(services(app))
    first, second = await login(client, user.email), await login(client, user.email)
    wrong = await client.post(f"{API}/auth/password", headers=bearer(first),
                              json={"current_password": "not-it-at-all",
                                    "new_password": "a-brand-new-passphrase"})
    assert_error(wrong, 401, "INVALID_CREDENTIALS")
    changed = await client.post(f"{API}/auth/password", headers=bearer(first),
                                json={"current_password": PASSWORD,
                                      "new_password": "a-brand-new-passphrase"})
    assert changed.status_code == 204
    for tokens in (first, second):
        assert_error(await client.get(f"{API}/auth/me", headers=bearer(tokens)), 401)
        assert_error(await client.post(f"{API}/auth/refresh",
                                       json={"refresh_token": tokens["refresh_token"]}), 401)
    assert_error(await client.post(f"{API}/auth/login",
                                   json={"login": user.email, "password": PASSWORD}), 401)
    await login(client, user.email, "a-brand-new-passphrase")


async def test_deactivation_ends_every_session(app: FastAPI, client: httpx.AsyncClient) -> None:
    user, headers = await signed_in_user(app, client)
    admin = await admin_headers(client)
    response = await client.post(f"{API}/admin/users/{user.id}/deactivate", headers=admin,
                                 json={"reason": "account closed"})
    assert response.status_code == 200
    assert response.json()["is_active"] is False
    assert_error(await client.get(f"{API}/auth/me", headers=headers), 401)
    assert_error(await client.post(f"{API}/auth/login",
                                   json={"login": user.email, "password": PASSWORD}),
                 401, "ACCOUNT_INACTIVE")


async def test_an_expired_access_token_gets_401_and_refresh_still_works(
        app: FastAPI, client: httpx.AsyncClient) -> None:
    clock = install_clock(app)
    user = await make_user(services(app))
    tokens = await login(client, user.email)
    clock.advance(minutes=14)
    assert (await client.get(f"{API}/auth/me", headers=bearer(tokens))).status_code == 200
    clock.advance(minutes=1, seconds=1)
    assert_error(await client.get(f"{API}/auth/me", headers=bearer(tokens)), 401,
                 "TOKEN_EXPIRED")
    refreshed = await client.post(f"{API}/auth/refresh",
                                  json={"refresh_token": tokens["refresh_token"]})
    assert refreshed.status_code == 200
    assert (await client.get(f"{API}/auth/me",
                             headers=bearer(refreshed.json()))).status_code == 200
    clock.advance(days=8)
    assert_error(await client.post(f"{API}/auth/refresh",
                                   json={"refresh_token": refreshed.json()["refresh_token"]}),
                 401, "SESSION_EXPIRED")


async def test_failed_logins_lock_the_account_answered_like_a_wrong_password(
        app: FastAPI, client: httpx.AsyncClient) -> None:
    clock = install_clock(app)
    user = await make_user(services(app))
    wrong = None
    for _ in range(5):
        wrong = await client.post(f"{API}/auth/login", json={
            "login": user.email, "password": "wrong-password"})
        assert_error(wrong, 401, "INVALID_CREDENTIALS")
    locked = await client.post(f"{API}/auth/login",
                               json={"login": user.email, "password": PASSWORD})
    assert_error(locked, 401, "INVALID_CREDENTIALS")
    assert wrong is not None and locked.json() == wrong.json()
    clock.advance(minutes=16)
    await login(client, user.email)


async def test_too_many_logins_from_one_address_get_429_with_retry_after(
        app: FastAPI, client: httpx.AsyncClient) -> None:
    clock = install_clock(app)
    for _ in range(8):
        await client.post(f"{API}/auth/login", json={"login": "x@fidus.example",
                                                     "password": "whatever-it-is"})
    throttled = await client.post(f"{API}/auth/login", json={"login": ADMIN_EMAIL,
                                                             "password": ADMIN_PASSWORD})
    assert_error(throttled, 429, "THROTTLED")
    assert 1 <= int(throttled.headers["Retry-After"]) <= 60
    clock.advance(seconds=61)
    await login(client, ADMIN_EMAIL, ADMIN_PASSWORD)


async def test_a_manager_signs_in_and_reads_its_own_record(app: FastAPI,
                                                           client: httpx.AsyncClient) -> None:
    manager, headers = await signed_in_user(app, client, user_type=UserType.MANAGER)
    me = await client.get(f"{API}/auth/me", headers=headers)
    assert me.json()["user_type"] == "manager"
    assert me.json()["id"] == str(manager.id)
