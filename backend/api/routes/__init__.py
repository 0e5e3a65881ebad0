"""The API's routers, one per area; `ROUTERS` is what the app includes under /api/v1."""

from __future__ import annotations

from fastapi import APIRouter

from backend.api.routes import (
    admin_audit,
    admin_crm,
    admin_documents,
    admin_investments,
    admin_money,
    admin_mt5,
    admin_reconciliation,
    admin_security,
    admin_users,
    auth,
    client,
    funds,
)

API_PREFIX = "/api/v1"

ROUTERS: tuple[APIRouter, ...] = (
    auth.router,
    funds.router,
    admin_users.router,
    admin_security.router,
    admin_investments.router,
    admin_money.router,
    admin_crm.router,
    admin_mt5.router,
    admin_documents.router,
    admin_audit.router,
    admin_reconciliation.router,
    client.router,
)
