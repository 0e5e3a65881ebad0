"""Field shapes repeated across collections (bounds as in the `$jsonSchema` validators)."""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator, EmailStr, Field, StrictInt, StringConstraints, WithJsonSchema

from backend.models._types import EMAIL_PATTERN

#: 2**53 - 1: the largest integer every JSON client reads exactly.
MAX_SAFE_INT = 9_007_199_254_740_991

#: Optimistic-concurrency counter: 1 on creation, +1 on every edit.
Version = Annotated[StrictInt, Field(ge=1, le=MAX_SAFE_INT)]
Mt5Login = Annotated[StrictInt, Field(ge=1, le=MAX_SAFE_INT)]
PersonName = Annotated[str, StringConstraints(min_length=1, max_length=100)]
Reason = Annotated[str, StringConstraints(min_length=1, max_length=1000)]

IDEMPOTENCY_KEY_PATTERN = r"^[A-Za-z0-9._:-]{8,128}$"
#: The caller's `Idempotency-Key` of a creating request, stored on the document it created
#: (unique among the documents that carry one), so a retry finds the first result.
IdempotencyKey = Annotated[
    str, StringConstraints(min_length=8, max_length=128, pattern=IDEMPOTENCY_KEY_PATTERN)
]


def _storable_email(value: str) -> str:
    if re.fullmatch(EMAIL_PATTERN, value) is None:
        raise ValueError("the e-mail address has characters the platform cannot store")
    return value


#: An e-mail address in a request: valid, and also within the stored pattern, so a request
#: that validates is never refused later by the stored model or the database's validator.
RequestEmail = Annotated[
    EmailStr,
    AfterValidator(_storable_email),
    WithJsonSchema({"type": "string", "format": "email", "pattern": EMAIL_PATTERN,
                    "maxLength": 254, "examples": ["ada@fidus.example"]}),
]
