"""The one place where exceptions become HTTP responses.

Every error is answered as `{"error": {"code", "message", "details"}}`. Known conditions map
to their status; anything unexpected is logged with its traceback and answered as a bare 500
envelope with no internals.

A driver error that escaped the repositories' mapping is still the database failing to answer
as expected, never the request's fault: it is answered 503 `DATABASE_UNAVAILABLE` (retry later,
with the same Idempotency-Key for a write), and its traceback is logged, since the mapping in
`backend/repositories/_errors.py` should have known it.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from backend.db.connection import DriverError
from backend.errors import DatabaseUnavailable, FidusError, Throttled

logger = logging.getLogger(__name__)

RETRY_AFTER_SECONDS = 5

_HTTP_CODES = {
    400: "BAD_REQUEST",
    401: "UNAUTHENTICATED",
    403: "FORBIDDEN",
    404: "NOT_FOUND",
    405: "METHOD_NOT_ALLOWED",
    406: "NOT_ACCEPTABLE",
    409: "CONFLICT",
    413: "PAYLOAD_TOO_LARGE",
    415: "UNSUPPORTED_MEDIA_TYPE",
    422: "VALIDATION_ERROR",
    429: "THROTTLED",
}


def error_body(code: str, message: str, details: Any = None) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "details": jsonable_encoder(details)}}


def _respond(
    status: int, code: str, message: str, details: Any = None, headers: dict[str, str] | None = None
) -> JSONResponse:
    return JSONResponse(status_code=status, content=error_body(code, message, details),
                        headers=headers)


async def _fidus_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, FidusError)
    headers = None
    if isinstance(exc, DatabaseUnavailable):
        headers = {"Retry-After": str(RETRY_AFTER_SECONDS)}
        logger.error("database unavailable: %s", exc.message)
    elif exc.http_status >= 500:
        logger.error("%s: %s", exc.code, exc.message)
    if isinstance(exc, Throttled):
        headers = {"Retry-After": str(exc.retry_after_seconds)}
    return _respond(exc.http_status, exc.code, exc.message, exc.details, headers)


_HTTP_METHODS = frozenset({"get", "put", "post", "delete", "options", "head", "patch", "trace"})


def _operation_pattern(template: str, operation: dict[str, Any]) -> re.Pattern[str]:
    """The paths an operation serves: its template with each path parameter's own pattern."""
    shapes = {parameter["name"]: parameter.get("schema", {}).get("pattern", "^[^/]+$")
              for parameter in operation.get("parameters", []) if parameter.get("in") == "path"}
    parts = re.split(r"\{([^/]+?)\}", template)
    regex = "".join(re.escape(part) if index % 2 == 0
                    else "(?:" + shapes.get(part, "^[^/]+$").strip("^$") + ")"
                    for index, part in enumerate(parts))
    return re.compile(regex)


def _method_table(app: Any) -> list[tuple[re.Pattern[str], str]]:
    table: list[tuple[re.Pattern[str], str]] | None = getattr(app.state, "method_table", None)
    if table is None:
        table = [(_operation_pattern(template, operation), method.upper())
                 for template, item in app.openapi().get("paths", {}).items()
                 for method, operation in item.items() if method in _HTTP_METHODS]
        app.state.method_table = table
    return table


def allowed_methods(request: Request, fallback: str | None) -> str | None:
    """Every method the API document serves at this path. Starlette's own 405 names only the
    first route that matched the path, and FastAPI has one route per method."""
    methods = {method for pattern, method in _method_table(request.app)
               if pattern.fullmatch(request.url.path)}
    return ", ".join(sorted(methods)) if methods else fallback


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    code = _HTTP_CODES.get(exc.status_code, "HTTP_ERROR")
    message = exc.detail if isinstance(exc.detail, str) else code.replace("_", " ").lower()
    headers = dict(exc.headers or {})
    if exc.status_code == 405:
        allow = allowed_methods(request, headers.get("Allow"))
        if allow:
            headers["Allow"] = allow
    return _respond(exc.status_code, code, message, None, headers or None)


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    details = [
        {"loc": list(err.get("loc", ())), "msg": err.get("msg"), "type": err.get("type")}
        for err in exc.errors()
    ]
    return _respond(422, "VALIDATION_ERROR", "the request is not valid", details)


async def _driver_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, DriverError)
    logger.error("unmapped database error on %s %s", request.method, request.url.path,
                 exc_info=exc)
    return _respond(503, DatabaseUnavailable.code, "the database is unavailable; retry later",
                    {"kind": type(exc).__name__}, {"Retry-After": str(RETRY_AFTER_SECONDS)})


async def _unexpected_error(request: Request, exc: Exception) -> JSONResponse:
    from backend.api.middleware import security_headers

    logger.exception("unexpected error on %s %s", request.method, request.url.path)
    # Starlette sends this one outside every middleware, so its headers are set here.
    settings = getattr(request.app.state, "settings", None)
    headers = dict(security_headers(request.url.path, 500,
                                    hsts=bool(settings and settings.is_production)))
    return _respond(500, "INTERNAL_ERROR", "an unexpected error occurred", headers=headers)


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(FidusError, _fidus_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(DriverError, _driver_error)
    app.add_exception_handler(Exception, _unexpected_error)
