"""Admin sessions opened by Google sign-in. The OAuth tokens are stored only encrypted.

Stored in `admin_google_sessions` (validator and indexes: `schemas/admin_google_sessions.json`);
the TTL index on `token_expires_at` deletes ended sessions.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, StringConstraints

from backend.models._base import StoredDocument
from backend.models._common import Version
from backend.models._types import EmailAddress, PyObjectId, Sha256Hex, UtcDateTime

GoogleSubject = Annotated[str, StringConstraints(min_length=1, max_length=255)]
EncryptedToken = Annotated[str, StringConstraints(min_length=16, max_length=8192)]
KeyId = Annotated[str, StringConstraints(min_length=1, max_length=64)]
Scope = Annotated[str, StringConstraints(min_length=1, max_length=200)]


class AdminGoogleSession(StoredDocument):
    collection_name = "admin_google_sessions"
    audited = True

    admin_id: PyObjectId
    google_email: EmailAddress
    google_subject: GoogleSubject
    session_token_hash: Sha256Hex
    access_token_encrypted: EncryptedToken
    refresh_token_encrypted: EncryptedToken | None = None
    token_key_id: KeyId | None = None
    scopes: Annotated[list[Scope], Field(max_length=50)]
    token_expires_at: UtcDateTime
    revoked_at: UtcDateTime | None = None
    last_used_at: UtcDateTime | None = None
    created_at: UtcDateTime
    updated_at: UtcDateTime
    version: Version
