"""Field shapes repeated across collections (bounds as in the `$jsonSchema` validators)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BeforeValidator,
    EmailStr,
    Field,
    GetCoreSchemaHandler,
    GetJsonSchemaHandler,
    StrictInt,
    StringConstraints,
    WithJsonSchema,
)
from pydantic.json_schema import JsonSchemaValue, SkipJsonSchema
from pydantic_core import CoreSchema, core_schema

from backend.models._types import EMAIL_PATTERN

#: 2**53 - 1: the largest integer every JSON client reads exactly.
MAX_SAFE_INT = 9_007_199_254_740_991

#: Characters no free text may hold: C0 and C1 controls, DEL, and the bidirectional embeddings,
#: overrides and isolates (U+202A-U+202E, U+2066-U+2069), which can make a name read backwards.
#: Multi-line text (reasons, notes) may still hold tabs and line breaks.
_BIDI = "\u202a-\u202e\u2066-\u2069"
#: The validator patterns (schemas/*.json carry the same strings). The `(?!\n)` keeps `$` from
#: matching before a final line break, which it would in Python's `re` and in PCRE alike.
SINGLE_LINE_TEXT_PATTERN = "^[^\\x00-\\x1f\\x7f-\\x9f" + _BIDI + "]*(?!\\n)$"
MULTI_LINE_TEXT_PATTERN = "^[^\\x00-\\x08\\x0b\\x0c\\x0e-\\x1f\\x7f-\\x9f" + _BIDI + "]*$"
# Lone surrogates cannot be encoded for storage at all, so they are refused here as well.
_SINGLE_LINE_REFUSED = re.compile("[\x00-\x1f\x7f-\x9f" + _BIDI + "\ud800-\udfff]")
_MULTI_LINE_REFUSED = re.compile(
    "[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f" + _BIDI + "\ud800-\udfff]")


@dataclass(frozen=True, slots=True)
class _FreeText:
    """Free text's rule as one annotation: the check, and the validator's pattern in the JSON
    schema (given there only: pydantic's own regex engine has no look-ahead)."""

    refused: re.Pattern[str]
    pattern: str

    def check(self, value: str) -> str:
        if self.refused.search(value):
            raise ValueError("the text holds a control or bidirectional-override character")
        return value

    def __get_pydantic_core_schema__(self, source: Any,
                                     handler: GetCoreSchemaHandler) -> CoreSchema:
        return core_schema.no_info_after_validator_function(self.check, handler(source))

    def __get_pydantic_json_schema__(self, schema: CoreSchema,
                                     handler: GetJsonSchemaHandler) -> JsonSchemaValue:
        result: dict[str, Any] = handler(schema)
        result["pattern"] = self.pattern
        return result


#: Free text on one line (a name, a source): `Annotated[str, StringConstraints(...), ONE_LINE]`.
ONE_LINE = _FreeText(_SINGLE_LINE_REFUSED, SINGLE_LINE_TEXT_PATTERN)
#: Free text that may span lines (a reason, notes): tabs and line breaks are allowed.
MULTI_LINE = _FreeText(_MULTI_LINE_REFUSED, MULTI_LINE_TEXT_PATTERN)

#: `X | NotNull = None`: a partial update may leave the field out, but null is not in its JSON
#: schema, since it cannot be cleared (the services refuse an explicit null).
NotNull = SkipJsonSchema[None]

#: Optimistic-concurrency counter: 1 on creation, +1 on every edit.
Version = Annotated[StrictInt, Field(ge=1, le=MAX_SAFE_INT)]


def _whole_number(value: object) -> object:
    # JSON (and JSON Schema's "integer") does not tell 3 from 3.0; a fraction stays refused.
    if type(value) is float and value.is_integer():
        return int(value)
    return value


#: A whole number as a request gives it: 3 or 3.0, never 3.5 nor "3". Stored ones stay strict.
WholeNumber = BeforeValidator(_whole_number)
#: The version a request says it read.
ExpectedVersion = Annotated[StrictInt, Field(ge=1, le=MAX_SAFE_INT), WholeNumber]
Mt5Login = Annotated[StrictInt, Field(ge=1, le=MAX_SAFE_INT)]
Mt5LoginInput = Annotated[StrictInt, Field(ge=1, le=MAX_SAFE_INT), WholeNumber]
PersonName = Annotated[str, StringConstraints(min_length=1, max_length=100), ONE_LINE]
Reason = Annotated[str, StringConstraints(min_length=1, max_length=1000), MULTI_LINE]

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


#: What the API document promises of a request's e-mail address: the stored pattern, with the
#: rules of the e-mail validator spelled out (no dot at either end of the local part or two in
#: a row, no label beginning or ending with a hyphen nor "ab--" unless IDNA, a lower-case
#: top-level domain that is not a special-use name such as .test), so an address the document
#: calls valid is never refused.
REQUEST_EMAIL_PATTERN = (
    r"^(?=[^@]{1,64}@)[A-Za-z0-9_%+-]+(\.[A-Za-z0-9_%+-]+)*"
    r"@((?![A-Za-z0-9]{2}--)[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+"
    r"(?!(arpa|invalid|local|localhost|onion|test)$)[a-z]{2,24}$"
)

#: An e-mail address in a request: valid, and also within the stored pattern, so a request
#: that validates is never refused later by the stored model or the database's validator.
RequestEmail = Annotated[
    EmailStr,
    AfterValidator(_storable_email),
    WithJsonSchema({"type": "string", "format": "email", "pattern": REQUEST_EMAIL_PATTERN,
                    "maxLength": 254, "examples": ["ada@fidus.example"]}),
]
