"""Test fixtures: every test gets its own database on the embedded server, or on a real MongoDB
when FIDUS_TEST_MONGODB_URI is set, and the database is dropped afterwards."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase

from backend.db.connection import CODEC_OPTIONS
from backend.db.embedded import EmbeddedMongoServer
from backend.settings import Settings
from tests.support import CommandRecorder, make_settings

REAL_MONGODB_URI = os.environ.get("FIDUS_TEST_MONGODB_URI")

# Settings must come from the test, never from a developer's .env or shell.
for _name in ("MONGODB_URI", "MONGODB_DATABASE", "FIDUS_ENV"):
    os.environ.pop(_name, None)
os.environ["FIDUS_ENV"] = "test"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if REAL_MONGODB_URI:
        return
    skip = pytest.mark.skip(reason="needs a real MongoDB (set FIDUS_TEST_MONGODB_URI)")
    for item in items:
        if "real_mongodb" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def embedded_server() -> Iterator[EmbeddedMongoServer | None]:
    if REAL_MONGODB_URI:
        yield None
        return
    server = EmbeddedMongoServer()
    server.start()
    yield server
    server.close()


@pytest.fixture(scope="session")
def mongo_uri(embedded_server: EmbeddedMongoServer | None) -> str:
    if REAL_MONGODB_URI:
        return REAL_MONGODB_URI
    assert embedded_server is not None
    return embedded_server.uri


@pytest.fixture
def db_name() -> str:
    return f"fidus_test_{uuid.uuid4().hex[:12]}"


@pytest.fixture
def command_recorder() -> CommandRecorder:
    return CommandRecorder()


@pytest.fixture
async def mongo_client(
    mongo_uri: str, command_recorder: CommandRecorder
) -> AsyncIterator[AsyncMongoClient[dict[str, Any]]]:
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(
        mongo_uri, tz_aware=True, event_listeners=[command_recorder],
        serverSelectionTimeoutMS=5000,
    )
    yield client
    await client.close()


@pytest.fixture
async def db(
    mongo_client: AsyncMongoClient[dict[str, Any]], db_name: str
) -> AsyncIterator[AsyncDatabase[dict[str, Any]]]:
    database = mongo_client.get_database(db_name, codec_options=CODEC_OPTIONS)
    yield database
    await mongo_client.drop_database(db_name)


@pytest.fixture
async def synced_db(db: AsyncDatabase[dict[str, Any]]) -> AsyncDatabase[dict[str, Any]]:
    """A database with every declared collection, validator and index in place."""
    from backend.db import index_sync

    sync_plan = await index_sync.plan(db)
    await index_sync.apply(db, sync_plan)
    return db


@pytest.fixture
def settings(mongo_uri: str, db_name: str) -> Settings:
    return make_settings(mongo_uri, db_name)


@pytest.fixture
async def app(settings: Settings, mongo_client: AsyncMongoClient[dict[str, Any]],
              db_name: str) -> AsyncIterator[FastAPI]:
    """The application with its lifespan running on a database of its own."""
    from backend.api.app import create_app

    application = create_app(settings, configure_logs=False)
    async with LifespanManager(application):
        yield application
    await mongo_client.drop_database(db_name)


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://fidus.test") as http:
        yield http
