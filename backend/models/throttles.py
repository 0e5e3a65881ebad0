"""Throttle counters shared by every API process (sign-in rate and failed sign-ins).

Stored in `throttles` (validator and indexes: `schemas/throttles.json`); `_id` names what is
counted, so a counter is one document updated in place, and the TTL index on `expires_at`
deletes a counter whose window has ended.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, StrictInt, StringConstraints

from backend.models._base import StoredDocument
from backend.models._types import UtcDateTime

THROTTLE_KEY_PATTERN = r"^[a-z][a-z0-9_-]{0,39}:[a-z0-9_.:-]{1,259}$"

ThrottleKey = Annotated[
    str, StringConstraints(min_length=3, max_length=300, pattern=THROTTLE_KEY_PATTERN)
]


class ThrottleCounter(StoredDocument):
    collection_name = "throttles"

    id: ThrottleKey = Field(alias="_id")  # type: ignore[assignment]
    count: Annotated[StrictInt, Field(ge=0, le=1_000_000_000)]
    expires_at: UtcDateTime
