"""The application factory. The database is opened in the lifespan and closed after it."""

from __future__ import annotations

import logging
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse

from backend.api.errors import install_error_handlers
from backend.api.metrics import install_metrics
from backend.api.routes import API_PREFIX, ROUTERS
from backend.db.connection import ConnectionManager
from backend.log import configure_logging, request_id_var
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
            yield {}
        finally:
            await manager.close()

    app = FastAPI(
        title="Fidus API",
        version="1.0.0",
        description="Admin and client API of the Fidus investment-management platform.",
        lifespan=lifespan,
    )
    app.state.settings = settings
    install_error_handlers(app)
    install_metrics(app)
    for router in ROUTERS:
        app.include_router(router, prefix=API_PREFIX)

    @app.middleware("http")
    async def request_id(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        rid = request.headers.get("x-request-id") or uuid.uuid4().hex
        token = request_id_var.set(rid[:64])
        try:
            response = await call_next(request)
        finally:
            request_id_var.reset(token)
        response.headers["X-Request-ID"] = rid[:64]
        return response

    @app.get("/health/live", tags=["health"], summary="The process is up")
    async def live() -> dict[str, str]:
        return {"status": "alive"}

    @app.get(
        "/health",
        tags=["health"],
        summary="Database and sync health",
        responses={503: {"description": "The database is unreachable"}},
    )
    async def health(request: Request) -> JSONResponse:
        manager: ConnectionManager = request.app.state.connection
        report = await manager.health()
        status = 503 if report.status == "unhealthy" else 200
        return JSONResponse(status_code=status, content=report.as_dict())

    return app


def default_startup_steps() -> list[StartupStep]:
    from backend.api.startup import bootstrap_admin, demo_seed, funds_health, sync_indexes
    from backend.sync.health import sync_health_startup_step

    return [sync_indexes, demo_seed, bootstrap_admin, sync_health_startup_step, funds_health]
