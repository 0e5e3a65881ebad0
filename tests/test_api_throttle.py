"""The sign-in throttle: one bucket per client address shared by every API process (in
MongoDB), and the client address taken from X-Forwarded-For only behind a declared proxy."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI

from backend.api.app import create_app
from backend.security.addresses import client_address, trusted_networks
from backend.settings import REPO_ROOT, Settings
from tests.api_support import API, api_settings, assert_error
from tests.support import free_port

LIMIT = 4


@pytest.fixture
def settings(mongo_uri: str, db_name: str) -> Settings:
    return api_settings(mongo_uri, db_name, login_ip_max_attempts_per_minute=LIMIT)


async def guess(http: httpx.AsyncClient, **headers: str) -> httpx.Response:
    return await http.post(f"{API}/auth/login", headers=headers,
                           json={"login": "nobody@fidus.example", "password": "whatever-it-is"})


async def test_forwarded_for_is_ignored_unless_a_proxy_is_declared(
        client: httpx.AsyncClient) -> None:
    answers = [await guess(client, **{"X-Forwarded-For": f"203.0.113.{n}"}) for n in range(30)]
    assert [a.status_code for a in answers[:LIMIT]] == [401] * LIMIT
    assert {a.status_code for a in answers[LIMIT:]} == {429}
    assert_error(answers[-1], 429, "THROTTLED")


@pytest.fixture
async def behind_proxy(mongo_uri: str, db_name: str) -> AsyncIterator[FastAPI]:
    app = create_app(api_settings(mongo_uri, db_name, login_ip_max_attempts_per_minute=LIMIT,
                                  forwarded_allow_ips="10.0.0.0/8, 127.0.0.1"),
                     configure_logs=False)
    async with LifespanManager(app):
        yield app


def http_from(app: FastAPI, peer: str) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, client=(peer, 40000))
    return httpx.AsyncClient(transport=transport, base_url="http://fidus.test")


async def test_behind_a_declared_proxy_each_forwarded_client_has_its_own_bucket(
        behind_proxy: FastAPI) -> None:
    async with http_from(behind_proxy, "10.1.2.3") as proxy, \
            http_from(behind_proxy, "192.0.2.50") as stranger:
        for n in range(3 * LIMIT):
            response = await guess(proxy, **{"X-Forwarded-For": f"198.51.100.{n}, 10.9.9.9"})
            assert response.status_code == 401, response.text
        for _ in range(LIMIT):
            await guess(proxy, **{"X-Forwarded-For": "198.51.100.200"})
        assert_error(await guess(proxy, **{"X-Forwarded-For": "198.51.100.200"}), 429)
        # A peer that is not a declared proxy cannot choose its address.
        answers = [await guess(stranger, **{"X-Forwarded-For": f"203.0.113.{n}"})
                   for n in range(LIMIT + 1)]
        assert answers[-1].status_code == 429


def test_the_client_address_rules() -> None:
    proxies = trusted_networks(["10.0.0.0/8"])
    assert client_address("10.0.0.1", ["198.51.100.7"], proxies) == "198.51.100.7"
    assert client_address("10.0.0.1", ["203.0.113.1, 198.51.100.7, 10.0.0.2"],
                          proxies) == "198.51.100.7"
    assert client_address("10.0.0.1", ["garbage, 198.51.100.7"], proxies) == "198.51.100.7"
    assert client_address("10.0.0.1", ["198.51.100.7, garbage"], proxies) == "10.0.0.1"
    assert client_address("192.0.2.9", ["198.51.100.7"], proxies) == "192.0.2.9"
    assert client_address("10.0.0.1", [], proxies) == "10.0.0.1"
    assert client_address("10.0.0.1", ["198.51.100.7"], trusted_networks([])) == "10.0.0.1"
    assert client_address("192.0.2.9", ["[2001:db8::1]:443"],
                          trusted_networks(["*"])) == "2001:db8::1"


async def test_two_app_instances_share_one_bucket(app: FastAPI, settings: Settings) -> None:
    second = create_app(settings, configure_logs=False)
    async with (LifespanManager(second), http_from(app, "192.0.2.77") as one,
                http_from(second, "192.0.2.77") as two):
        statuses = [(await guess(one if n % 2 else two)).status_code for n in range(LIMIT + 1)]
    assert statuses == [401] * LIMIT + [429]


@pytest.fixture
def two_processes(mongo_uri: str, db_name: str, tmp_path: Any) -> Iterator[list[str]]:
    """Two `python -m backend` processes on one database."""
    env = {key: value for key, value in os.environ.items()
           if not key.startswith(("FIDUS_", "MONGODB_", "LOGIN_", "FORWARDED_"))}
    env.update({"PYTHONPATH": str(REPO_ROOT), "FIDUS_ENV": "test", "MONGODB_URI": mongo_uri,
                "MONGODB_DATABASE": db_name, "MONGODB_TRANSACTIONS": "false",
                "MONGODB_MIN_POOL_SIZE": "0", "BCRYPT_ROUNDS": "4",
                "JWT_SECRET": "two-process-test-signing-key-0123456789-abcdef",
                "LOGIN_IP_MAX_ATTEMPTS_PER_MINUTE": str(LIMIT)})
    ports = [free_port(), free_port()]
    with open(tmp_path / "servers.log", "w") as log:
        processes = [subprocess.Popen([sys.executable, "-m", "backend", "--port", str(port)],
                                      cwd=tmp_path, env=env, stdout=log, stderr=log)
                     for port in ports]
    try:
        yield [f"http://127.0.0.1:{port}" for port in ports]
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


async def _wait_until_up(http: httpx.AsyncClient, url: str) -> None:
    for _ in range(600):
        try:
            if (await http.get(f"{url}/health/live")).status_code == 200:
                return
        except httpx.TransportError:
            pass
        await asyncio.sleep(0.1)
    raise AssertionError(f"{url} did not start")


async def test_two_api_processes_share_one_bucket(two_processes: list[str]) -> None:
    async with httpx.AsyncClient(timeout=30) as http:
        for url in two_processes:
            await _wait_until_up(http, url)
        statuses = []
        for n in range(LIMIT + 2):
            response = await http.post(
                f"{two_processes[n % 2]}{API}/auth/login",
                json={"login": "nobody@fidus.example", "password": "whatever-it-is"},
                headers={"X-Forwarded-For": f"203.0.113.{n}"})
            statuses.append(response.status_code)
    # Alternating between the processes (and forging X-Forwarded-For) changes nothing.
    assert statuses == [401] * LIMIT + [429, 429]
