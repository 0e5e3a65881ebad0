"""Check a document against a collection's `$jsonSchema` in Python, problem by problem.

The server's validator only says yes or no (and not at all for documents stored before it was
applied); validate-data needs every problem by name, counted. This covers the keywords the files
in `schemas/` use; `test_ops_validate` checks it agrees with the server on valid documents.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime
from functools import cache
from typing import Any

from bson import Decimal128, Int64, ObjectId

_BSON_TYPES: dict[str, tuple[type, ...]] = {
    "objectId": (ObjectId,),
    "string": (str,),
    "bool": (bool,),
    "date": (datetime,),
    "decimal": (Decimal128,),
    "double": (float,),
    "object": (Mapping,),
    "array": (list, tuple),
    "null": (type(None),),
}


def _type_ok(value: Any, wanted: str) -> bool:
    if wanted == "int":
        return type(value) is int and -(2**31) <= value < 2**31
    if wanted == "long":
        return type(value) is Int64 or (type(value) is int and not -(2**31) <= value < 2**31)
    if wanted == "bool":
        return type(value) is bool
    return isinstance(value, _BSON_TYPES.get(wanted, ()))


@cache
def _compiled(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)


def _number(value: Any) -> Any:
    if isinstance(value, Decimal128):
        return value.to_decimal()
    if isinstance(value, int | float) and not isinstance(value, bool):
        return value
    return None


def field_problems(name: str, value: Any, rule: Mapping[str, Any]) -> list[str]:
    wanted = rule.get("bsonType")
    if wanted is not None:
        types = [wanted] if isinstance(wanted, str) else list(wanted)
        if not any(_type_ok(value, t) for t in types):
            return [f"{name}: wrong type (expected {'/'.join(types)})"]
    if value is None:
        return []
    problems: list[str] = []
    if "enum" in rule and value not in rule["enum"]:
        problems.append(f"{name}: value not allowed")
    if isinstance(value, str):
        if len(value) < rule.get("minLength", 0) or len(value) > rule.get("maxLength", 1 << 62):
            problems.append(f"{name}: length out of bounds")
        if "pattern" in rule and not _compiled(rule["pattern"]).search(value):
            problems.append(f"{name}: does not match pattern")
    number = _number(value)
    if number is not None:
        low, high = rule.get("minimum"), rule.get("maximum")
        if low is not None and (number < low or (rule.get("exclusiveMinimum") and number == low)):
            problems.append(f"{name}: below minimum")
        if high is not None and number > high:
            problems.append(f"{name}: above maximum")
    if isinstance(value, list | tuple):
        if "maxItems" in rule and len(value) > rule["maxItems"]:
            problems.append(f"{name}: too many items")
        items = rule.get("items")
        if isinstance(items, Mapping):
            for item in value:
                problems.extend(field_problems(f"{name}[]", item, items))
    if isinstance(value, Mapping) and "properties" in rule:
        problems.extend(document_problems(value, rule, prefix=f"{name}."))
    return problems


def document_problems(
    doc: Mapping[str, Any], schema: Mapping[str, Any], *, prefix: str = ""
) -> list[str]:
    """Every way `doc` breaks `schema`, as short stable labels (e.g. `email: missing`)."""
    required = schema.get("required", ())
    problems = [f"{prefix}{name}: missing" for name in required if name not in doc]
    properties: Mapping[str, Mapping[str, Any]] = schema.get("properties", {})
    for name, value in doc.items():
        rule = properties.get(name)
        if rule is None:
            if schema.get("additionalProperties") is False:
                problems.append(f"{prefix}{name}: unknown field")
            continue
        problems.extend(field_problems(f"{prefix}{name}", value, rule))
    return problems
