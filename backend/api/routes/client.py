"""Client routes: the signed-in client's own data and nothing else.

Every lookup is scoped to the signed-in client; an id that is not the client's answers 404,
exactly as an id that does not exist, so ids cannot be probed.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, File, Form, Response, UploadFile, status

from backend.api.deps import ClientUser, IdempotencyKeyHeader, ObjectIdPath, PageDep, ServicesDep
from backend.api.routes.admin_documents import DOWNLOAD_CONTENT, attachment
from backend.api.schemas import Mt5AccountSummary, PageOf, signed_in
from backend.api.statements import (
    STATEMENT_CONTENT,
    FormatQuery,
    PeriodDep,
    StatementFormat,
    statement_response,
)
from backend.errors import PayloadTooLarge
from backend.models.documents import DocumentRead, DocumentType
from backend.models.investments import InvestmentRead
from backend.models.ledger_entries import LedgerEntryRead
from backend.models.schedule_items import ScheduleItemRead, ScheduleRead
from backend.models.users import ProfileUpdate, UserRead
from backend.reports.performance import PerformanceRead, performance_read
from backend.reports.statements import StatementRead, statement_read

router = APIRouter(prefix="/client", tags=["client"])



@router.get(
    "/profile",
    summary="My profile",
    response_model=UserRead,
    responses=signed_in(),
)
async def my_profile(client: ClientUser) -> UserRead:
    return UserRead.model_validate(client.user)


@router.patch(
    "/profile",
    summary="Change my name or phone (e-mail, username and status are changed by the fund)",
    response_model=UserRead,
    responses=signed_in(409),
)
async def update_my_profile(body: ProfileUpdate, client: ClientUser,
                            services: ServicesDep) -> UserRead:
    return UserRead.model_validate(await services.users.update_profile(client.user, body))


@router.get(
    "/investments",
    summary="My investments with current value, gain and return; newest first",
    response_model=PageOf[InvestmentRead],
    responses=signed_in(),
)
async def my_investments(client: ClientUser, services: ServicesDep,
                         pagination: PageDep) -> PageOf[InvestmentRead]:
    page = await services.investments.search(
        client_id=client.user.id, page=pagination.page, page_size=pagination.page_size)
    return PageOf[InvestmentRead].of(page, InvestmentRead.model_validate)


@router.get(
    "/investments/{investment_id}",
    summary="One of my investments",
    response_model=InvestmentRead,
    responses=signed_in(404),
)
async def my_investment(
    investment_id: ObjectIdPath,
    client: ClientUser,
    services: ServicesDep,
) -> InvestmentRead:
    return InvestmentRead.model_validate(
        await services.investments.get_for_client(investment_id, client.user.id))  # type: ignore[arg-type]


@router.get(
    "/investments/{investment_id}/schedule",
    summary="The payment schedule of one of my investments",
    response_model=ScheduleRead,
    responses=signed_in(404),
)
async def my_schedule(investment_id: ObjectIdPath, client: ClientUser,
                      services: ServicesDep) -> ScheduleRead:
    investment = await services.investments.get_for_client(investment_id, client.user.id)  # type: ignore[arg-type]
    return await services.contracts.schedule_of(investment)


@router.post(
    "/investments/{investment_id}/redemption",
    summary="Ask for my principal back: refused before maturity (409 MINIMUM_HOLD); from "
            "maturity the principal is a due item of the schedule",
    response_model=ScheduleItemRead,
    responses=signed_in(404, 409),
)
async def request_redemption(investment_id: ObjectIdPath, client: ClientUser,
                             services: ServicesDep) -> ScheduleItemRead:
    investment = await services.investments.get_for_client(investment_id, client.user.id)  # type: ignore[arg-type]
    item = await services.contracts.request_redemption(investment, actor=client.actor)
    return ScheduleItemRead.model_validate(item)


@router.get(
    "/ledger",
    summary="My ledger: every movement of money between me and the funds, oldest first",
    response_model=PageOf[LedgerEntryRead],
    responses=signed_in(),
)
async def my_ledger(client: ClientUser, services: ServicesDep,
                    pagination: PageDep) -> PageOf[LedgerEntryRead]:
    page = await services.contracts.ledger_page(
        client_id=client.user.id, page=pagination.page, page_size=pagination.page_size)
    return PageOf[LedgerEntryRead].of(page, LedgerEntryRead.model_validate)


@router.get(
    "/statement",
    summary="My statement for a period (period=2026-10, 2026-Q3 or 2026; or from and to): "
            "contractual balances, flows, interest accrued, actual values, returns and the "
            "next payouts, as JSON, CSV or PDF",
    response_model=StatementRead,
    responses={**STATEMENT_CONTENT, **signed_in(422)},
)
async def my_statement(client: ClientUser, services: ServicesDep, period: PeriodDep,
                       format: FormatQuery = StatementFormat.JSON) -> Response:
    statement = await services.statements.statement(client.user.id, period)  # type: ignore[arg-type]
    return statement_response(statement_read(statement), format)


@router.get(
    "/performance",
    summary="My performance, per investment and in total: contractual and actual value, gain, "
            "time- and money-weighted returns, and the value at each month's end",
    response_model=PerformanceRead,
    responses=signed_in(),
)
async def my_performance(client: ClientUser, services: ServicesDep) -> PerformanceRead:
    lines, total = await services.statements.performance(client.user.id)  # type: ignore[arg-type]
    return performance_read(lines, total)


@router.get(
    "/mt5-accounts",
    summary="My MT5 accounts: balance, equity and profit at the last sync",
    response_model=list[Mt5AccountSummary],
    responses=signed_in(),
)
async def my_mt5_accounts(client: ClientUser,
                          services: ServicesDep) -> list[Mt5AccountSummary]:
    accounts = await services.mt5.for_client(client.user.id)  # type: ignore[arg-type]
    return [Mt5AccountSummary.model_validate(account) for account in accounts
            if account.is_active]


@router.get(
    "/documents",
    summary="My KYC documents and their review status; newest first",
    response_model=list[DocumentRead],
    responses=signed_in(),
)
async def my_documents(client: ClientUser, services: ServicesDep) -> list[DocumentRead]:
    documents = await services.documents.for_user(client.user.id)  # type: ignore[arg-type]
    return [DocumentRead.model_validate(document) for document in documents]


@router.post(
    "/documents",
    summary="Upload a KYC document (PDF, JPEG or PNG, at most DOCUMENT_MAX_BYTES); the same "
            "Idempotency-Key returns the first upload (200)",
    status_code=status.HTTP_201_CREATED,
    response_model=DocumentRead,
    responses={200: {"model": DocumentRead,
                     "description": "Already uploaded under this Idempotency-Key: the first "
                                    "one"},
               **signed_in(409, 413, 415)},
)
async def upload_document(
    client: ClientUser,
    services: ServicesDep,
    response: Response,
    document_type: Annotated[DocumentType, Form()],
    file: Annotated[UploadFile, File(description="the scanned document")],
    idempotency_key: IdempotencyKeyHeader = None,
) -> DocumentRead:
    limit = services.settings.document_max_bytes
    if file.size is not None and file.size > limit:
        raise PayloadTooLarge(f"the file is larger than {limit} bytes",
                              details={"max_bytes": limit})
    # Read one byte past the limit: enough to refuse, never the whole of a huge upload.
    content = await file.read(limit + 1)
    mime_type = (file.content_type or "").split(";", 1)[0].strip().lower()
    result = await services.documents.upload_once(
        client.user, document_type=document_type, filename=file.filename or "upload",
        mime_type=mime_type, content=content, idempotency_key=idempotency_key)
    if not result.created:
        response.status_code = status.HTTP_200_OK
    return DocumentRead.model_validate(result.item)


@router.get(
    "/documents/{document_id}/content",
    summary="Download one of my documents",
    response_class=Response,
    responses={200: {"content": DOWNLOAD_CONTENT, "description": "The file"},
               **signed_in(404)},
)
async def my_document_content(
    document_id: ObjectIdPath,
    client: ClientUser,
    services: ServicesDep,
) -> Response:
    document = await services.documents.get_for_user(document_id, client.user)
    content = await services.documents.download(document)
    return attachment(content, mime_type=document.mime_type,
                      filename=document.original_filename)
