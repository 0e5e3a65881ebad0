"""Fault injection: the embedded server runs as a separate process that the tests pause
(SIGSTOP/SIGCONT), kill (SIGKILL) and restart on the same port while the API serves concurrent
creations and conversions through `httpx.ASGITransport`.

After each fault, the database back, every request retried under its Idempotency-Key until it
is answered, and a relay pass, the tests check what must hold whatever the timing:
- no answer is a 500 and no connection is dropped without an answer; 503 is
  DATABASE_UNAVAILABLE;
- every acknowledged (2xx) write is stored, once per Idempotency-Key;
- every stored document has exactly one creation record, no audit record lacks its document,
  and `make verify` passes (no orphan client, no prospect half-converted, no outbox left).

Each scenario runs once in `make test`; `make test ARGS="-m faults"` runs only these. They skip
themselves on FIDUS_TEST_MONGODB_URI: they cannot pause a server they did not start.
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from bson import ObjectId

from tests.api_support import API
from tests.faults.harness import (
    Answer,
    FaultServer,
    Fixture,
    StrikeOnWrite,
    app_on,
    attempt,
    audit_trail_is_exact,
    no_server_error_and_no_dropped_connection,
    one_record_per_change,
    relayed_by_the_app,
    retry_until_answered,
)

pytestmark = [
    pytest.mark.faults,
    pytest.mark.skipif(bool(os.environ.get("FIDUS_TEST_MONGODB_URI")),
                       reason="the fault harness pauses and kills a server it starts itself"),
    pytest.mark.skipif(not hasattr(signal, "SIGSTOP"), reason="needs POSIX signals"),
]

PAUSE_SECONDS = 10
PROSPECTS, USERS, INVESTMENTS = 7, 7, 6
CONVERSIONS = 2  # won prospects, each converted by two racing requests under the fault
#: The collections the scenarios create documents in: a fault strikes on an insert into one.
CREATED_IN = frozenset({"crm_prospects", "users", "investments"})


@pytest.fixture
def db_name() -> str:
    return f"fidus_faults_{uuid.uuid4().hex[:12]}"


def _keyed(headers: dict[str, str], key: str) -> dict[str, str]:
    return {**headers, "Idempotency-Key": key}


async def _won_prospect(fx: Fixture, n: int) -> str:
    created = await fx.http.post(f"{API}/admin/crm/prospects", headers=fx.admin, json={
        "name": f"Won Prospect {n}", "email": f"won{n}@fidus.example"})
    assert created.status_code == 201, created.text
    prospect_id: str = created.json()["id"]
    for stage in ("contacted", "qualified", "proposal", "negotiation", "won"):
        moved = await fx.http.post(f"{API}/admin/crm/prospects/{prospect_id}/stage",
                                   headers=fx.admin, json={"stage": stage})
        assert moved.status_code == 200, moved.text
    return prospect_id


async def _approved_client(fx: Fixture, n: int) -> str:
    created = await fx.http.post(f"{API}/admin/users", headers=fx.admin, json={
        "email": f"client{n}@fidus.example", "username": f"client{n}",
        "password": "a-long-passphrase", "first_name": "Ada", "last_name": f"Client{n}"})
    assert created.status_code == 201, created.text
    client_id: str = created.json()["id"]
    approved = await fx.http.post(f"{API}/admin/users/{client_id}/kyc", headers=fx.admin,
                                  json={"kyc_status": "approved"})
    assert approved.status_code == 200, approved.text
    return client_id


def _conversion_body(n: int, twin: int) -> dict[str, Any]:
    return {"username": f"won{n}-{twin}", "password": "a-long-passphrase",
            "first_name": "Won", "last_name": f"Client{n}"}


async def _requests(fx: Fixture) -> list[tuple[Answer, Any]]:
    """The creations and conversions of one scenario: each with its own Idempotency-Key."""
    clients = [await _approved_client(fx, n) for n in range(INVESTMENTS)]
    won = [await _won_prospect(fx, n) for n in range(CONVERSIONS)]
    deposit = (datetime.now(UTC) - timedelta(days=10)).date().isoformat()
    requests: list[tuple[Answer, Any]] = []

    def add(name: str, key: str, method_path: str, body: dict[str, Any]) -> None:
        answer = Answer(name, key)

        async def send(http: httpx.AsyncClient) -> httpx.Response:
            return await http.post(f"{API}{method_path}", headers=_keyed(fx.admin, key),
                                   json=body)

        requests.append((answer, send))

    for i in range(PROSPECTS):
        add(f"prospect#{i}", f"fault-prospect-{i:04d}", "/admin/crm/prospects",
            {"name": f"Prospect {i}", "email": f"prospect{i}@fidus.example"})
    for i in range(USERS):
        add(f"user#{i}", f"fault-user-{i:04d}", "/admin/users",
            {"email": f"user{i}@fidus.example", "username": f"user{i}",
             "password": "a-long-passphrase", "first_name": "Ada", "last_name": f"User{i}"})
    for i, client in enumerate(clients):
        add(f"investment#{i}", f"fault-investment-{i:04d}", "/admin/investments",
            {"client_id": client, "fund_code": "CORE", "principal_amount": "10000.00",
             "currency": "USD", "deposit_date": deposit})
    for n, prospect_id in enumerate(won):
        for twin in range(2):
            add(f"conversion#{n}-{twin}", f"fault-conversion-{n}-{twin}",
                f"/admin/crm/prospects/{prospect_id}/convert", _conversion_body(n, twin))
    return requests


async def _concurrently_during(fx: Fixture, requests: list[tuple[Answer, Any]],
                               strike: StrikeOnWrite, recover: Any, *, seed: int) -> None:
    """Start every request at a staggered moment; `strike` injects the fault from inside the
    driver at its chosen write, `recover` ends it. Then every request answered 503 is retried
    under the same key until it is answered."""
    stagger = random.Random(seed)

    async def first(answer: Answer, send: Any) -> None:
        await asyncio.sleep(stagger.uniform(0, 0.3))
        await attempt(fx.http, answer, send)

    strike.arm()
    started = asyncio.gather(*(first(answer, send) for answer, send in requests))
    struck = asyncio.ensure_future(strike.struck.wait())
    await asyncio.wait([started, struck], return_when=asyncio.FIRST_COMPLETED)
    assert strike.struck.is_set(), "the requests finished before the fault struck"
    await recover()
    await started
    await asyncio.gather(*(retry_until_answered(fx.http, answer, send)
                           for answer, send in requests))


async def _check(fx: Fixture, requests: list[tuple[Answer, Any]]) -> None:
    answers = [answer for answer, _ in requests]
    no_server_error_and_no_dropped_connection(answers)
    # The database is back and everything was retried: every request has its final answer.
    unanswered = {a.name: a.statuses for a in answers if a.final not in (200, 201, 409)}
    assert unanswered == {}, f"requests never answered after recovery: {unanswered}"
    await relayed_by_the_app(fx)
    # Nothing stored twice or left over: the setup's documents plus one per creation.
    assert await fx.db["crm_prospects"].count_documents({}) == PROSPECTS + CONVERSIONS
    assert await fx.db["investments"].count_documents({}) == INVESTMENTS
    assert await fx.db["users"].count_documents({}) == 1 + INVESTMENTS + USERS + CONVERSIONS

    for answer in answers:
        kind = answer.name.split("#")[0]
        body = answer.final_body
        if kind == "conversion":
            continue
        collection = {"prospect": "crm_prospects", "user": "users",
                      "investment": "investments"}[kind]
        assert answer.final in (200, 201), (answer.name, answer.statuses, answer.bodies)
        # Acknowledged means stored, once for the key, as answered.
        stored = [d async for d in fx.db[collection].find({"idempotency_key": answer.key})]
        assert [str(d["_id"]) for d in stored] == [body["id"]], answer.name
        for earlier, status in zip(answer.bodies, answer.statuses, strict=True):
            if status in (200, 201):
                assert earlier["id"] == body["id"], answer.name

    for n in range(CONVERSIONS):
        twins = [a for a in answers if a.name.startswith(f"conversion#{n}-")]
        won = [a for a in twins if a.final in (200, 201)]
        assert len(won) == 1, [(a.name, a.statuses, a.bodies) for a in twins]
        client_id = won[0].final_body["client"]["id"]
        for other in twins:
            if other is not won[0]:
                assert other.final == 409, (other.name, other.statuses, other.bodies)
                assert other.final_body["error"]["code"] == "ALREADY_CONVERTED"
                assert other.final_body["error"]["details"]["client_id"] == client_id
        prospect_id = won[0].final_body["prospect"]["id"]
        clients = [d async for d in fx.db["users"].find(
            {"source_prospect_id": ObjectId(prospect_id)})]
        assert [str(d["_id"]) for d in clients] == [client_id]

    await audit_trail_is_exact(fx.db)
    await one_record_per_change(fx.db)


async def test_pause_during_concurrent_creations(tmp_path: Path, db_name: str) -> None:
    """The server stops (SIGSTOP) the moment the 6th creating insert is sent, for 10 s, while
    20 creations of prospects, users and investments (and two raced conversions) are under way:
    the writes in flight are applied when it resumes, after their requests answered 503."""
    server = FaultServer(tmp_path, persistent=False)
    strike = StrikeOnWrite(server.pause, nth=6, when="sent", collections=CREATED_IN)
    try:
        uri = await server.start()
        async with app_on(uri, db_name, listeners=[strike]) as fx:
            requests = await _requests(fx)

            async def resume() -> None:
                try:
                    await asyncio.sleep(PAUSE_SECONDS)
                finally:
                    server.resume()

            await _concurrently_during(fx, requests, strike, resume, seed=1)
            await _check(fx, requests)
            assert any(503 in a.statuses for a, _ in requests), "the pause hit no request"
    finally:
        server.close()


async def test_kill_and_restart_during_concurrent_creations(tmp_path: Path,
                                                            db_name: str) -> None:
    """The server is killed (SIGKILL) the moment it has acknowledged the 6th creating insert
    (stored, its audit record still in the outbox, its answer not yet given) while the same
    creations are under way, and started again on the same port from its SQLite file: what it
    acknowledged survives, the rest is retried. (The in-memory engine would lose everything;
    the file is what a restart keeps.)"""
    server = FaultServer(tmp_path, persistent=True)
    strike = StrikeOnWrite(server.kill, nth=6, when="acknowledged", collections=CREATED_IN)
    try:
        uri = await server.start()
        async with app_on(uri, db_name, listeners=[strike]) as fx:
            requests = await _requests(fx)

            async def restart() -> None:
                await asyncio.sleep(1)
                assert await server.start() == uri

            await _concurrently_during(fx, requests, strike, restart, seed=2)
            await _check(fx, requests)
            assert server.starts == 2
    finally:
        server.close()


async def test_ten_concurrent_conversions_of_one_prospect(tmp_path: Path,
                                                          db_name: str) -> None:
    """Exactly one 201; the nine others 409 ALREADY_CONVERTED naming the client it created;
    one client carrying the prospect's id, the prospect converted into it."""
    server = FaultServer(tmp_path, persistent=False)
    try:
        uri = await server.start()
        async with app_on(uri, db_name) as fx:
            prospect_id = await _won_prospect(fx, 99)
            body = _conversion_body(99, 0)
            answers = [Answer(f"convert#{i}", None) for i in range(10)]

            async def convert(http: httpx.AsyncClient) -> httpx.Response:
                return await http.post(f"{API}/admin/crm/prospects/{prospect_id}/convert",
                                       headers=fx.admin, json=body)

            await asyncio.gather(*(attempt(fx.http, answer, convert) for answer in answers))
            no_server_error_and_no_dropped_connection(answers)
            assert sorted(a.final or 0 for a in answers) == [201] + [409] * 9
            (created,) = [a.final_body for a in answers if a.final == 201]
            client_id = created["client"]["id"]
            assert created["prospect"]["converted_client_id"] == client_id
            for refused in (a.final_body for a in answers if a.final == 409):
                assert refused["error"]["code"] == "ALREADY_CONVERTED"
                assert refused["error"]["details"]["client_id"] == client_id
            stored = await fx.db["crm_prospects"].find_one(
                {"_id": ObjectId(prospect_id)})
            assert stored is not None and str(stored["converted_client_id"]) == client_id
            assert await fx.db["users"].count_documents(
                {"source_prospect_id": stored["_id"]}) == 1
            await relayed_by_the_app(fx)
            await audit_trail_is_exact(fx.db)
            await one_record_per_change(fx.db)
    finally:
        server.close()

