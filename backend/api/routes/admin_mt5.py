"""Admin: MT5 account mappings. No response carries the investor password in any form."""

from __future__ import annotations

from bson import ObjectId
from fastapi import APIRouter, Response, status

from backend.api.deps import (
    AdminUser,
    FundCodeQuery,
    IdempotencyKeyHeader,
    ObjectIdPath,
    ObjectIdQuery,
    PageDep,
    ServicesDep,
)
from backend.api.schemas import PageOf, signed_in
from backend.models.mt5_accounts import (
    Mt5AccountCreate,
    Mt5AccountRead,
    Mt5AccountUpdate,
    SyncStatus,
)
from backend.models.mt5_deals import Mt5DealRead
from backend.models.mt5_equity_history import Mt5EquityPointRead

router = APIRouter(prefix="/admin/mt5/accounts", tags=["admin: MT5"])

AccountKey = ObjectIdPath


@router.get(
    "",
    summary="MT5 account mappings, filtered by client, fund and sync status; newest first",
    response_model=PageOf[Mt5AccountRead],
    responses=signed_in(),
)
async def list_mappings(
    admin: AdminUser,
    services: ServicesDep,
    pagination: PageDep,
    client_id: ObjectIdQuery = None,
    fund_code: FundCodeQuery = None,
    sync_status: SyncStatus | None = None,
) -> PageOf[Mt5AccountRead]:
    page = await services.mt5.search(
        client_id=ObjectId(client_id) if client_id else None, fund_code=fund_code,
        sync_status=sync_status.value if sync_status else None,
        page=pagination.page, page_size=pagination.page_size)
    return PageOf[Mt5AccountRead].of(page, Mt5AccountRead.model_validate)


@router.post(
    "",
    summary="Map an MT5 account to a client and fund (the password is stored encrypted); the "
            "same Idempotency-Key returns the first mapping (200)",
    status_code=status.HTTP_201_CREATED,
    response_model=Mt5AccountRead,
    responses={200: {"model": Mt5AccountRead,
                     "description": "Already mapped under this Idempotency-Key: the first one"},
               **signed_in(409)},
)
async def create_mapping(body: Mt5AccountCreate, admin: AdminUser, services: ServicesDep,
                         response: Response,
                         idempotency_key: IdempotencyKeyHeader = None) -> Mt5AccountRead:
    result = await services.mt5.create_mapping_once(body, actor=admin.actor,
                                                    idempotency_key=idempotency_key)
    if not result.created:
        response.status_code = status.HTTP_200_OK
    return Mt5AccountRead.model_validate(result.item)


@router.get(
    "/{account_id}",
    summary="One mapping with its last synced snapshot",
    response_model=Mt5AccountRead,
    responses=signed_in(404),
)
async def get_mapping(account_id: AccountKey, admin: AdminUser,
                      services: ServicesDep) -> Mt5AccountRead:
    return Mt5AccountRead.model_validate(await services.mt5.get(account_id))


@router.patch(
    "/{account_id}",
    summary="Change a mapping (a new investor password replaces the stored one)",
    response_model=Mt5AccountRead,
    responses=signed_in(404, 409),
)
async def update_mapping(account_id: AccountKey, body: Mt5AccountUpdate, admin: AdminUser,
                         services: ServicesDep) -> Mt5AccountRead:
    return Mt5AccountRead.model_validate(
        await services.mt5.update_mapping(account_id, body, actor=admin.actor))


@router.get(
    "/{account_id}/equity",
    summary="The account's stored daily equity points (the day's last sync); newest day first",
    response_model=PageOf[Mt5EquityPointRead],
    responses=signed_in(404),
)
async def equity_history(account_id: AccountKey, admin: AdminUser, services: ServicesDep,
                         pagination: PageDep) -> PageOf[Mt5EquityPointRead]:
    page = await services.mt5.equity_history(account_id, page=pagination.page,
                                             page_size=pagination.page_size)
    return PageOf[Mt5EquityPointRead].of(page, Mt5EquityPointRead.model_validate)


@router.get(
    "/{account_id}/deals",
    summary="The account's stored MT5 deals (trades, deposits, withdrawals); newest first",
    response_model=PageOf[Mt5DealRead],
    responses=signed_in(404),
)
async def deal_history(account_id: AccountKey, admin: AdminUser, services: ServicesDep,
                       pagination: PageDep) -> PageOf[Mt5DealRead]:
    page = await services.mt5.deal_history(account_id, page=pagination.page,
                                           page_size=pagination.page_size)
    return PageOf[Mt5DealRead].of(page, Mt5DealRead.model_validate)
