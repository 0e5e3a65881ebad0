"""The bridge's HTTP API.

Access: every route needs the `X-API-Key` header except `GET /health/live`, which says only
that the process runs. The optional IP allowlist (`BRIDGE_ALLOWED_IPS`) applies to every
route, liveness included. TLS is terminated by a reverse proxy in front of the bridge (see
setup_instructions.md); the bridge itself listens on localhost by default.

Errors, all of them (validation, 404, 405 included), are answered as
`{"error": {"code": "...", "message": "...", "details": ...}}` and never carry a traceback.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Path, Query, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import AwareDatetime, SecretStr
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mt5_bridge_service import constants as mt5
from mt5_bridge_service import models
from mt5_bridge_service.errors import BridgeError, ConfigurationError, IpNotAllowed, Unauthorized
from mt5_bridge_service.gateway import TerminalGateway
from mt5_bridge_service.settings import DEV_API_KEY, BridgeSettings, IpNetwork
from mt5_bridge_service.simulated import SimulatedTerminal
from mt5_bridge_service.terminal import MetaTrader5Terminal, Terminal

logger = logging.getLogger("mt5_bridge_service")

API_KEY_HEADER = "X-API-Key"
MAX_DEALS_PAGE = 1000
LoginPath = Annotated[int, Path(gt=0, lt=2**63, description="The MT5 account number")]


def build_terminal(settings: BridgeSettings) -> Terminal:
    if settings.terminal == "metatrader5":
        return MetaTrader5Terminal()
    return SimulatedTerminal(
        settings.sim_seed,
        latency_seconds=settings.sim_latency_seconds,
        broker_utc_offset_hours=settings.broker_utc_offset_hours,
        deposits_file=settings.sim_deposits_file,
    )


def _error_response(
    status_code: int, code: str, message: str, details: Any = None, headers: Any = None
) -> JSONResponse:
    body = models.ErrorBody(error=models.ErrorDetail(code=code, message=message, details=details))
    return JSONResponse(
        status_code=status_code, content=jsonable_encoder(body.model_dump()), headers=headers
    )


# --- client address and IP allowlist -----------------------------------------------------


def client_address(
    scope: Scope, trusted_proxies: list[IpNetwork]
) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """The caller's address: the peer, or, when the peer is a trusted proxy, the right-most
    address in X-Forwarded-For that is not itself a trusted proxy."""
    client = scope.get("client")
    if not client:
        return None
    try:
        address = ipaddress.ip_address(client[0])
    except ValueError:
        return None
    if not any(address in net for net in trusted_proxies):
        return address
    forwarded = [
        value.decode("latin-1")
        for name, value in scope.get("headers", [])
        if name.lower() == b"x-forwarded-for"
    ]
    hops = [hop.strip() for line in forwarded for hop in line.split(",") if hop.strip()]
    for hop in reversed(hops):
        try:
            candidate = ipaddress.ip_address(hop)
        except ValueError:
            return None
        if not any(candidate in net for net in trusted_proxies):
            return candidate
    return address


class AllowlistAndErrorsMiddleware:
    """Outermost layer: refuses callers outside the allowlist before any routing, and turns an
    unexpected exception into the error envelope (the traceback goes to the log only)."""

    def __init__(self, app: ASGIApp, *, settings: BridgeSettings) -> None:
        self.app = app
        self.settings = settings

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        allowed = self.settings.allowed_ips
        if allowed:
            address = client_address(scope, self.settings.trusted_proxies)
            if address is None or not any(address in net for net in allowed):
                logger.warning("Refused request from %s: not in BRIDGE_ALLOWED_IPS", address)
                error = IpNotAllowed("this address is not allowed to call the bridge")
                response = _error_response(error.status_code, error.code, error.message)
                await response(scope, receive, send)
                return

        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception:
            logger.exception("Unexpected error on %s %s", scope.get("method"), scope.get("path"))
            if started:
                raise
            response = _error_response(500, "INTERNAL_ERROR", "unexpected error in the bridge")
            await response(scope, receive, send)


# --- dependencies ------------------------------------------------------------------------


def _digest(value: str) -> bytes:
    return hashlib.sha256(value.encode()).digest()


def key_matches(provided: str, accepted: list[SecretStr]) -> bool:
    """Constant-time check against every accepted key (two during a rotation).

    Comparing digests keeps the time independent of the keys' lengths, and the loop never
    stops early, so timing reveals neither which key matched nor how much of one.
    """
    provided_digest = _digest(provided)
    matched = False
    for key in accepted:
        matched |= hmac.compare_digest(provided_digest, _digest(key.get_secret_value()))
    return matched


def require_api_key(request: Request) -> None:
    settings: BridgeSettings = request.app.state.settings
    provided = request.headers.get(API_KEY_HEADER)
    if not provided:
        raise Unauthorized(f"missing {API_KEY_HEADER} header")
    if not key_matches(provided, settings.api_keys):
        logger.warning("Refused request with an invalid API key from %s", request.client)
        raise Unauthorized("invalid API key")


def get_gateway(request: Request) -> TerminalGateway:
    gateway: TerminalGateway = request.app.state.gateway
    return gateway


GatewayDep = Annotated[TerminalGateway, Depends(get_gateway)]


# --- routes ------------------------------------------------------------------------------

public = APIRouter()
protected = APIRouter(dependencies=[Depends(require_api_key)])


@public.get("/health/live", response_model=models.Liveness)
async def live() -> models.Liveness:
    return models.Liveness()


@protected.get("/health", response_model=models.Health)
async def health(gateway: GatewayDep) -> models.Health:
    snapshot = await gateway.health()
    return models.Health(
        status="ok" if snapshot.connected else "degraded",
        terminal="simulated" if snapshot.terminal == "simulated" else "metatrader5",
        terminal_connected=snapshot.connected,
        terminal_build=snapshot.build,
        logins=snapshot.logins,
        broker_utc_offset_seconds=snapshot.broker_utc_offset_seconds,
    )


@protected.get("/accounts/{login}", response_model=models.Account)
async def account(login: LoginPath, gateway: GatewayDep) -> models.Account:
    info = await gateway.account(login)
    as_of = datetime.now(UTC)
    digits = info.currency_digits
    return models.Account(
        login=info.login,
        balance=models.money(info.balance, digits),
        equity=models.money(info.equity, digits),
        margin=models.money(info.margin, digits),
        margin_free=models.money(info.margin_free, digits),
        margin_level=models.money(info.margin_level, 2) if info.margin else None,
        profit=models.money(info.profit, digits),
        currency=info.currency,
        leverage=info.leverage,
        server=info.server,
        name=info.name,
        as_of=as_of,
    )


@protected.get("/accounts/{login}/positions", response_model=models.Positions)
async def positions(login: LoginPath, gateway: GatewayDep) -> models.Positions:
    info, found = await gateway.positions(login)
    digits = info.currency_digits
    return models.Positions(
        login=login,
        positions=[
            models.Position(
                ticket=p.record.ticket,
                symbol=p.record.symbol,
                type=p.record.type,
                volume=models.exact(p.record.volume),
                price_open=models.exact(p.record.price_open),
                price_current=models.exact(p.record.price_current),
                profit=models.money(p.record.profit, digits),
                swap=models.money(p.record.swap, digits),
                time=p.time,
            )
            for p in found
        ],
    )


@protected.get("/accounts/{login}/deals", response_model=models.Deals)
async def deals(
    login: LoginPath,
    gateway: GatewayDep,
    start: Annotated[AwareDatetime, Query(alias="from", description="UTC, inclusive")],
    end: Annotated[
        AwareDatetime | None, Query(alias="to", description="UTC, exclusive; default now")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_DEALS_PAGE)] = 500,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> models.Deals:
    start = start.astimezone(UTC)
    end = (end or datetime.now(UTC)).astimezone(UTC)
    if start >= end:
        raise RequestValidationError(
            [
                {
                    "type": "value_error",
                    "loc": ["query", "from"],
                    "msg": "'from' must be earlier than 'to'",
                    "input": start.isoformat(),
                }
            ]
        )
    info, found = await gateway.deals(login, start=start, end=end)
    digits = info.currency_digits
    page = found[offset : offset + limit]
    return models.Deals(
        login=login,
        from_=start,
        to=end,
        total=len(found),
        offset=offset,
        limit=limit,
        deals=[
            models.Deal(
                ticket=d.record.ticket,
                order=d.record.order,
                position_id=d.record.position_id,
                time=d.time,
                type=d.record.type,
                type_name=mt5.DEAL_TYPE_NAMES.get(d.record.type, f"UNKNOWN_{d.record.type}"),
                entry=d.record.entry,
                symbol=d.record.symbol,
                volume=models.exact(d.record.volume),
                price=models.exact(d.record.price),
                profit=models.money(d.record.profit, digits),
                commission=models.money(d.record.commission, digits),
                swap=models.money(d.record.swap, digits),
                fee=models.money(d.record.fee, digits),
                comment=d.record.comment,
                magic=d.record.magic,
            )
            for d in page
        ],
    )


# --- error handlers ----------------------------------------------------------------------


async def _bridge_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, BridgeError)
    return _error_response(exc.status_code, exc.code, exc.message, exc.details)


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    details = [
        {"loc": list(err.get("loc", ())), "msg": err.get("msg", ""), "type": err.get("type", "")}
        for err in exc.errors()
    ]
    return _error_response(422, "VALIDATION_ERROR", "the request is not valid", details)


_HTTP_CODES = {404: "NOT_FOUND", 405: "METHOD_NOT_ALLOWED"}


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    code = _HTTP_CODES.get(exc.status_code, f"HTTP_{exc.status_code}")
    return _error_response(exc.status_code, code, str(exc.detail), headers=exc.headers)


# --- the factory -------------------------------------------------------------------------


def create_app(settings: BridgeSettings | None = None, terminal: Terminal | None = None) -> FastAPI:
    """Build the bridge. Tests pass their own settings and a `SimulatedTerminal`.

    Raises ConfigurationError when the settings and terminal must not run together.
    """
    settings = settings or BridgeSettings()
    if terminal is None:
        terminal = build_terminal(settings)
    if settings.env == "production" and terminal.name == "simulated":
        raise ConfigurationError(
            "the simulated terminal is refused when BRIDGE_ENV=production "
            "(set BRIDGE_TERMINAL=metatrader5)"
        )
    gateway = TerminalGateway(terminal, settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        logger.info(
            "MT5 bridge starting: terminal=%s env=%s listen=%s:%d allowlist=%s",
            terminal.name,
            settings.env,
            settings.host,
            settings.port,
            ",".join(str(n) for n in settings.allowed_ips) or "off",
        )
        if any(k.get_secret_value() == DEV_API_KEY for k in settings.api_keys):
            logger.warning("The development API key is accepted; never expose this bridge")
        await gateway.start()
        try:
            yield
        finally:
            await gateway.stop()
            logger.info("MT5 bridge stopped")

    app = FastAPI(
        title="Fidus MT5 bridge",
        version="1.0.0",
        lifespan=lifespan,
        responses={
            401: {"model": models.ErrorBody},
            403: {"model": models.ErrorBody},
            404: {"model": models.ErrorBody},
            422: {"model": models.ErrorBody},
            502: {"model": models.ErrorBody},
            503: {"model": models.ErrorBody},
        },
    )
    app.state.settings = settings
    app.state.gateway = gateway
    app.include_router(public)
    app.include_router(protected)
    app.add_exception_handler(BridgeError, _bridge_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_middleware(AllowlistAndErrorsMiddleware, settings=settings)
    return app
