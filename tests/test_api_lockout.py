"""Sign-in lockout without enumeration: a lock is answered like a wrong password, locks are
per account and source, per account and per source, audited; wrong current passwords at
/auth/password count; an admin can unlock an account or force a password reset."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from backend.settings import Settings
from tests.api_support import (
    API,
    admin_headers,
    api_settings,
    assert_error,
    bearer,
    install_clock,
    login,
    services,
)
from tests.factories import PASSWORD, make_user

PROXY = "127.0.0.1"


@pytest.fixture
def settings(mongo_uri: str, db_name: str) -> Settings:
    # The test client is a proxy the deployment trusts: X-Forwarded-For names the source.
    return api_settings(mongo_uri, db_name, login_max_failures=3, login_account_max_failures=7,
                        login_source_max_failures=6, login_ip_max_attempts_per_minute=1000,
                        forwarded_allow_ips=PROXY)


def source(address: str) -> dict[str, str]:
    return {"X-Forwarded-For": address}


async def attempt(client: httpx.AsyncClient, login_name: str, password: str,
                  address: str = "198.51.100.1") -> httpx.Response:
    return await client.post(f"{API}/auth/login", headers=source(address),
                             json={"login": login_name, "password": password})


async def audit(app: FastAPI, action: str) -> list[dict[str, Any]]:
    cursor = app.state.connection.database["audit_log"].find({"action": action})
    return [record async for record in cursor]


@pytest.fixture
async def bcrypt_checks(app: FastAPI) -> AsyncIterator[list[str]]:
    """The hash every password check of the guard ran against ("dummy" or "user")."""
    import backend.services.sign_in_guard as guard_module

    real = guard_module.verify_password
    dummy = await services(app).sign_in_guard.dummy_hash.value()
    checks: list[str] = []

    async def recording(password: str, password_hash: str) -> bool:
        checks.append("dummy" if password_hash == dummy else "user")
        return await real(password, password_hash)

    guard_module.verify_password = recording  # type: ignore[assignment]
    yield checks
    guard_module.verify_password = real  # type: ignore[assignment]


async def test_a_locked_account_answers_exactly_like_a_wrong_password(
        app: FastAPI, client: httpx.AsyncClient, bcrypt_checks: list[str]) -> None:
    user = await make_user(services(app))
    wrong = [await attempt(client, user.email, "wrong-password") for _ in range(3)]
    unknown = await attempt(client, "nobody@fidus.example", "wrong-password")
    locked = await attempt(client, user.email, PASSWORD)
    for response in (*wrong, unknown, locked):
        assert_error(response, 401, "INVALID_CREDENTIALS")
        assert response.json() == wrong[0].json()
        assert response.headers["www-authenticate"] == "Bearer"
    # The same timing class: one bcrypt check of the same cost for every answer.
    assert bcrypt_checks == ["user", "user", "user", "dummy", "dummy"]
    [record] = await audit(app, "user.sign_in_locked_for_source")
    assert record["entity_id"] == str(user.id)
    assert record["after"]["source"] == "198.51.100.1"


async def test_a_lock_holds_one_source_and_leaves_the_others(
        app: FastAPI, client: httpx.AsyncClient) -> None:
    clock = install_clock(app)
    user = await make_user(services(app))
    for _ in range(3):
        await attempt(client, user.email, "wrong-password", "203.0.113.9")
    assert_error(await attempt(client, user.email, PASSWORD, "203.0.113.9"), 401)
    elsewhere = await attempt(client, user.email, PASSWORD, "198.51.100.20")
    assert elsewhere.status_code == 200, elsewhere.text
    clock.advance(minutes=16)
    assert (await attempt(client, user.email, PASSWORD, "203.0.113.9")).status_code == 200


async def test_guessing_from_many_sources_locks_the_account_everywhere(
        app: FastAPI, client: httpx.AsyncClient) -> None:
    clock = install_clock(app)
    user = await make_user(services(app))
    for n in range(7):  # two each from four addresses: no single source reaches its lock
        await attempt(client, user.email, "wrong-password", f"192.0.2.{n // 2 + 1}")
    assert_error(await attempt(client, user.email, PASSWORD, "198.51.100.77"), 401,
                 "INVALID_CREDENTIALS")
    [record] = await audit(app, "user.sign_in_locked")
    assert record["entity_id"] == str(user.id) and record["actor_type"] == "system"
    stored = await services(app).users.repo.get(user.id)  # type: ignore[arg-type]
    assert stored.locked_until is not None
    clock.advance(minutes=16)
    assert (await attempt(client, user.email, PASSWORD, "198.51.100.77")).status_code == 200


async def test_a_source_guessing_many_accounts_is_locked(app: FastAPI,
                                                         client: httpx.AsyncClient) -> None:
    user = await make_user(services(app))
    for n in range(6):
        await attempt(client, f"guess{n}@fidus.example", "wrong-password", "203.0.113.66")
    assert_error(await attempt(client, user.email, PASSWORD, "203.0.113.66"), 401,
                 "INVALID_CREDENTIALS")
    assert (await attempt(client, user.email, PASSWORD, "203.0.113.67")).status_code == 200
    [record] = await audit(app, "sign_in.source_locked")
    assert record["entity_type"] == "sign_in_source" and record["entity_id"] == "203.0.113.66"


async def test_wrong_current_passwords_count_toward_the_lockout(
        app: FastAPI, client: httpx.AsyncClient) -> None:
    user = await make_user(services(app))
    tokens = await login(client, user.email)
    headers = {**bearer(tokens), **source("198.51.100.5")}
    for _ in range(3):
        wrong = await client.post(f"{API}/auth/password", headers=headers, json={
            "current_password": "not-it-at-all", "new_password": "a-brand-new-passphrase"})
        assert_error(wrong, 401, "INVALID_CREDENTIALS")
    # The lock began: the session the guesses came from has ended, and the source is locked.
    assert_error(await client.get(f"{API}/auth/me", headers=bearer(tokens)), 401,
                 "SESSION_REVOKED")
    assert_error(await attempt(client, user.email, PASSWORD, "198.51.100.5"), 401,
                 "INVALID_CREDENTIALS")
    [record] = await audit(app, "user.sign_in_locked_for_source")
    assert record["entity_id"] == str(user.id)
    # Signed in from elsewhere, the right current password still works.
    other = await attempt(client, user.email, PASSWORD, "198.51.100.99")
    changed = await client.post(
        f"{API}/auth/password", headers={**bearer(other.json()), **source("198.51.100.99")},
        json={"current_password": PASSWORD, "new_password": "a-brand-new-passphrase"})
    assert changed.status_code == 204, changed.text


async def test_an_admin_unlocks_an_account(app: FastAPI, client: httpx.AsyncClient) -> None:
    user = await make_user(services(app))
    for n in range(7):
        await attempt(client, user.email, "wrong-password", f"192.0.2.{n // 2 + 1}")
    assert_error(await attempt(client, user.email, PASSWORD, "192.0.2.1"), 401)
    admin = await admin_headers(client)
    someone = await make_user(services(app))
    client_headers = bearer(await login(client, someone.email))
    refused = await client.post(f"{API}/admin/users/{user.id}/unlock", headers=client_headers)
    assert_error(refused, 403, "FORBIDDEN")
    unlocked = await client.post(f"{API}/admin/users/{user.id}/unlock", headers=admin,
                                 json={"reason": "called the client back"})
    assert unlocked.status_code == 200, unlocked.text
    assert unlocked.json()["id"] == str(user.id)
    # Both the account-wide lock and the lock on the guessing source are gone.
    assert (await attempt(client, user.email, PASSWORD, "192.0.2.1")).status_code == 200
    [record] = await audit(app, "user.unlock")
    assert record["reason"] == "called the client back"
    assert record["before"]["locked_until"] is not None and record["after"]["locked_until"] is None
    missing = await client.post(f"{API}/admin/users/{'0' * 24}/unlock", headers=admin)
    assert_error(missing, 404)


async def test_a_forced_reset_makes_the_user_set_a_new_password_first(
        app: FastAPI, client: httpx.AsyncClient) -> None:
    from backend.models.users import KycStatus

    user = await make_user(services(app), kyc=KycStatus.APPROVED)
    before = await login(client, user.email)
    admin = await admin_headers(client)
    reset = await client.post(f"{API}/admin/users/{user.id}/password-reset", headers=admin,
                              json={"reason": "suspected compromise"})
    assert reset.status_code == 200, reset.text
    temporary = reset.json()["temporary_password"]
    assert reset.json()["user"]["password_change_required"] is True
    assert_error(await client.get(f"{API}/auth/me", headers=bearer(before)), 401)
    assert_error(await attempt(client, user.email, PASSWORD), 401, "INVALID_CREDENTIALS")

    signed_in = await attempt(client, user.email, temporary)
    assert signed_in.status_code == 200, signed_in.text
    tokens = signed_in.json()
    assert tokens["user"]["password_change_required"] is True
    # Only the routes that set the new password (and see who one is) answer.
    assert_error(await client.get(f"{API}/client/profile", headers=bearer(tokens)), 403,
                 "PASSWORD_CHANGE_REQUIRED")
    assert (await client.get(f"{API}/auth/me", headers=bearer(tokens))).status_code == 200
    changed = await client.post(f"{API}/auth/password", headers=bearer(tokens), json={
        "current_password": temporary, "new_password": "my-own-new-passphrase"})
    assert changed.status_code == 204, changed.text
    fresh = await login(client, user.email, "my-own-new-passphrase")
    assert fresh["user"]["password_change_required"] is False
    assert (await client.get(f"{API}/client/profile", headers=bearer(fresh))).status_code == 200

    [record] = await audit(app, "user.password_reset_forced")
    assert record["entity_id"] == str(user.id) and record["reason"] == "suspected compromise"
    assert temporary not in str(record)
    assert "password_hash" not in record["after"]


async def test_right_passwords_never_add_up_to_a_lock(app: FastAPI,
                                                      client: httpx.AsyncClient) -> None:
    user = await make_user(services(app))
    current = PASSWORD
    for n in range(9):  # more than LOGIN_ACCOUNT_MAX_FAILURES (7) password checks in a row
        user = await services(app).users.change_password(
            user, current=current, new=f"passphrase-number-{n}", source="198.51.100.8")
        current = f"passphrase-number-{n}"
    stored = await services(app).users.repo.get(user.id)  # type: ignore[arg-type]
    assert stored.failed_login_attempts == 0 and stored.locked_until is None
    assert (await attempt(client, user.email, current, "198.51.100.8")).status_code == 200
