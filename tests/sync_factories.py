"""Shared by the sync and reconciliation tests: a simulated bridge in-process, a bridge client
on it, and MT5 mappings of approved clients."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import httpx
from pydantic import SecretStr

from backend.bridge import BridgeClient
from backend.models.mt5_accounts import Mt5Account
from backend.models.users import KycStatus, User
from backend.services import Services
from backend.settings import DEV_BRIDGE_API_KEY
from mt5_bridge_service import BridgeSettings, SimulatedTerminal, create_app
from tests.factories import ADMIN, investment_create, make_user, mt5_create

SEED = 20_250_301
HISTORY_END = datetime(2025, 3, 1, tzinfo=UTC)


def simulator(**options: Any) -> SimulatedTerminal:
    options.setdefault("history_end", HISTORY_END)
    return SimulatedTerminal(options.pop("seed", SEED), **options)


def bridge_transport(sim: SimulatedTerminal) -> httpx.ASGITransport:
    """The bridge app in-process; its terminal is initialized on first use, no lifespan needed."""
    settings = BridgeSettings(env="test", api_keys=[SecretStr(DEV_BRIDGE_API_KEY)])
    return httpx.ASGITransport(app=create_app(settings, sim))


async def _no_sleep(seconds: float) -> None:
    return None


@asynccontextmanager
async def bridge_client(transport: httpx.AsyncBaseTransport) -> AsyncIterator[BridgeClient]:
    async with BridgeClient("http://bridge", DEV_BRIDGE_API_KEY, transport=transport,
                            sleep=_no_sleep) as client:
        yield client


def down_transport() -> httpx.MockTransport:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("[Errno 111] Connection refused", request=request)

    return httpx.MockTransport(refuse)


async def approved_client(services: Services, **overrides: Any) -> User:
    return await make_user(services, kyc=KycStatus.APPROVED, **overrides)


async def mapping(services: Services, client: User, login: int, **overrides: Any
                  ) -> Mt5Account:
    return await services.mt5.create_mapping(
        mt5_create(client, mt5_login=login, server="FidusSim-Server", **overrides), actor=ADMIN)


async def invested_mapping(services: Services, client: User, login: int,
                           principal: Decimal, **overrides: Any) -> Mt5Account:
    """An investment with its MT5 account created and linked in the same step."""
    created = await services.investments.create(
        investment_create(client, principal_amount=principal, **overrides), actor=ADMIN,
        mt5_account=mt5_create(client, mt5_login=login, server="FidusSim-Server"))
    account = await services.mt5.repo.by_login(login)
    assert account is not None and account.investment_id == created.investment.id
    return account
