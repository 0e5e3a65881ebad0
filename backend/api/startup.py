"""Start-up steps run by the app's lifespan once the database is open."""

from __future__ import annotations

import logging
import re
import secrets

from fastapi import FastAPI
from pydantic import SecretStr

from backend.api.deps import services_for
from backend.db import index_sync
from backend.db.connection import ConnectionManager
from backend.errors import DuplicateEntity
from backend.models.users import KycStatus, UserCreate, UserType
from backend.services import Actor
from backend.settings import Environment

logger = logging.getLogger(__name__)


async def sync_indexes(app: FastAPI, manager: ConnectionManager) -> None:
    """Development and tests only: production's (and staging's) indexes are created by
    `make indexes`, a reviewed step, never as a side effect of starting a server."""
    if app.state.settings.is_production:
        return
    report = await index_sync.sync(manager.database)
    for error in report.errors:
        logger.warning("index sync: %s", error)


def _username_from(email: str) -> str:
    local = re.sub(r"[^a-z0-9_.-]", "", email.split("@", 1)[0].lower()) or "admin"
    if not local[0].isalnum():
        local = "a" + local
    return (local + "-admin")[:32] if len(local) < 3 else local[:32]


async def bootstrap_admin(app: FastAPI, manager: ConnectionManager) -> None:
    """The first admin, from FIDUS_BOOTSTRAP_ADMIN_EMAIL/PASSWORD, when no admin exists."""
    settings = app.state.settings
    email, password = (settings.fidus_bootstrap_admin_email,
                       settings.fidus_bootstrap_admin_password)
    if not email or password is None:
        return
    services = services_for(app)
    if await services.users.any_admin():
        return
    username = _username_from(email)
    if await services.users.by_login(username) is not None:
        username = f"admin-{secrets.token_hex(4)}"
    account = UserCreate(email=email, username=username,
                         password=SecretStr(password.get_secret_value()),
                         first_name="Fidus", last_name="Administrator",
                         user_type=UserType.ADMIN)
    try:
        admin = await services.users.create_user(account, actor=Actor.system(),
                                                 kyc_status=KycStatus.APPROVED)
    except DuplicateEntity:
        # Another process started at the same moment and created it first.
        logger.info("bootstrap admin already created by another process")
        return
    logger.warning("created the bootstrap admin %s (user id %s)", admin.email, admin.id)



async def demo_seed(app: FastAPI, manager: ConnectionManager) -> None:
    """Development only: the demo data set (`backend.ops.seed`, state demo) when the database
    holds no user, with its logins printed. Skipped when a bootstrap admin is configured:
    those credentials are the operator's choice and the seed would create another admin."""
    settings = app.state.settings
    if settings.fidus_env is not Environment.DEVELOPMENT or settings.fidus_bootstrap_admin_email:
        return
    services = services_for(app)
    if await services.users.any_user():
        return
    from backend.ops._cli import CommandRefused
    from backend.ops.seed import seed

    try:
        report = await seed(manager.database, settings, state="demo")
    except CommandRefused as refused:
        logger.info("demo seed skipped: %s", refused)
        return
    logger.warning("seeded the demo data set into the empty development database")
    for email, password, role in report.logins:
        logger.warning("demo login: %s / %s (%s)", email, password, role)


async def funds_health(app: FastAPI, manager: ConnectionManager) -> None:
    """`/health` turns degraded while a payout is overdue or a fund's MT5 equity covers less
    than its obligations (`backend.services.fund_overview`)."""
    from backend.services.fund_overview import funds_health_check

    manager.degraded_checks.append(funds_health_check(manager.settings))
