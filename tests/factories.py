"""Test data factories: one place builds valid users, investments and mappings."""

from __future__ import annotations

import itertools
from datetime import date
from decimal import Decimal
from typing import Any

from bson import ObjectId
from pydantic import SecretStr

from backend.models.investments import InvestmentCreate
from backend.models.mt5_accounts import Mt5AccountCreate
from backend.models.users import KycStatus, User, UserCreate, UserType
from backend.services import Actor, Services

_counter = itertools.count(1)
PASSWORD = "correct-horse-battery"
ADMIN = Actor.user(ObjectId("64b000000000000000000001"), "admin")


def user_create(**overrides: Any) -> UserCreate:
    n = next(_counter)
    values: dict[str, Any] = {
        "email": f"client{n}@fidus.example",
        "username": f"client{n}",
        "password": SecretStr(PASSWORD),
        "first_name": "Ada",
        "last_name": f"Client{n}",
    }
    values.update(overrides)
    return UserCreate(**values)


async def make_user(services: Services, *, kyc: KycStatus | None = None,
                    user_type: UserType = UserType.CLIENT, **overrides: Any) -> User:
    user = await services.users.create_user(user_create(user_type=user_type, **overrides),
                                            actor=ADMIN)
    if kyc is not None and kyc is not KycStatus.PENDING:
        user = await services.users.set_kyc(user.id, kyc, actor=ADMIN,  # type: ignore[arg-type]
                                            reason="documents checked")
    return user


def investment_create(client: User, **overrides: Any) -> InvestmentCreate:
    values: dict[str, Any] = {
        "client_id": client.id,
        "fund_code": "CORE",
        "principal_amount": Decimal("10000.00"),
        "currency": "USD",
        "deposit_date": date(2026, 11, 2),
    }
    values.update(overrides)
    return InvestmentCreate(**values)


def mt5_create(client: User, **overrides: Any) -> Mt5AccountCreate:
    n = next(_counter)
    values: dict[str, Any] = {
        "account_id": f"MT5-{n:05d}",
        "client_id": client.id,
        "fund_code": "CORE",
        "mt5_login": 80000000 + n,
        "broker_code": "MEXATLANTIC",
        "server": "MEXAtlantic-Real",
        "investor_password": SecretStr("investor-pass-1"),
        "currency": "USD",
    }
    values.update(overrides)
    return Mt5AccountCreate(**values)
