"""Leases: a named lock held by one owner until `expires_at` (migrations, per-account sync).

Stored in `locks` (validator and indexes: `schemas/locks.json`); `_id` is the lock's name, so
taking a free lock is one upsert and two holders cannot exist.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, StringConstraints

from backend.models._base import StoredDocument
from backend.models._types import UtcDateTime

LOCK_NAME_PATTERN = r"^[a-z0-9][a-z0-9_.:-]{0,199}$"

LockName = Annotated[
    str, StringConstraints(min_length=1, max_length=200, pattern=LOCK_NAME_PATTERN)
]


class Lock(StoredDocument):
    collection_name = "locks"

    id: LockName = Field(alias="_id")  # type: ignore[assignment]
    owner: Annotated[str, StringConstraints(min_length=1, max_length=200)]
    acquired_at: UtcDateTime
    expires_at: UtcDateTime
