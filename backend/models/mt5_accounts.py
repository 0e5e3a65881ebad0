"""MT5 accounts: a broker account mapped to a client and fund, with its last synced snapshot.

Stored in `mt5_accounts` (validator and indexes: `schemas/mt5_accounts.json`). The investor
password is stored only encrypted (`investor_password_encrypted`) and no read model carries it.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    StrictBool,
    StrictInt,
    StringConstraints,
)

from backend.models._base import StoredDocument
from backend.models._common import (
    ONE_LINE,
    ExpectedVersion,
    IdempotencyKey,
    Mt5Login,
    Mt5LoginInput,
    NotNull,
    Version,
)
from backend.models._types import (
    MONEY_LIMIT,
    Currency,
    DecimalNumber,
    FundCode,
    NonNegativeMoney,
    ObjectIdStr,
    PyObjectId,
    SignedMoney,
    UtcDateTime,
)

ACCOUNT_ID_PATTERN = r"^[A-Z0-9][A-Z0-9_-]{2,63}$"
BROKER_CODE_PATTERN = r"^[A-Z][A-Z0-9_]{1,31}$"

AccountId = Annotated[
    str, StringConstraints(min_length=3, max_length=64, pattern=ACCOUNT_ID_PATTERN)
]
BrokerCode = Annotated[
    str, StringConstraints(min_length=2, max_length=32, pattern=BROKER_CODE_PATTERN)
]
ServerName = Annotated[str, StringConstraints(min_length=1, max_length=100), ONE_LINE]
EncryptedSecret = Annotated[str, StringConstraints(min_length=16, max_length=4096)]
KeyId = Annotated[str, StringConstraints(min_length=1, max_length=64)]
Leverage = Annotated[StrictInt, Field(ge=1, le=100_000)]
MarginLevel = Annotated[DecimalNumber, Field(ge=0, le=MONEY_LIMIT)]
SyncError = Annotated[str, StringConstraints(min_length=1, max_length=2000)]
InvestorPassword = Annotated[SecretStr, Field(min_length=1, max_length=128)]


class SyncStatus(StrEnum):
    NEVER_SYNCED = "never_synced"
    OK = "ok"
    FAILED = "failed"


class Mt5Account(StoredDocument):
    collection_name = "mt5_accounts"
    audited = True

    account_id: AccountId
    client_id: PyObjectId
    fund_code: FundCode
    investment_id: PyObjectId | None = None
    mt5_login: Mt5Login
    broker_code: BrokerCode
    server: ServerName
    investor_password_encrypted: EncryptedSecret
    password_key_id: KeyId | None = None
    currency: Currency
    leverage: Leverage | None = None
    balance: SignedMoney | None = None
    equity: SignedMoney | None = None
    margin: NonNegativeMoney | None = None
    free_margin: SignedMoney | None = None
    margin_level: MarginLevel | None = None
    profit: SignedMoney | None = None
    snapshot_at: UtcDateTime | None = None
    is_active: StrictBool
    sync_status: SyncStatus
    sync_error: SyncError | None = None
    last_sync_at: UtcDateTime | None = None
    last_success_at: UtcDateTime | None = None
    deals_synced_to: UtcDateTime | None = None
    idempotency_key: IdempotencyKey | None = None
    created_at: UtcDateTime
    updated_at: UtcDateTime
    version: Version


class Mt5AccountCreate(BaseModel):
    """Map an MT5 account to a client and fund; the password is encrypted before storage."""

    model_config = ConfigDict(extra="forbid")

    account_id: AccountId
    client_id: PyObjectId
    fund_code: FundCode
    investment_id: PyObjectId | None = None
    mt5_login: Mt5LoginInput
    broker_code: BrokerCode
    server: ServerName
    investor_password: InvestorPassword
    currency: Currency


class Mt5AccountUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    investment_id: PyObjectId | None = None
    broker_code: BrokerCode | NotNull = None
    server: ServerName | NotNull = None
    investor_password: InvestorPassword | None = None
    is_active: bool | NotNull = None
    version: ExpectedVersion | None = Field(default=None,
                                             description="expected version, for conflicts")


class Mt5AccountRead(BaseModel):
    """A mapping and its snapshot as the API shows it; never the password, in any form."""

    model_config = ConfigDict(from_attributes=True)

    id: ObjectIdStr
    account_id: str
    client_id: ObjectIdStr
    fund_code: str
    investment_id: ObjectIdStr | None = None
    mt5_login: int
    broker_code: str
    server: str
    currency: str
    leverage: int | None = None
    balance: SignedMoney | None = None
    equity: SignedMoney | None = None
    margin: NonNegativeMoney | None = None
    free_margin: SignedMoney | None = None
    margin_level: MarginLevel | None = None
    profit: SignedMoney | None = None
    snapshot_at: UtcDateTime | None = None
    is_active: bool
    sync_status: SyncStatus
    sync_error: str | None = None
    last_sync_at: UtcDateTime | None = None
    last_success_at: UtcDateTime | None = None
    created_at: UtcDateTime
    updated_at: UtcDateTime
    version: int
