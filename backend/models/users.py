"""Users: clients, managers and admins, with KYC/AML status and login state.

Stored in `users` (validator and indexes: `schemas/users.json`).
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SecretStr,
    StrictBool,
    StrictInt,
    StringConstraints,
)

from backend.models._base import StoredDocument
from backend.models._common import (
    ExpectedVersion,
    IdempotencyKey,
    NotNull,
    PersonName,
    Reason,
    RequestEmail,
    Version,
)
from backend.models._types import EmailAddress, ObjectIdStr, PhoneNumber, PyObjectId, UtcDateTime

USER_ID_PATTERN = r"^[a-z0-9][a-z0-9_-]{2,63}$"
USERNAME_PATTERN = r"^[a-z0-9][a-z0-9_.-]{2,31}$"
BCRYPT_PATTERN = r"^\$2[aby]\$[0-9]{2}\$[./A-Za-z0-9]{53}$"
#: Bounds of a password as typed (the hash is of a fixed-length pre-hash, so none is truncated).
PASSWORD_MIN_LENGTH = 8
PASSWORD_MAX_LENGTH = 128

UserId = Annotated[str, StringConstraints(min_length=3, max_length=64, pattern=USER_ID_PATTERN)]
Username = Annotated[str, StringConstraints(min_length=3, max_length=32, pattern=USERNAME_PATTERN)]


def _lower(value: object) -> object:
    return value.lower() if isinstance(value, str) else value


#: A username as typed: lower-cased before the stored pattern is checked.
UsernameInput = Annotated[Username, BeforeValidator(_lower)]
PasswordHash = Annotated[
    str, StringConstraints(min_length=60, max_length=60, pattern=BCRYPT_PATTERN)
]
Password = Annotated[
    SecretStr, Field(min_length=PASSWORD_MIN_LENGTH, max_length=PASSWORD_MAX_LENGTH)
]


class UserType(StrEnum):
    ADMIN = "admin"
    CLIENT = "client"
    MANAGER = "manager"


class KycStatus(StrEnum):
    PENDING = "pending"
    IN_REVIEW = "in_review"
    APPROVED = "approved"
    REJECTED = "rejected"


class AmlStatus(StrEnum):
    PENDING = "pending"
    IN_REVIEW = "in_review"
    APPROVED = "approved"
    REJECTED = "rejected"


class User(StoredDocument):
    collection_name = "users"
    audited = True

    user_id: UserId
    username: Username
    email: EmailAddress
    user_type: UserType
    first_name: PersonName
    last_name: PersonName
    phone: PhoneNumber | None = None
    is_active: StrictBool
    deactivated_at: UtcDateTime | None = None
    kyc_status: KycStatus
    kyc_decided_at: UtcDateTime | None = None
    kyc_reviewed_by: PyObjectId | None = None
    kyc_reason: Reason | None = None
    aml_status: AmlStatus
    aml_decided_at: UtcDateTime | None = None
    aml_reviewed_by: PyObjectId | None = None
    aml_reason: Reason | None = None
    password_hash: PasswordHash
    #: None only for a user migrated from the old system, whose hash is still that system's
    #: plain bcrypt (`security.passwords.verify_legacy_password`) until the first sign-in.
    password_changed_at: UtcDateTime | None = None
    #: Set when an admin forces a password reset: until the user sets a new password, a
    #: sign-in reaches only the routes that change it.
    password_reset_required_at: UtcDateTime | None = None
    failed_login_attempts: Annotated[StrictInt, Field(ge=0, le=1000)]
    locked_until: UtcDateTime | None = None
    last_login_at: UtcDateTime | None = None
    #: The prospect whose conversion created this client; unique, so a prospect converts once.
    source_prospect_id: PyObjectId | None = None
    idempotency_key: IdempotencyKey | None = None
    created_at: UtcDateTime
    updated_at: UtcDateTime
    version: Version

    @property
    def full_name(self) -> str:
        return f"{self.first_name} {self.last_name}"

    @property
    def password_change_required(self) -> bool:
        return self.password_reset_required_at is not None


class UserCreate(BaseModel):
    """`POST /api/v1/admin/users`: a new client (or, for admins, another role)."""

    model_config = ConfigDict(extra="forbid")

    email: RequestEmail
    username: UsernameInput
    password: Password
    first_name: PersonName
    last_name: PersonName
    phone: PhoneNumber | None = None
    user_type: UserType = UserType.CLIENT


class UserUpdate(BaseModel):
    """Partial update by an admin; only the fields given change. A field that cannot be
    cleared may be left out but not sent as null (the document says so; null is refused)."""

    model_config = ConfigDict(extra="forbid")

    email: RequestEmail | NotNull = None
    username: UsernameInput | NotNull = None
    first_name: PersonName | NotNull = None
    last_name: PersonName | NotNull = None
    phone: PhoneNumber | None = None
    user_type: UserType | NotNull = None
    is_active: bool | NotNull = None
    version: ExpectedVersion | None = Field(default=None,
                                             description="expected version, for conflicts")


class ProfileUpdate(BaseModel):
    """What a client may change on its own profile."""

    model_config = ConfigDict(extra="forbid")

    first_name: PersonName | NotNull = None
    last_name: PersonName | NotNull = None
    phone: PhoneNumber | None = None


class PasswordChange(BaseModel):
    model_config = ConfigDict(extra="forbid")

    current_password: SecretStr
    new_password: Password


class KycDecision(BaseModel):
    """`POST /api/v1/admin/users/{user_id}/kyc`."""

    model_config = ConfigDict(extra="forbid")

    kyc_status: KycStatus
    reason: Reason | None = None


class AmlDecision(BaseModel):
    """`POST /api/v1/admin/users/{user_id}/aml`."""

    model_config = ConfigDict(extra="forbid")

    aml_status: AmlStatus
    reason: Reason | None = None


class UserRead(BaseModel):
    """A user as the API shows it; never the password hash or login counters."""

    model_config = ConfigDict(from_attributes=True)

    id: ObjectIdStr
    user_id: str
    username: str
    email: str
    user_type: UserType
    first_name: str
    last_name: str
    phone: str | None = None
    is_active: bool
    kyc_status: KycStatus
    kyc_decided_at: UtcDateTime | None = None
    aml_status: AmlStatus
    aml_decided_at: UtcDateTime | None = None
    last_login_at: UtcDateTime | None = None
    password_change_required: bool = Field(
        default=False, description="an admin reset the password: set a new one first")
    source_prospect_id: ObjectIdStr | None = None
    created_at: UtcDateTime
    updated_at: UtcDateTime
    version: int
