"""Security headers on every response, the request id a caller may set, and the request-body
limit answered before a large body is read."""

from __future__ import annotations

import json
import uuid
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from backend.settings import Settings
from tests.api_support import (
    ADMIN_EMAIL,
    ADMIN_PASSWORD,
    API,
    admin_headers,
    api_settings,
    assert_error,
    signed_in_user,
)

MiB = 1024 * 1024


@pytest.fixture
def settings(mongo_uri: str, db_name: str) -> Settings:
    return api_settings(mongo_uri, db_name, document_max_bytes=3 * MiB)


def _assert_common_headers(response: httpx.Response) -> None:
    assert response.headers["x-content-type-options"] == "nosniff", response.request.url
    assert response.headers["referrer-policy"] == "no-referrer", response.request.url
    assert "strict-transport-security" not in response.headers


async def test_every_response_carries_the_security_headers(
        app: FastAPI, client: httpx.AsyncClient) -> None:
    _, client_auth = await signed_in_user(app, client)
    admin = await admin_headers(client)
    token = await client.post(f"{API}/auth/login",
                              json={"login": ADMIN_EMAIL, "password": ADMIN_PASSWORD})
    responses = [
        token,
        await client.get(f"{API}/auth/me", headers=admin),
        await client.get(f"{API}/client/profile", headers=client_auth),
        await client.get(f"{API}/client/investments", headers=client_auth),
        await client.get(f"{API}/admin/users", headers=admin),
        await client.get(f"{API}/nothing-here"),
        await client.post(f"{API}/auth/login", json={"login": "x"}),
    ]
    for response in responses:
        _assert_common_headers(response)
        assert response.headers["cache-control"] == "no-store", response.request.url
    for path in ("/health/live", "/openapi.json"):
        _assert_common_headers(await client.get(path))


async def test_hsts_is_sent_in_production_rules_only(mongo_uri: str, db_name: str) -> None:
    from backend.api.middleware import HSTS, security_headers

    assert ("Strict-Transport-Security", HSTS) in security_headers("/api/v1/x", 200, hsts=True)
    assert all(name != "Strict-Transport-Security"
               for name, _ in security_headers("/api/v1/x", 200, hsts=False))


async def test_401_names_the_bearer_scheme(client: httpx.AsyncClient) -> None:
    for response in (
        await client.get(f"{API}/auth/me"),
        await client.get(f"{API}/auth/me", headers={"Authorization": "Bearer x.y.z"}),
        await client.post(f"{API}/auth/login",
                          json={"login": "nobody@fidus.example", "password": "whatever-it-is"}),
    ):
        assert_error(response, 401)
        assert response.headers["www-authenticate"] == "Bearer"
    ok = await client.get("/health/live")
    assert "www-authenticate" not in ok.headers


@pytest.mark.parametrize(("given", "kept"), [
    ("3f2b8c1e-8d4a-4b9e-9a51-0c6f1d2e3a4b", True),
    ("req-2026.11.30_abc", True),
    ("x" * 64, True),
    ("x" * 65, False),
    ("evil\u202e", False),
    ("a b", False),
    ("<script>", False),
    ("line\\nbreak", False),
])
async def test_a_caller_request_id_is_kept_only_in_a_safe_form(
        client: httpx.AsyncClient, given: str, kept: bool) -> None:
    raw = given.encode("utf-8")
    response = await client.get("/health/live", headers=[(b"X-Request-ID", raw)])
    echoed = response.headers["x-request-id"]
    if kept:
        assert echoed == given
    else:
        assert echoed != given
        assert uuid.UUID(hex=echoed)


async def _call(app: FastAPI, *, path: str, headers: list[tuple[bytes, bytes]],
                chunks: int, chunk: bytes) -> tuple[int, dict[str, Any], int]:
    """Drive the app directly over ASGI, counting the body bytes it pulled."""
    pulled = 0
    sent = 0
    messages: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        nonlocal pulled, sent
        if sent >= chunks:
            return {"type": "http.disconnect"}
        sent += 1
        pulled += len(chunk)
        return {"type": "http.request", "body": chunk, "more_body": sent < chunks}

    async def send(message: dict[str, Any]) -> None:
        messages.append(message)

    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
             "method": "POST", "scheme": "http", "path": path, "raw_path": path.encode(),
             "query_string": b"", "root_path": "", "headers": headers,
             "client": ("127.0.0.1", 5000), "server": ("fidus.test", 80)}
    await app(scope, receive, send)
    start = next(m for m in messages if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in messages if m["type"] == "http.response.body")
    return start["status"], json.loads(body), pulled


async def test_a_50_mb_login_body_is_refused_before_it_is_read(app: FastAPI,
                                                              client: httpx.AsyncClient) -> None:
    chunk = b" " * (64 * 1024)
    chunks = 50 * MiB // len(chunk)
    # Declared too large: refused without reading a byte.
    status, body, pulled = await _call(
        app, path=f"{API}/auth/login", chunks=chunks, chunk=chunk,
        headers=[(b"content-type", b"application/json"),
                 (b"content-length", str(50 * MiB).encode())])
    assert status == 413 and body["error"]["code"] == "PAYLOAD_TOO_LARGE"
    assert body["error"]["details"] == {"max_bytes": MiB}
    assert pulled == 0
    # Streamed without a length: refused once the limit is passed, not after 50 MB.
    status, body, pulled = await _call(
        app, path=f"{API}/auth/login", chunks=chunks, chunk=chunk,
        headers=[(b"content-type", b"application/json")])
    assert status == 413 and body["error"]["code"] == "PAYLOAD_TOO_LARGE"
    assert pulled <= MiB + len(chunk)


async def test_the_body_limit_is_a_setting_and_uploads_have_the_document_limit(
        app: FastAPI, client: httpx.AsyncClient) -> None:
    _, headers = await signed_in_user(app, client)
    just_under = {"login": "a@fidus.example", "password": "p" * 100, "pad": "x" * (MiB - 200)}
    response = await client.post(f"{API}/auth/login", json=just_under)
    assert_error(response, 422, "VALIDATION_ERROR")  # read and judged, not refused for size
    over = {"login": "a@fidus.example", "password": "p", "pad": "x" * MiB}
    assert_error(await client.post(f"{API}/auth/login", json=over), 413, "PAYLOAD_TOO_LARGE")

    # An upload may be larger than the JSON limit, up to the document limit (3 MiB here).
    pdf = b"%PDF-1.7\n" + b"x" * (3 * MiB // 2)
    uploaded = await client.post(f"{API}/client/documents", headers=headers,
                                 data={"document_type": "passport"},
                                 files={"file": ("big.pdf", pdf, "application/pdf")})
    assert uploaded.status_code == 201, uploaded.text
    huge = b"%PDF-1.7\n" + b"x" * (4 * MiB)
    refused = await client.post(f"{API}/client/documents", headers=headers,
                                data={"document_type": "passport"},
                                files={"file": ("huge.pdf", huge, "application/pdf")})
    assert_error(refused, 413, "PAYLOAD_TOO_LARGE")
