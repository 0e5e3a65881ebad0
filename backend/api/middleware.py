"""ASGI middleware of the API: security headers on every response, and a request-body limit
that answers 413 before a large body is read.

Both are plain ASGI (not `BaseHTTPMiddleware`), so a body is never buffered by them and the
limit counts bytes as they arrive.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from backend.api.errors import error_body
from backend.log import request_id_var

#: A caller's X-Request-ID is kept only in this form (a UUID fits it); anything else is
#: replaced, so logs and audit records never carry a forged or oversized value.
_REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")
#: Room for the multipart envelope (boundaries, part headers, the form fields) around a document.
MULTIPART_OVERHEAD_BYTES = 64 * 1024
HSTS = "max-age=63072000; includeSubDomains"


def request_id_from(header: str | None) -> str:
    """The caller's request id when it is a UUID or a short `[A-Za-z0-9._-]` token, else a
    fresh one."""
    if header is not None and _REQUEST_ID.fullmatch(header):
        return header
    return uuid.uuid4().hex


class RequestIdMiddleware:
    """Every request runs under a request id (logs and audit records carry it) and every
    response names it in `X-Request-ID`."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = next((value for name, value in scope.get("headers", [])
                      if name == b"x-request-id"), None)
        rid = request_id_from(given.decode("latin-1") if given is not None else None)

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [(k, v) for k, v in message.get("headers", [])
                           if k.lower() != b"x-request-id"]
                headers.append((b"x-request-id", rid.encode("ascii")))
                message = {**message, "headers": headers}
            await send(message)

        token = request_id_var.set(rid)
        try:
            await self.app(scope, receive, send_with_id)
        finally:
            request_id_var.reset(token)


def _no_store(path: str) -> bool:
    # Tokens, the signed-in user's own data and every admin view are personal or financial.
    return path.startswith("/api/")


def security_headers(path: str, status: int, *, hsts: bool) -> list[tuple[str, str]]:
    """The headers every response carries (also used by the unexpected-error handler, whose
    responses are sent outside the middleware)."""
    headers = [("X-Content-Type-Options", "nosniff"), ("Referrer-Policy", "no-referrer")]
    if _no_store(path):
        headers.append(("Cache-Control", "no-store"))
    if hsts:
        headers.append(("Strict-Transport-Security", HSTS))
    if status == 401:
        headers.append(("WWW-Authenticate", "Bearer"))
    return headers


class SecurityHeadersMiddleware:
    """Adds `security_headers` to every HTTP response, replacing any value a route set for the
    same header (a route never needs a weaker one)."""

    def __init__(self, app: ASGIApp, *, hsts: bool) -> None:
        self.app = app
        self.hsts = hsts

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope.get("path", "")

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                added = security_headers(path, message["status"], hsts=self.hsts)
                names = {name.lower().encode("latin-1") for name, _ in added}
                raw: Iterable[tuple[bytes, bytes]] = message.get("headers", [])
                kept = [(k, v) for k, v in raw if k.lower() not in names]
                kept.extend((k.lower().encode("latin-1"), v.encode("latin-1"))
                            for k, v in added)
                message = {**message, "headers": kept}
            await send(message)

        await self.app(scope, receive, send_with_headers)


class BodyLimitMiddleware:
    """Refuses a request body over its limit with 413: at once when `Content-Length` says so,
    otherwise as soon as the bytes received pass the limit, never after reading it all.

    Multipart bodies (document uploads) may be as large as the document limit plus the
    multipart envelope; every other body (JSON) has the JSON limit.
    """

    def __init__(self, app: ASGIApp, *, json_max_bytes: int, upload_max_bytes: int) -> None:
        self.app = app
        self.json_max_bytes = json_max_bytes
        self.upload_max_bytes = upload_max_bytes + MULTIPART_OVERHEAD_BYTES

    def _limit(self, scope: Scope) -> int:
        for name, value in scope.get("headers", []):
            if name == b"content-type" and value.lower().startswith(b"multipart/form-data"):
                return self.upload_max_bytes
        return self.json_max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self._limit(scope)
        declared = next((value for name, value in scope.get("headers", [])
                         if name == b"content-length"), None)
        if declared is not None:
            try:
                too_large = int(declared) > limit
            except ValueError:
                too_large = False  # the server refuses a malformed length before we run
            if too_large:
                await _refuse(send, limit)
                return
        received = 0
        exceeded = False
        started = False

        async def counting_receive() -> Message:
            # Past the limit the app is told the client went away, so it stops reading; what
            # it answers to that is replaced by the 413 below.
            nonlocal received, exceeded
            if exceeded:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    exceeded = True
                    return {"type": "http.disconnect"}
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if exceeded and not started:
                return
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counting_receive, guarded_send)
        except Exception:
            if not exceeded:
                raise
        if exceeded and not started:
            await _refuse(send, limit)


def _too_large_message(limit: int) -> str:
    return f"the request body is larger than {limit} bytes"


async def _refuse(send: Send, limit: int) -> None:
    body = json.dumps(error_body("PAYLOAD_TOO_LARGE", _too_large_message(limit),
                                 {"max_bytes": limit})).encode()
    await send({"type": "http.response.start", "status": 413, "headers": [
        (b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
        (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": body})
