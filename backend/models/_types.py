"""Field types shared by every model: exact money, aware UTC times, ObjectIds and codes.

The patterns and bounds here mirror the `$jsonSchema` validators in `schemas/`; the
model/validator agreement test fails when the two drift apart.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from decimal import Context, Decimal, InvalidOperation
from typing import Annotated, Any

from bson import Decimal128, ObjectId
from pydantic import (
    AfterValidator,
    AwareDatetime,
    BeforeValidator,
    Field,
    PlainSerializer,
    PlainValidator,
    StringConstraints,
    WithJsonSchema,
)

EMAIL_PATTERN = (
    r"^[A-Za-z0-9._%+-]{1,64}@[A-Za-z0-9-]{1,63}(\.[A-Za-z0-9-]{1,63})*\.[A-Za-z]{2,24}$"
)
FUND_CODE_PATTERN = r"^[A-Z][A-Z0-9_]{1,15}$"
CURRENCY_PATTERN = r"^[A-Z]{3}$"
SHA256_PATTERN = r"^[0-9a-f]{64}$"
PHONE_PATTERN = r"^\+?[0-9]{6,20}$"

#: Money as the API takes it: ASCII digits, an optional minus sign, at most two decimals.
MONEY_INPUT_PATTERN = r"^-?[0-9]+(\.[0-9]{1,2})?$"
#: The documented shape of an amount in a request, within MONEY_LIMIT (at most 15 digits before
#: the point, leading zeros aside), so a client generating from the schema stays in bounds.
_BOUNDED_MONEY_PATTERN = r"^-?0*[0-9]{1,15}(\.[0-9]{1,2})?$"
CENT = Decimal("0.01")
_MONEY_TEXT = re.compile(r"-?[0-9]+(\.[0-9]{1,2})?")
#: Largest magnitude of a money amount (validators: minimum/maximum), which also keeps NaN and
#: infinities out of the database.
MONEY_LIMIT = Decimal("1E+15")
#: Decimal128 holds 34 significant digits; more could not be stored exactly.
_MAX_DIGITS = 34
_MIN_EXPONENT = -6176
_BID_CONTEXT = Context(prec=_MAX_DIGITS, Emax=6144, Emin=-6143)
_LOW_64 = 0xFFFFFFFFFFFFFFFF
_COEFFICIENT_HIGH = 0x1FFFFFFFFFFFF
_BID_LARGE_FORM = 0x6000000000000000


def decimal_to_bson(value: Decimal) -> Decimal128:
    """Exact `Decimal` -> `Decimal128`, about ten times as fast as `Decimal128(value)`.

    Only for finite values of at most 34 digits, which the `Money` type guarantees. The
    coefficient and exponent are read off the decimal's own text (`-1234.50` is 123450 and -2),
    which is quicker than `as_tuple()`; text in exponent notation takes the general way.
    """
    text = str(value)
    if "E" in text:
        return _exponent_form_to_bson(value)
    point = text.find(".")
    exponent = 0 if point < 0 else point + 1 - len(text)
    coefficient = int(text.replace(".", "", 1))
    negative = text[0] == "-"  # also for -0, whose coefficient is 0
    if negative:
        coefficient = -coefficient
    high = (negative << 63) | ((exponent - _MIN_EXPONENT) << 49) | (coefficient >> 64)
    result = Decimal128.__new__(Decimal128)
    result.__setstate__((high, coefficient & _LOW_64))
    return result


def _exponent_form_to_bson(value: Decimal) -> Decimal128:
    sign, _, exponent = value.as_tuple()
    assert isinstance(exponent, int)
    coefficient = abs(int(value.scaleb(-exponent, _BID_CONTEXT))) if exponent else abs(int(value))
    return _pack(bool(sign), coefficient, exponent)


def _pack(negative: bool, coefficient: int, exponent: int) -> Decimal128:
    high = (negative << 63) | ((exponent - _MIN_EXPONENT) << 49) | (coefficient >> 64)
    result = Decimal128.__new__(Decimal128)
    result.__setstate__((high, coefficient & _LOW_64))
    return result


def bson_to_decimal(value: Decimal128) -> Decimal:
    """Exact `Decimal128` -> `Decimal`, about five times as fast as `value.to_decimal()`."""
    high, low = value.__getstate__()
    if high & _BID_LARGE_FORM == _BID_LARGE_FORM:  # NaN, infinities, non-canonical forms
        return value.to_decimal()
    coefficient = ((high & _COEFFICIENT_HIGH) << 64) | low
    exponent = ((high >> 49) & 0x3FFF) + _MIN_EXPONENT
    return Decimal(f"{'-' if high >> 63 else ''}{coefficient}E{exponent}")


def _checked(amount: Decimal) -> Decimal:
    if not amount.is_finite():
        raise ValueError("money must be a finite number")
    if abs(amount) > MONEY_LIMIT:
        raise ValueError(f"money must be at most {MONEY_LIMIT:,.0f} in magnitude")
    sign, digits, exponent = amount.as_tuple()
    if len(digits) > _MAX_DIGITS or (isinstance(exponent, int) and exponent < _MIN_EXPONENT):
        raise ValueError("money has more precision than Decimal128 can store exactly")
    return amount


def _from_bson(value: Decimal128) -> Decimal:
    # Stored values fit Decimal128 by construction: only finiteness and the bound remain.
    amount = bson_to_decimal(value)
    if not amount.is_finite():
        raise ValueError("money must be a finite number")
    if abs(amount) > MONEY_LIMIT:
        raise ValueError(f"money must be at most {MONEY_LIMIT:,.0f} in magnitude")
    return amount


def _to_money(value: Any) -> Decimal:
    """An amount of money.

    From the API (a string, or a JSON integer) only the canonical form is taken: ASCII digits,
    an optional leading minus, at most two decimals (`MONEY_INPUT_PATTERN`); no exponent,
    sign plus, spaces, underscores or other scripts' digits, and never a JSON float, even
    10000.0, which may already have been rounded on its way.
    It is stored quantized to the cent, so "10000", 10000 and "10000.0" are all stored as
    10000.00; nothing is rounded, because a third decimal is refused rather than rounded away.
    A `Decimal` or `Decimal128` comes from the product's own code or the database and is kept
    exactly as it is.
    """
    kind = type(value)
    if kind is Decimal128:
        return _from_bson(value)
    if kind is Decimal:
        return _checked(value)
    if kind is str:
        if _MONEY_TEXT.fullmatch(value) is None:
            raise ValueError("money must be a decimal string of ASCII digits with at most two "
                             "decimals, e.g. '10000.00'")
        return _checked(Decimal(value)).quantize(CENT)
    if kind is int:
        if abs(value) > MONEY_LIMIT:
            raise ValueError(f"money must be at most {MONEY_LIMIT:,.0f} in magnitude")
        return Decimal(value).quantize(CENT)
    if kind is float or kind is bool:
        raise ValueError("money must be a decimal string or Decimal, never a float")
    raise ValueError(f"money must be a Decimal or a decimal string, not {kind.__name__}")


def _to_decimal_number(value: Any) -> Decimal:
    """A stored decimal that is not an amount (a rate, a ratio, a volume): any exact form."""
    kind = type(value)
    if kind is Decimal128:
        return _from_bson(value)
    if kind is Decimal:
        return _checked(value)
    if kind is str:
        try:
            return _checked(Decimal(value.strip()))
        except InvalidOperation:
            raise ValueError("a decimal number is expected, e.g. '12.5'") from None
    if kind is int:
        if abs(value) > MONEY_LIMIT:
            raise ValueError(f"the number must be at most {MONEY_LIMIT:,.0f} in magnitude")
        return Decimal(value)
    if kind is float or kind is bool:
        raise ValueError("a decimal string or Decimal is expected, never a float")
    raise ValueError(f"a Decimal or a decimal string is expected, not {kind.__name__}")


_MONEY_JSON_SCHEMA = {
    "type": "string",
    "pattern": r"^-?[0-9]+(\.[0-9]+)?$",
    "examples": ["10000.00"],
    "description": "decimal amount as a string (never a float)",
}
# JSON Schema cannot tell a JSON integer from a whole float (10000 from 10000.0), so only the
# string is documented; a JSON integer is accepted as well, a float never.
_MONEY_INPUT_JSON_SCHEMA = {
    "type": "string",
    "pattern": _BOUNDED_MONEY_PATTERN,
    "maxLength": 40,
    "examples": ["10000.00"],
    "description": "amount as a decimal string of ASCII digits with at most two decimals, "
                   "stored to the cent (a JSON integer is taken too; a JSON float never)",
}


#: Exact money: Decimal in Python, Decimal128 in MongoDB, a string in JSON. Floats are refused.
def _money_to_json(value: Decimal) -> str:
    return format(value, "f")  # fixed-point: "100000", never "1E+5"


Money = Annotated[
    Decimal,
    PlainValidator(_to_money, json_schema_input_type=str),
    PlainSerializer(_money_to_json, return_type=str, when_used="json"),
    WithJsonSchema(_MONEY_INPUT_JSON_SCHEMA, mode="validation"),
    WithJsonSchema(_MONEY_JSON_SCHEMA, mode="serialization"),
]
#: At least 1 unit: a principal below that is never a real investment, and `minimum: 1` is a
#: bound every server enforces (the embedded one ignores `exclusiveMinimum`). The input schema
#: says so too: no leading minus, and a whole part of at least 1.
PositiveMoney = Annotated[
    Money, Field(ge=1),
    WithJsonSchema({**_MONEY_INPUT_JSON_SCHEMA,
                    "pattern": r"^0*[1-9][0-9]{0,14}(\.[0-9]{1,2})?$"},
                   mode="validation"),
]
NonNegativeMoney = Annotated[
    Money, Field(ge=0),
    WithJsonSchema({**_MONEY_INPUT_JSON_SCHEMA, "pattern": r"^0*[0-9]{1,15}(\.[0-9]{1,2})?$"},
                   mode="validation"),
]
SignedMoney = Annotated[Money, Field(ge=-MONEY_LIMIT)]
#: A percentage or ratio that is stored as Decimal128 (e.g. return in %, margin level).
DecimalNumber = Annotated[
    Decimal,
    PlainValidator(_to_decimal_number, json_schema_input_type=str),
    PlainSerializer(_money_to_json, return_type=str, when_used="json"),
    WithJsonSchema(_MONEY_JSON_SCHEMA),
]


def _to_utc(value: datetime) -> datetime:
    # BSON dates keep milliseconds; truncating here makes a stored value equal the model's.
    micro = value.microsecond % 1000
    if value.tzinfo is not UTC:
        value = value.astimezone(UTC)
    return value.replace(microsecond=value.microsecond - micro) if micro else value


_ISO_TIMESTAMP = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}(:[0-9]{2}([.,][0-9]{1,9})?)?"
    r"([Zz]|[+-][0-9]{2}:?[0-9]{2})")


def _iso_timestamp(value: Any) -> Any:
    """Timestamps come as ISO 8601 strings with an offset, never as numbers or epoch strings."""
    if isinstance(value, datetime):
        return value
    if isinstance(value, str) and _ISO_TIMESTAMP.fullmatch(value):
        return value
    raise ValueError("a timestamp must be an ISO 8601 string with its offset, "
                     "e.g. '2026-11-30T09:30:00Z'")


#: An aware datetime normalised to UTC with millisecond precision; a naive one is refused, and
#: from JSON or a query only an ISO 8601 string is taken.
UtcDateTime = Annotated[AwareDatetime, BeforeValidator(_iso_timestamp), AfterValidator(_to_utc)]

#: The first day a calendar date in the API may name.
EARLIEST_DATE = date(1970, 1, 1)
_ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


def _iso_date(value: Any) -> Any:
    if isinstance(value, date) and not isinstance(value, datetime):
        return value
    if isinstance(value, str) and _ISO_DATE.fullmatch(value):
        return value
    raise ValueError("a date must be an ISO 8601 string, e.g. '2026-11-30'")


def _not_before_epoch(value: date) -> date:
    if value < EARLIEST_DATE:
        raise ValueError(f"a date must be on or after {EARLIEST_DATE.isoformat()}")
    return value


#: A calendar day as `YYYY-MM-DD`, from 1970-01-01; the services refuse a day after today by
#: their own clock (the model cannot know it).
CalendarDate = Annotated[
    date,
    BeforeValidator(_iso_date),
    AfterValidator(_not_before_epoch),
    # The pattern says "1970 or later" as well, so the document promises no date refused.
    WithJsonSchema({"type": "string", "format": "date",
                    "pattern": r"^(19[7-9][0-9]|[2-9][0-9]{3})-[0-9]{2}-[0-9]{2}$",
                    "examples": ["2026-11-02"]}),
]


def _to_object_id(value: Any) -> ObjectId:
    if type(value) is ObjectId:
        return value
    if isinstance(value, str) and len(value) == 24 and ObjectId.is_valid(value):
        return ObjectId(value)
    raise ValueError("must be an ObjectId or its 24-character hex string")


_OBJECT_ID_JSON_SCHEMA = {
    "type": "string",
    "pattern": "^[0-9a-f]{24}$",
    "examples": ["665f1c2ab8e4a1d2c3b4a5f6"],
}

#: An ObjectId inside (stored as such); accepts its 24-hex string; a string in JSON.
PyObjectId = Annotated[
    ObjectId,
    PlainValidator(_to_object_id, json_schema_input_type=str),
    PlainSerializer(str, return_type=str, when_used="json"),
    WithJsonSchema(_OBJECT_ID_JSON_SCHEMA),
]


def _object_id_str(value: Any) -> str:
    return str(_to_object_id(value))


#: The API's view of an id: always the 24-hex string, from an ObjectId or a string.
ObjectIdStr = Annotated[
    str,
    PlainValidator(_object_id_str, json_schema_input_type=str),
    WithJsonSchema(_OBJECT_ID_JSON_SCHEMA),
]

FundCode = Annotated[str, StringConstraints(min_length=2, max_length=16, pattern=FUND_CODE_PATTERN)]
Currency = Annotated[str, StringConstraints(min_length=3, max_length=3, pattern=CURRENCY_PATTERN)]
Sha256Hex = Annotated[str, StringConstraints(min_length=64, max_length=64, pattern=SHA256_PATTERN)]
PhoneNumber = Annotated[str, StringConstraints(min_length=7, max_length=21, pattern=PHONE_PATTERN)]
#: An e-mail address as stored: the validator's pattern, lower-cased.
EmailAddress = Annotated[
    str, StringConstraints(min_length=3, max_length=254, pattern=EMAIL_PATTERN, to_lower=True)
]


__all__ = [
    "CENT",
    "CURRENCY_PATTERN",
    "EARLIEST_DATE",
    "EMAIL_PATTERN",
    "FUND_CODE_PATTERN",
    "MONEY_INPUT_PATTERN",
    "MONEY_LIMIT",
    "PHONE_PATTERN",
    "SHA256_PATTERN",
    "CalendarDate",
    "Currency",
    "DecimalNumber",
    "EmailAddress",
    "FundCode",
    "Money",
    "NonNegativeMoney",
    "ObjectIdStr",
    "PhoneNumber",
    "PositiveMoney",
    "PyObjectId",
    "Sha256Hex",
    "SignedMoney",
    "UtcDateTime",
    "bson_to_decimal",
    "decimal_to_bson",
]
