"""Helpers of the API tests: settings with a bootstrap admin, sign-in, clients made through
the services, and a clock the tests move."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from fastapi import FastAPI

from backend.api.deps import services_for
from backend.models.users import KycStatus, User, UserType
from backend.services import Services
from backend.settings import Settings
from tests.factories import PASSWORD, make_user
from tests.support import make_settings

ADMIN_EMAIL = "root@fidus.example"
ADMIN_PASSWORD = "bootstrap-admin-passphrase"
API = "/api/v1"


def api_settings(mongo_uri: str, db_name: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {"fidus_bootstrap_admin_email": ADMIN_EMAIL,
                              "fidus_bootstrap_admin_password": ADMIN_PASSWORD}
    values.update(overrides)
    return make_settings(mongo_uri, db_name, **values)


class MovableClock:
    """The app's clock: real time plus an offset the test moves."""

    def __init__(self) -> None:
        self.offset = timedelta()

    def __call__(self) -> datetime:
        now = datetime.now(UTC) + self.offset
        return now.replace(microsecond=now.microsecond // 1000 * 1000)

    def advance(self, **delta: float) -> None:
        self.offset += timedelta(**delta)


def install_clock(app: FastAPI) -> MovableClock:
    clock = MovableClock()
    services_for(app)
    app.state.clock = clock
    return clock


def services(app: FastAPI) -> Services:
    return services_for(app)


async def login(http: httpx.AsyncClient, login_name: str, password: str = PASSWORD
                ) -> dict[str, Any]:
    response = await http.post(f"{API}/auth/login",
                               json={"login": login_name, "password": password})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def bearer(tokens: dict[str, Any]) -> dict[str, str]:
    return {"Authorization": f"Bearer {tokens['access_token']}"}


async def admin_headers(http: httpx.AsyncClient) -> dict[str, str]:
    return bearer(await login(http, ADMIN_EMAIL, ADMIN_PASSWORD))


async def signed_in_user(app: FastAPI, http: httpx.AsyncClient, *,
                         user_type: UserType = UserType.CLIENT,
                         kyc: KycStatus | None = KycStatus.APPROVED,
                         **overrides: Any) -> tuple[User, dict[str, str]]:
    user = await make_user(services(app), kyc=kyc, user_type=user_type, **overrides)
    return user, bearer(await login(http, user.email))


def assert_error(response: httpx.Response, status: int, code: str | None = None) -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"}, body
    assert set(body["error"]) == {"code", "message", "details"}, body
    if code is not None:
        assert body["error"]["code"] == code, body
