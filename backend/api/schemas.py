"""Shapes that exist only at the API: tokens, page envelopes, the error envelope, funds and
statistics. Collection shapes live in `backend.models`."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import date
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, StringConstraints

from backend.models._common import PersonName, Reason, RequestEmail
from backend.models._types import Money, PhoneNumber, UtcDateTime
from backend.models.crm_prospects import ProspectRead
from backend.models.investments import InvestmentRead
from backend.models.mt5_accounts import SyncStatus
from backend.models.users import Password, Username, UserRead

# --- errors ------------------------------------------------------------------------------


class ErrorBody(BaseModel):
    code: str = Field(examples=["FUND_MINIMUM_NOT_MET"])
    message: str = Field(examples=["fund CORE requires at least 10000.00 USD"])
    details: Any = Field(default=None, examples=[{"fund_code": "CORE", "minimum": "10000.00"}])


class ErrorEnvelope(BaseModel):
    """Every error, from validation to an unavailable database, has this shape."""

    error: ErrorBody


_ERROR_DESCRIPTIONS = {
    400: "The request body cannot be read (malformed JSON or multipart)",
    401: "Not signed in, or the session has ended or expired",
    403: "Signed in without the role this route needs",
    404: "No such resource (or not yours to see)",
    409: "A duplicate, or someone else changed the record first",
    413: "The request body or the upload is too large",
    415: "The upload's type is not accepted",
    422: "The request breaks a validation or business rule",
    429: "Too many attempts; see Retry-After",
    502: "An upstream service failed",
    503: "The database is unavailable; see Retry-After",
}
_RETRY_AFTER = {"Retry-After": {"description": "seconds to wait before retrying",
                                "schema": {"type": "string"}}}


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """The `responses=` entry of a route: each status with the error envelope.

    503 is added to every route: any request may arrive while the database is down.
    """
    wanted = sorted({*statuses, 503})
    responses: dict[int | str, dict[str, Any]] = {}
    for status in wanted:
        entry: dict[str, Any] = {"model": ErrorEnvelope,
                                 "description": _ERROR_DESCRIPTIONS[status]}
        if status in (429, 503):
            entry["headers"] = _RETRY_AFTER
        responses[status] = entry
    return responses


def document_body_answers(document: dict[str, Any]) -> dict[str, Any]:
    """Add to every operation that takes a body the answers any body can get, whatever the
    route: 400 (unreadable), 413 (over the request-body limit) and 422 (invalid)."""
    envelope = {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorEnvelope"}}}
    for item in document.get("paths", {}).values():
        for operation in item.values():
            if not isinstance(operation, dict) or "requestBody" not in operation:
                continue
            responses = operation.setdefault("responses", {})
            for status in (400, 413, 422):
                responses.setdefault(str(status), {"description": _ERROR_DESCRIPTIONS[status],
                                                   "content": envelope})
    return document


#: What every authenticated route can answer, besides its own refusals.
SIGNED_IN = (401, 403, 422)


def signed_in(*extra: int) -> dict[int | str, dict[str, Any]]:
    return error_responses(*SIGNED_IN, *extra)


# --- pages -------------------------------------------------------------------------------


class PageOf[T](BaseModel):
    """A page of a list sorted in a stable order; `total` counts every match."""

    items: list[T]
    total: int = Field(ge=0)
    page: int = Field(ge=1)
    page_size: int = Field(ge=1, le=100)

    @classmethod
    def of[S](cls, page: Any, convert: Callable[[S], T]) -> PageOf[T]:
        items: Sequence[S] = page.items
        return cls(items=[convert(item) for item in items], total=page.total, page=page.page,
                   page_size=page.page_size)


# --- authentication ----------------------------------------------------------------------


class LoginRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"login": "ada@fidus.example",
                                         "password": "correct-horse-battery"}]},
    )

    # At least one character that is not white space: the login is stripped before it is used.
    login: Annotated[str, StringConstraints(min_length=1, max_length=254, strip_whitespace=True,
                                            pattern=r"\S")
                     ] = Field(description="e-mail address or username")
    password: Annotated[SecretStr, Field(min_length=1, max_length=128)]


class RefreshRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    refresh_token: Annotated[str, StringConstraints(min_length=1, max_length=256)]


class GoogleSignInRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id_token: Annotated[str, StringConstraints(min_length=1, max_length=8192)] = Field(
        description="the ID token Google Identity Services gave the browser")


class TokenResponse(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "access_token": "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9...",
        "token_type": "bearer",
        "expires_in": 900,
        "refresh_token": "q5b1Xr2m0l4...",
        "session_id": "665f1c2ab8e4a1d2c3b4a5f6",
    }]})

    access_token: str = Field(description="JWT for the Authorization: Bearer header")
    token_type: Literal["bearer"] = "bearer"
    expires_in: int = Field(description="seconds until the access token expires")
    refresh_token: str = Field(description="opaque; exchange at /auth/refresh; shown once")
    session_id: str
    user: UserRead


class PasswordChangeRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    current_password: Annotated[SecretStr, Field(min_length=1, max_length=128)]
    new_password: Password


# --- users -------------------------------------------------------------------------------


class MonthCount(BaseModel):
    month: str = Field(examples=["2026-11"])
    count: int


class UserStatistics(BaseModel):
    total: int
    by_type: dict[str, int]
    by_kyc_status: dict[str, int]
    active: int
    inactive: int
    signups_per_month: list[MonthCount]


class DeactivationRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: Reason | None = None


# --- funds and investments ---------------------------------------------------------------


class FundRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    code: str = Field(examples=["CORE"])
    name: str = Field(examples=["Fidus Core Fund"])
    minimum: Money
    currency: str = Field(examples=["USD"])
    kind: str = Field(examples=["fixed_interest"],
                      description="fixed_interest or performance_share")
    monthly_rate_percent: Money | None = Field(default=None, examples=["1.5"])
    performance_share_percent: Money | None = Field(
        default=None, description="the client's share of the gain above the high-water mark")
    payout_period_months: int = Field(examples=[1])
    incubation_months: int = Field(examples=[2])
    commitment_months: int = Field(examples=[12])
    invitation_only: bool
    terms_version: int = Field(examples=[1])
    effective_date: date = Field(description="the terms are in force from this day")


class InvestmentListItem(InvestmentRead):
    client_name: str | None = None


# --- CRM ---------------------------------------------------------------------------------


class ProspectConversionRequest(BaseModel):
    """The client account created for a won prospect; the e-mail is the prospect's."""

    model_config = ConfigDict(extra="forbid")

    username: Username
    password: Password
    first_name: PersonName
    last_name: PersonName
    phone: PhoneNumber | None = None
    email: RequestEmail | None = Field(default=None,
                                   description="defaults to the prospect's e-mail")


class ProspectConversion(BaseModel):
    prospect: ProspectRead
    client: UserRead


# --- client views ------------------------------------------------------------------------


class Mt5AccountSummary(BaseModel):
    """What a client sees of its own MT5 account: figures, not connection details."""

    model_config = ConfigDict(from_attributes=True)

    account_id: str
    fund_code: str
    mt5_login: int
    broker_code: str
    currency: str
    balance: Money | None = None
    equity: Money | None = None
    profit: Money | None = None
    snapshot_at: UtcDateTime | None = None
    sync_status: SyncStatus
    last_success_at: UtcDateTime | None = None
