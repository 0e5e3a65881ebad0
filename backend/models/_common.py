"""Field shapes repeated across collections (bounds as in the `$jsonSchema` validators)."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, StrictInt, StringConstraints

#: 2**53 - 1: the largest integer every JSON client reads exactly.
MAX_SAFE_INT = 9_007_199_254_740_991

#: Optimistic-concurrency counter: 1 on creation, +1 on every edit.
Version = Annotated[StrictInt, Field(ge=1, le=MAX_SAFE_INT)]
Mt5Login = Annotated[StrictInt, Field(ge=1, le=MAX_SAFE_INT)]
PersonName = Annotated[str, StringConstraints(min_length=1, max_length=100)]
Reason = Annotated[str, StringConstraints(min_length=1, max_length=1000)]
