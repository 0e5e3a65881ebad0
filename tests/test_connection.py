import logging
import re

import httpx
import pytest
from asgi_lifespan import LifespanManager
from bson import Decimal128

from backend.api.app import create_app
from backend.db.connection import ConnectionManager
from backend.db.embedded import EmbeddedMongoServer
from backend.errors import DatabaseUnavailable
from tests.support import free_port, make_settings


async def test_connect_makes_three_attempts_with_growing_waits(
    caplog: pytest.LogCaptureFixture,
) -> None:
    waits: list[float] = []

    async def fake_sleep(seconds: float) -> None:
        waits.append(seconds)

    settings = make_settings(
        f"mongodb://127.0.0.1:{free_port()}/", "fidus_test_unreachable",
        mongodb_server_selection_timeout_ms=100,
    )
    manager = ConnectionManager(settings, sleep=fake_sleep)
    caplog.set_level(logging.INFO, logger="backend.db.connection")
    with pytest.raises(DatabaseUnavailable) as caught:
        await manager.connect()
    attempts = [r for r in caplog.records if "connecting to the database (attempt" in r.message]
    assert len(attempts) == 3
    assert len(waits) == 2
    # Exponential backoff: the base doubles (0.5 s, then 1 s), jitter adds at most 0.5 s.
    assert 0.5 <= waits[0] <= 1.0
    assert 1.0 <= waits[1] <= 1.5
    assert "after 3 attempts" in caught.value.message
    assert "\n" not in caught.value.message
    assert isinstance(caught.value.__cause__, Exception)
    assert not manager.connected


async def test_authentication_failure_is_not_retried(caplog: pytest.LogCaptureFixture) -> None:
    from mongoeco.wire import AsyncMongoEcoProxyServer
    from mongoeco.wire.auth import WireAuthUser

    waits: list[float] = []

    async def fake_sleep(seconds: float) -> None:
        waits.append(seconds)

    users = (WireAuthUser(username="fidus", password="right-password"),)
    async with AsyncMongoEcoProxyServer(auth_users=users) as server:
        uri = server.address.uri.replace("mongodb://", "mongodb://fidus:wrong-password@")
        manager = ConnectionManager(make_settings(uri, "fidus_test_auth"), sleep=fake_sleep)
        caplog.set_level(logging.INFO, logger="backend.db.connection")
        with pytest.raises(DatabaseUnavailable) as caught:
            await manager.connect()
    attempts = [r for r in caplog.records if "connecting to the database (attempt" in r.message]
    assert len(attempts) == 1
    assert waits == []
    assert "refused" in caught.value.message


@pytest.mark.parametrize("environment", ["production", "staging"])
async def test_production_never_starts_the_embedded_server(environment: str) -> None:
    from backend.settings import SettingsProblem

    settings = make_settings("mongodb://127.0.0.1:1/", "x")
    settings.mongodb_uri = None
    object.__setattr__(settings, "fidus_env", settings.fidus_env.__class__(environment))
    manager = ConnectionManager(settings)
    with pytest.raises(SettingsProblem, match="MONGODB_URI is required"):
        await manager.connect()
    assert not manager.embedded


async def test_health_report_has_measured_figures(mongo_uri: str, db_name: str) -> None:
    async with ConnectionManager(make_settings(mongo_uri, db_name)) as manager:
        # Money is stored as Decimal128; the figures must still be read (not degraded).
        await manager.database["probe"].insert_one({"n": 1, "amount": Decimal128("10.00")})
        report = await manager.health()
        await manager.client.drop_database(db_name)
    assert report.status == "healthy"
    assert report.ping_ms is not None and report.ping_ms > 0
    assert report.server_version
    assert report.collections == 1 and report.objects == 1
    assert report.indexes is not None and report.indexes >= 1
    assert report.pool["max"] == 50
    assert report.pool["open"] >= 1
    assert report.database == db_name


async def test_degraded_check_makes_health_degraded(mongo_uri: str, db_name: str) -> None:
    async with ConnectionManager(make_settings(mongo_uri, db_name)) as manager:
        async def stale(_db: object) -> list[str]:
            return ["mt5 account ACC-1 not synced for 45 minutes"]

        manager.degraded_checks.append(stale)
        report = await manager.health()
    assert report.status == "degraded"
    assert report.reasons == ["mt5 account ACC-1 not synced for 45 minutes"]


async def test_health_endpoint_follows_the_database_down_and_back() -> None:
    port = free_port()
    server = EmbeddedMongoServer(port=port)
    uri = server.start()
    settings = make_settings(uri, "fidus_test_health", mongodb_server_selection_timeout_ms=300)
    app = create_app(settings, configure_logs=False)
    try:
        async with LifespanManager(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
                first = await http.get("/health")
                assert first.status_code == 200
                assert first.json()["status"] == "healthy"
                server.stop()
                down = await http.get("/health")
                assert down.status_code == 503
                body = down.json()
                assert body["status"] == "unhealthy"
                # The driver error's class only (which one depends on the moment of the cut).
                [reason] = body["reasons"]
                assert re.fullmatch(r"database unreachable \((AutoReconnect|[A-Za-z]+Error)\)",
                                    reason), reason
                assert body["last_error"] == reason
                assert body["collections"] is None and body["pool"]["max"] == 50
                _assert_no_leak(down.text, port)
                assert (await http.get("/health/live")).status_code == 200
                server.start()
                back = await http.get("/health")
                assert back.status_code == 200
                assert back.json()["status"] == "healthy"
    finally:
        server.close()


def _assert_no_leak(text: str, port: int) -> None:
    """Nothing public names the database's host, its port or the driver's words."""
    for leak in ("127.0.0.1", "localhost", str(port), "Topology", "timed out", "refused",
                 "Errno", "connection closed"):
        assert leak not in text, (leak, text)


async def test_a_503_names_the_error_class_never_the_host_or_the_driver_text() -> None:
    port = free_port()
    server = EmbeddedMongoServer(port=port)
    settings = make_settings(server.start(), "fidus_test_503",
                             mongodb_server_selection_timeout_ms=300)
    app = create_app(settings, configure_logs=False)
    try:
        async with LifespanManager(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
                server.stop()
                refused = await http.post("/api/v1/auth/login", json={
                    "login": "ada@fidus.example", "password": "a-long-passphrase"})
    finally:
        server.close()
    assert refused.status_code == 503
    error = refused.json()["error"]
    assert (error["code"], error["message"]) == ("DATABASE_UNAVAILABLE",
                                                "the database is unavailable")
    assert re.fullmatch(r"AutoReconnect|[A-Za-z]+Error", error["details"]["kind"])
    _assert_no_leak(refused.text, port)


async def test_embedded_server_persists_in_development(tmp_path: object) -> None:
    from pathlib import Path

    path = Path(str(tmp_path)) / "dev.sqlite3"
    settings = make_settings("mongodb://unused/", "fidus_dev_probe", fidus_env="development",
                             embedded_db_path=path)
    settings.mongodb_uri = None
    async with ConnectionManager(settings) as manager:
        assert manager.embedded
        await manager.database["probe"].insert_one({"kept": True})
    async with ConnectionManager(settings) as manager:
        found = await manager.database["probe"].find_one({}, {"_id": 0})
    assert found == {"kept": True}
    assert path.exists()


async def test_persistent_embedded_database_takes_the_schemas(tmp_path: object) -> None:
    """The development database (SQLite-backed) gets every validator and index, twice over."""
    from datetime import timedelta
    from pathlib import Path

    from bson import ObjectId
    from pymongo.errors import DuplicateKeyError, WriteError

    from backend.db import index_sync
    from backend.repositories.base import utcnow

    path = Path(str(tmp_path)) / "dev.sqlite3"
    settings = make_settings("mongodb://unused/", "fidus_dev_schema", fidus_env="development",
                             embedded_db_path=path)
    settings.mongodb_uri = None
    for run in range(2):
        async with ConnectionManager(settings) as manager:
            db = manager.database
            report = await index_sync.apply(db, await index_sync.plan(db))
            assert report.exit_code == 0, report.as_dict()
            created = sum(row["created"] for row in report.as_dict()["collections"])
            if run == 0:
                assert created > 50
            else:
                assert created == 0
            users = await db["users"].index_information()
            assert len(users) == 10
            if run == 0:
                with pytest.raises(WriteError) as invalid:
                    await db["users"].insert_one({"email": "not-a-user"})
                assert invalid.value.code == 121
                now = utcnow()
                session = {"token_hash": "a" * 64, "user_id": ObjectId(), "created_at": now,
                           "expires_at": now + timedelta(days=1)}
                await db["sessions"].insert_one(dict(session))
                with pytest.raises(DuplicateKeyError):
                    await db["sessions"].insert_one(dict(session))


async def test_a_failing_health_check_degrades_but_never_raises(
    mongo_uri: str, db_name: str
) -> None:
    async with ConnectionManager(make_settings(mongo_uri, db_name)) as manager:
        async def broken(_db: object) -> list[str]:
            raise RuntimeError("lease table unreadable")

        manager.degraded_checks.append(broken)
        report = await manager.health()
    assert report.status == "degraded"
    # The exception's text goes to the log; the public report names its class only.
    assert report.reasons == ["health check failed (RuntimeError)"]
    assert report.ping_ms is not None


def test_the_service_exits_with_one_readable_line_when_the_database_is_unreachable() -> None:
    import os
    import subprocess
    import sys

    env = {**os.environ, "FIDUS_ENV": "development",
           "MONGODB_URI": f"mongodb://127.0.0.1:{free_port()}/",
           "MONGODB_SERVER_SELECTION_TIMEOUT_MS": "100", "MONGODB_CONNECT_TIMEOUT_MS": "100"}
    done = subprocess.run([sys.executable, "-m", "backend", "--port", str(free_port())],
                          env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("fidus: cannot start: database unreachable after 3 attempts")
    assert "Traceback" not in done.stderr
    assert done.stderr.count("connecting to the database (attempt") == 3


def test_production_settings_with_a_placeholder_refuse_to_start() -> None:
    import os
    import subprocess
    import sys

    env = {**os.environ, "FIDUS_ENV": "production", "JWT_SECRET": "changeme"}
    env.pop("MONGODB_URI", None)
    done = subprocess.run([sys.executable, "-m", "backend"], env=env, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 2
    assert "MONGODB_URI is missing" in done.stderr and "JWT_SECRET is a placeholder" in done.stderr
    assert "Traceback" not in done.stderr


async def test_health_never_quotes_document_values(mongo_uri: str, db_name: str) -> None:
    from pymongo.errors import DuplicateKeyError

    async with ConnectionManager(make_settings(mongo_uri, db_name)) as manager:
        people = manager.database["people"]
        await people.create_index("email", unique=True)
        await people.insert_one({"_id": 1, "email": "alice@fidus.example"})
        await people.insert_one({"_id": 2, "email": "bob@fidus.example"})
        with pytest.raises(DuplicateKeyError):
            await people.find_one_and_update({"_id": 2},
                                             {"$set": {"email": "alice@fidus.example"}})
        report = await manager.health()
        await manager.client.drop_database(db_name)
    assert report.last_error is not None
    assert report.last_error.startswith("findAndModify failed")
    assert "alice" not in report.last_error and "11000" in report.last_error
