"""What the fault scenarios share: the server process under the test's control, the app
pointed at it, concurrent requests that record every answer, and the invariants checked once
the database is back.

The checks are about what is stored and answered, never about how long anything took.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
from asgi_lifespan import LifespanManager
from bson import ObjectId
from fastapi import FastAPI
from pymongo import AsyncMongoClient, monitoring
from pymongo.asynchronous.database import AsyncDatabase

from backend.api.app import create_app
from backend.api.deps import services_for
from backend.db.connection import CODEC_OPTIONS, ConnectionManager
from backend.ops._audit import AUDITED_COLLECTIONS
from backend.ops.verify import verify
from backend.services import Services
from backend.services.audit import RELAY_GRACE
from tests.api_support import ADMIN_EMAIL, ADMIN_PASSWORD, API, api_settings, install_clock

REPO_ROOT = Path(__file__).resolve().parents[2]
#: How long the server process may take to listen; a slower start is a broken environment.
START_PATIENCE_SECONDS = 60
#: Retries of one request after the database came back, before the harness gives up on it.
RETRY_ATTEMPTS = 20


class FaultServer:
    """The embedded server as a separate process: started, paused (SIGSTOP), resumed
    (SIGCONT), killed (SIGKILL) and started again on the same port. It runs in a session of
    its own, so a signal reaches its whole process group and nothing else."""

    def __init__(self, workdir: Path, *, persistent: bool) -> None:
        self.workdir = workdir
        self.path = workdir / "fault-server.sqlite3" if persistent else None
        self.port = 0
        self.starts = 0
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def log(self) -> Path:
        return self.workdir / "fault-server.log"

    async def start(self) -> str:
        self.starts += 1
        uri_file = self.workdir / f"fault-server-{self.starts}.uri"
        command = [sys.executable, "-m", "tests.faults.fault_server", str(self.port),
                   str(uri_file), *([str(self.path)] if self.path else [])]
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(command, cwd=REPO_ROOT, stdout=log,
                                            stderr=subprocess.STDOUT, start_new_session=True)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + START_PATIENCE_SECONDS
        while not uri_file.exists():
            if self.process.poll() is not None or loop.time() > deadline:
                self.close()
                raise RuntimeError("the fault server did not start:\n"
                                   + self.log.read_text(errors="replace")[-3000:])
            await asyncio.sleep(0.05)
        uri = uri_file.read_text(encoding="utf-8")
        self.port = urlsplit(uri).port or 0
        return uri

    def _signal(self, sig: signal.Signals) -> None:
        assert self.process is not None
        os.killpg(self.process.pid, sig)

    def pause(self) -> None:
        self._signal(signal.SIGSTOP)

    def resume(self) -> None:
        self._signal(signal.SIGCONT)

    def kill(self) -> None:
        self._signal(signal.SIGKILL)
        assert self.process is not None
        self.process.wait()

    def close(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            self._signal(signal.SIGCONT)
            self._signal(signal.SIGKILL)
        self.process.wait()


class StrikeOnWrite(monitoring.CommandListener):
    """Injects the fault from inside the driver, once armed, at the moment the `nth` insert
    into one of `collections` is sent (`when="sent"`: the app cannot know whether it will be
    applied) or acknowledged (`when="acknowledged"`: stored with its audit record in the
    outbox, not yet relayed, not yet answered)."""

    def __init__(self, fault: Callable[[], None], *, nth: int, when: str,
                 collections: frozenset[str]) -> None:
        assert when in ("sent", "acknowledged")
        self.fault = fault
        self.nth = nth
        self.when = when
        self.collections = collections
        self.armed = False
        self.seen = 0
        self.struck = asyncio.Event()
        self._inserts: set[int] = set()

    def arm(self) -> None:
        self.armed = True

    def _strike_when_due(self) -> None:
        if not self.armed or self.struck.is_set():
            return
        self.seen += 1
        if self.seen == self.nth:
            self.fault()
            self.struck.set()

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        if event.command_name != "insert" or event.command.get("insert") not in self.collections:
            return
        if self.when == "sent":
            self._strike_when_due()
        else:
            self._inserts.add(event.request_id)

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        if event.request_id in self._inserts:
            self._inserts.discard(event.request_id)
            if event.reply.get("n"):
                self._strike_when_due()

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        self._inserts.discard(event.request_id)


@dataclass
class Answer:
    """Every answer one logical request got, first attempt and retries."""

    name: str
    key: str | None
    statuses: list[int] = field(default_factory=list)
    bodies: list[Any] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)

    @property
    def final(self) -> int | None:
        return self.statuses[-1] if self.statuses else None

    @property
    def final_body(self) -> Any:
        return self.bodies[-1] if self.bodies else None


Send = Callable[[httpx.AsyncClient], Awaitable[httpx.Response]]


async def attempt(http: httpx.AsyncClient, answer: Answer, send: Send) -> None:
    """One attempt; an exception escaping the app is a connection dropped without an answer."""
    try:
        response = await send(http)
    except Exception as error:  # noqa: BLE001 - whatever it is, the client got no answer
        answer.dropped.append(f"{type(error).__name__}: {error}"[:300])
        return
    answer.statuses.append(response.status_code)
    try:
        answer.bodies.append(response.json())
    except ValueError:
        answer.bodies.append(response.text)


async def retry_until_answered(http: httpx.AsyncClient, answer: Answer, send: Send) -> None:
    """What a careful client does after a 503: the same request, same key, until it gets an
    answer that is not 'try again later'."""
    for _ in range(RETRY_ATTEMPTS):
        if answer.final is not None and answer.final != 503 and not (
                answer.dropped and answer.final is None):
            return
        await attempt(http, answer, send)
        if answer.final == 503:
            await asyncio.sleep(0.5)


@dataclass
class Fixture:
    """The app pointed at the fault server, a client on it, and a direct look at the data."""

    app: FastAPI
    http: httpx.AsyncClient
    db: AsyncDatabase[dict[str, Any]]
    admin: dict[str, str]

    @property
    def services(self) -> Services:
        return services_for(self.app)


@contextlib.asynccontextmanager
async def app_on(uri: str, db_name: str,
                 listeners: list[monitoring.CommandListener] | None = None,
                 ) -> AsyncIterator[Fixture]:
    """The whole app, lifespan and audit relay included, on the fault server; short driver
    timeouts so that a paused or dead server answers 503 soon rather than late."""
    settings = api_settings(
        uri, db_name, mongodb_server_selection_timeout_ms=1500,
        mongodb_connect_timeout_ms=1000, mongodb_socket_timeout_ms=2000,
        mongodb_connect_attempts=5, audit_relay_interval_seconds=0.5)
    manager = ConnectionManager(settings, event_listeners=list(listeners or []))
    app = create_app(settings, connection=manager, configure_logs=False)
    inspector: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(
        uri, tz_aware=True, serverSelectionTimeoutMS=30_000)
    try:
        async with LifespanManager(app, startup_timeout=120, shutdown_timeout=60):
            transport = httpx.ASGITransport(app=app, raise_app_exceptions=True)
            async with httpx.AsyncClient(transport=transport, base_url="http://fidus.test",
                                         timeout=None) as http:
                login = await http.post(f"{API}/auth/login", json={
                    "login": ADMIN_EMAIL, "password": ADMIN_PASSWORD})
                assert login.status_code == 200, login.text
                admin = {"Authorization": f"Bearer {login.json()['access_token']}"}
                yield Fixture(app, http, inspector.get_database(
                    db_name, codec_options=CODEC_OPTIONS), admin)
    finally:
        await inspector.close()


# invariants ---------------------------------------------------------------------------------


#: How long the app's relay may take to empty the outboxes once they are due.
RELAY_PATIENCE_SECONDS = 60


async def relayed_by_the_app(fx: Fixture) -> None:
    """Let the API process's own relay timer finish the outboxes: its clock is moved past the
    grace period, then the harness waits until nothing is pending (without ever calling the
    relay itself)."""
    install_clock(fx.app).advance(seconds=RELAY_GRACE.total_seconds() + 1)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + RELAY_PATIENCE_SECONDS
    while loop.time() < deadline:
        if not await pending_outboxes(fx.db):
            return
        await asyncio.sleep(0.1)
    assert await pending_outboxes(fx.db) == {}, "the app's relay left outboxes behind"


async def pending_outboxes(db: AsyncDatabase[dict[str, Any]]) -> dict[str, int]:
    pending = {audited.collection: await db[audited.collection].count_documents(
        {"_outbox.0": {"$exists": True}}) for audited in AUDITED_COLLECTIONS}
    return {name: count for name, count in pending.items() if count}


def no_server_error_and_no_dropped_connection(answers: list[Answer]) -> None:
    dropped = {a.name: a.dropped for a in answers if a.dropped}
    assert dropped == {}, f"connections dropped without an answer: {dropped}"
    errors = {a.name: list(zip(a.statuses, a.bodies, strict=True)) for a in answers
              if any(status >= 500 and status != 503 for status in a.statuses)}
    assert errors == {}, f"server errors: {errors}"
    unavailable = [a.bodies[i] for a in answers for i, s in enumerate(a.statuses) if s == 503]
    assert all(body["error"]["code"] == "DATABASE_UNAVAILABLE" for body in unavailable)


async def audit_trail_is_exact(db: AsyncDatabase[dict[str, Any]]) -> None:
    """Every audited document has exactly one creation record and no pending outbox entry;
    every audit record names a document that exists; every check of `make verify` passes."""
    for audited in AUDITED_COLLECTIONS:
        left = await db[audited.collection].count_documents({"_outbox.0": {"$exists": True}})
        assert left == 0, f"{audited.collection}: {left} outbox(es) not relayed"
        async for document in db[audited.collection].find({}, {audited.entity_key: 1}):
            records = await db["audit_log"].count_documents({
                "entity_type": audited.entity_type,
                "entity_id": audited.entity_id(document),
                "action": {"$in": sorted(audited.creation_actions)}})
            assert records == 1, (audited.collection, document["_id"], records)
        async for record in db["audit_log"].find({"entity_type": audited.entity_type}):
            query = ({"_id": ObjectId(record["entity_id"])} if audited.entity_key == "_id"
                     else {audited.entity_key: record["entity_id"]})
            assert await db[audited.collection].count_documents(query) == 1, (
                f"audit record {record['_id']} ({record['action']}) names no document")
    failed = {r.name: r.sample_ids for r in await verify(db) if not r.ok}
    assert failed == {}, f"make verify: {failed}"


#: Collections whose every versioned change in these scenarios is an audited one (no sync
#: valuations, whose changes are not audited one by one, happen here).
EVERY_CHANGE_AUDITED = ("users", "crm_prospects", "investments")


async def one_record_per_change(db: AsyncDatabase[dict[str, Any]]) -> None:
    """A document at version n went through n audited writes (its creation and n - 1
    changes): it must have exactly n audit records, no more (a change recorded twice) and no
    fewer (a change stored without its record)."""
    for audited in AUDITED_COLLECTIONS:
        if audited.collection not in EVERY_CHANGE_AUDITED:
            continue
        async for document in db[audited.collection].find(
                {}, {audited.entity_key: 1, "version": 1}):
            records = await db["audit_log"].count_documents({
                "entity_type": audited.entity_type,
                "entity_id": audited.entity_id(document)})
            assert records == document["version"], (
                audited.collection, document["_id"], document["version"], records)


def statuses(answers: list[Answer]) -> Counter[tuple[str, int | None]]:
    return Counter((a.name.split("#")[0], a.final) for a in answers)
