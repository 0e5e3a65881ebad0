"""Sessions: the refresh side of JWT sign-in. Only the SHA-256 of a token is ever stored.

Stored in `sessions` (validator and indexes: `schemas/sessions.json`); the TTL index on
`expires_at` deletes ended sessions. A refresh token names its session (`<session id>.<random>`),
so a replayed old token finds its session through `_id` and ends it.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, StringConstraints

from backend.models._base import StoredDocument
from backend.models._types import PyObjectId, Sha256Hex, UtcDateTime

#: How many replaced refresh tokens a session remembers, to know a replayed one when it comes.
REMEMBERED_TOKENS = 20

IpAddress = Annotated[str, StringConstraints(min_length=2, max_length=45)]
UserAgent = Annotated[str, StringConstraints(min_length=1, max_length=512)]


class Session(StoredDocument):
    collection_name = "sessions"

    token_hash: Sha256Hex
    #: Hashes of the refresh tokens this session has replaced, newest last: one presented
    #: again was stolen or replayed, and the whole session ends.
    previous_token_hashes: Annotated[list[Sha256Hex], Field(max_length=REMEMBERED_TOKENS)] = (
        Field(default_factory=list))
    user_id: PyObjectId
    created_at: UtcDateTime
    expires_at: UtcDateTime
    revoked_at: UtcDateTime | None = None
    last_used_at: UtcDateTime | None = None
    ip: IpAddress | None = None
    user_agent: UserAgent | None = None
