"""The application factory. The database is opened in the lifespan and closed after it; in
between, the audit relay's timer runs as a background task of the process."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from backend.api.deps import services_for
from backend.api.docs import install_docs
from backend.api.errors import install_error_handlers
from backend.api.metrics import install_metrics
from backend.api.middleware import (
    BodyLimitMiddleware,
    RequestIdMiddleware,
    SecurityHeadersMiddleware,
)
from backend.api.routes import API_PREFIX, ROUTERS
from backend.api.schemas import document_body_answers
from backend.db.connection import ConnectionManager
from backend.log import configure_logging
from backend.services.audit import relay_forever
from backend.settings import Settings, get_settings

logger = logging.getLogger(__name__)

#: Start-up steps run after the database is open (index sync, bootstrap admin, demo seed...).
StartupStep = Callable[[FastAPI, ConnectionManager], Awaitable[None]]


def create_app(
    settings: Settings | None = None,
    *,
    connection: ConnectionManager | None = None,
    startup_steps: list[StartupStep] | None = None,
    configure_logs: bool = True,
) -> FastAPI:
    settings = settings or get_settings()
    if configure_logs:
        configure_logging(level=settings.log_level, json=settings.logs_as_json)
    steps = startup_steps if startup_steps is not None else default_startup_steps()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[dict[str, Any]]:
        manager = connection or ConnectionManager.from_settings(settings)
        if not manager.connected:
            await manager.connect()
        app.state.connection = manager
        try:
            for step in steps:
                await step(app, manager)
            async with _audit_relay(app, settings):
                yield {}
        finally:
            await manager.close()

    app = FastAPI(
        title="Fidus API",
        version="1.0.0",
        description="Admin and client API of the Fidus investment-management platform.",
        lifespan=lifespan,
        docs_url=None,  # install_docs serves both pages without a CDN
        redoc_url=None,
    )
    install_docs(app)
    app.state.settings = settings

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = document_body_answers(FastAPI.openapi(app))
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    install_error_handlers(app)
    install_metrics(app)
    for router in ROUTERS:
        app.include_router(router, prefix=API_PREFIX)

    # The last added runs first: every response (the early 413 included) gets the headers and
    # the request id, and a refused body never reaches a route.
    app.add_middleware(BodyLimitMiddleware, json_max_bytes=settings.request_max_bytes,
                       upload_max_bytes=settings.document_max_bytes)
    app.add_middleware(SecurityHeadersMiddleware, hsts=settings.is_production)
    app.add_middleware(RequestIdMiddleware)

    @app.get("/health/live", tags=["health"], summary="The process is up")
    async def live() -> dict[str, str]:
        return {"status": "alive"}

    @app.get(
        "/health",
        tags=["health"],
        summary="Database, sync and backup health",
        responses={503: {"description": "The database is unreachable"}},
    )
    async def health(request: Request) -> JSONResponse:
        manager: ConnectionManager = request.app.state.connection
        report = await manager.health()
        status = 503 if report.status == "unhealthy" else 200
        return JSONResponse(status_code=status, content=report.as_dict())

    return app


@contextlib.asynccontextmanager
async def _audit_relay(app: FastAPI, settings: Settings) -> AsyncIterator[None]:
    """Copy audit records left in outboxes (their fast path failed) while the app serves.

    Stopping cancels a pass midway, which is safe: a record copied but not yet cleared is found
    already copied by the next pass, here or in another process.
    """
    stop = asyncio.Event()
    task = asyncio.create_task(
        relay_forever(services_for(app).audit,
                      interval_seconds=settings.audit_relay_interval_seconds, stop=stop),
        name="fidus-audit-relay")
    try:
        yield
    finally:
        stop.set()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def default_startup_steps() -> list[StartupStep]:
    from backend.api.startup import bootstrap_admin, demo_seed, funds_health, sync_indexes
    from backend.ops.backup_health import backup_health_startup_step
    from backend.sync.health import sync_health_startup_step

    return [sync_indexes, demo_seed, bootstrap_admin, sync_health_startup_step,
            backup_health_startup_step, funds_health]
