"""Operations: /metrics in Prometheus format, and 503 with Retry-After when the database goes
away, with no internals in any error."""

from __future__ import annotations

import httpx
import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI

from backend.api.app import create_app
from backend.db.connection import ConnectionManager
from backend.db.embedded import EmbeddedMongoServer
from backend.models.users import User
from backend.settings import Settings
from tests.api_support import API, api_settings, assert_error, login, services
from tests.factories import make_user


@pytest.fixture
def settings(mongo_uri: str, db_name: str) -> Settings:
    return api_settings(mongo_uri, db_name)


async def test_metrics_count_requests_by_route_template_and_status(
        app: FastAPI, client: httpx.AsyncClient) -> None:
    user = await make_user(services(app))
    await login(client, user.email)
    await client.get(f"{API}/admin/users/{'0' * 24}")
    await client.get(f"{API}/admin/users/{'1' * 24}")
    await client.get("/no/such/path")
    response = await client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    text = response.text
    assert ('fidus_http_requests_total{method="POST",route="/api/v1/auth/login",'
            'status="200"} 1.0') in text
    assert ('fidus_http_requests_total{method="GET",route="/api/v1/admin/users/{user_id}",'
            'status="401"} 2.0') in text
    assert 'route="<unmatched>",status="404"' in text
    assert "fidus_http_request_duration_seconds_bucket" in text
    assert "fidus_db_pool_max 50.0" in text
    assert "fidus_db_pool_open" in text


async def test_two_apps_in_one_process_keep_their_own_metrics(settings: Settings) -> None:
    first = create_app(settings, configure_logs=False, startup_steps=[])
    second = create_app(settings, configure_logs=False, startup_steps=[])
    assert first.state.metrics_registry is not second.state.metrics_registry


async def test_database_outage_gives_503_with_retry_after(db_name: str) -> None:
    server = EmbeddedMongoServer()
    server.start()
    settings = api_settings(server.uri, db_name, mongodb_server_selection_timeout_ms=300,
                            mongodb_connect_timeout_ms=300, mongodb_socket_timeout_ms=500)
    manager = ConnectionManager(settings)
    application = create_app(settings, connection=manager, configure_logs=False)
    try:
        async with LifespanManager(application):
            transport = httpx.ASGITransport(app=application, raise_app_exceptions=False)
            async with httpx.AsyncClient(transport=transport, base_url="http://fidus.test") as http:
                await login(http, settings.fidus_bootstrap_admin_email or "",
                            "bootstrap-admin-passphrase")
                server.close()
                response = await http.post(f"{API}/auth/login", json={
                    "login": "anyone@fidus.example", "password": "whatever-it-is"})
                assert_error(response, 503, "DATABASE_UNAVAILABLE")
                assert response.headers["Retry-After"] == "5"
                assert "Traceback" not in response.text
                assert (await http.get("/health")).status_code == 503
    finally:
        server.close()


async def test_development_start_up_seeds_an_empty_database_with_demo_logins(
        mongo_uri: str, db_name: str) -> None:
    from backend.ops.seed import DEMO_PASSWORD
    from tests.support import make_settings

    settings = make_settings(mongo_uri, db_name, fidus_env="development")
    application = create_app(settings, configure_logs=False)
    # The demo seed runs in the start-up: on a loaded machine it takes longer than the
    # default five seconds.
    async with LifespanManager(application, startup_timeout=120):
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://fidus.test") as http:
            admin = await login(http, "admin@fidus.example", DEMO_PASSWORD)
            assert admin["user"]["user_type"] == "admin"
            await login(http, "client1@fidus.example", DEMO_PASSWORD)
        await application.state.connection.client.drop_database(db_name)


async def test_no_demo_seed_when_a_bootstrap_admin_is_configured(mongo_uri: str,
                                                                 db_name: str) -> None:
    settings = api_settings(mongo_uri, db_name, fidus_env="development")
    application = create_app(settings, configure_logs=False)
    async with LifespanManager(application):
        stored = application.state.connection.database["users"].find({})
        users = [User.from_document(raw) async for raw in stored]
        assert [u.email for u in users] == [settings.fidus_bootstrap_admin_email]
        await application.state.connection.client.drop_database(db_name)
