"""The base of every stored model: validation from a MongoDB document and back.

`from_document` validates a raw document as the driver returns it (Decimal128, aware datetimes,
ObjectId); `to_document` builds the BSON-ready dict straight from the field values, without a
`model_dump` round trip, because this path runs for every document the repositories touch.

Optional fields are stored as null rather than omitted, and every validator allows null for
them, so all documents of a collection have the same shape and a `$set` can clear a field.

`from_stored` is the repositories' read path: a document the server returns has passed the
collection's `$jsonSchema` validator on its way in (patterns, bounds, enums, required fields, no
others), and tests/test_schemas_agreement.py holds that validator and the model to the same
rules, so the model is built from it without validating it a second time. Only the stored forms
are turned into the model's (Decimal128 into Decimal, an enum's string into its member, int64
into int); dates are taken as a client opened with `tz_aware=True, tzinfo=UTC` decodes them
(the repositories validate fully on any other client). Whatever the plan does not expect exactly
(a missing or unknown field, another type, a model with validators of its own) goes through
`from_document`, which validates fully and raises as before.
"""

from __future__ import annotations

import operator
import types
import typing
from collections.abc import Callable, Container, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from enum import Enum
from typing import Any, ClassVar, NamedTuple, Self

from bson import Decimal128, Int64, ObjectId
from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainValidator,
    TypeAdapter,
    ValidationError,
    WrapValidator,
)
from pydantic.fields import FieldInfo

from backend.models._types import (
    PyObjectId,
    _iso_timestamp,
    _to_decimal_number,
    _to_money,
    _to_object_id,
    _to_utc,
    bson_to_decimal,
    decimal_to_bson,
)

_SCALARS = (str, int, bool, float, datetime, ObjectId, type(None))

#: Audit records riding in a changed document until the relay copies them into `audit_log`
#: (see `backend/repositories/base.py`). Every audited collection's validator allows it; the
#: models never see it.
OUTBOX_FIELD = "_outbox"
_OUTBOX = TypeAdapter(list[dict[str, Any]])


def _mentions(annotation: Any, target: type) -> bool:
    if annotation is target:
        return True
    return any(_mentions(arg, target) for arg in typing.get_args(annotation))


def _is_container(annotation: Any) -> bool:
    origin = typing.get_origin(annotation)
    if origin in (dict, list, Mapping) or annotation in (dict, list):
        return True
    if origin in (typing.Union, types.UnionType, typing.Annotated):
        return any(_is_container(arg) for arg in typing.get_args(annotation))
    return False


def bson_ready(value: Any) -> Any:
    """Decimal -> Decimal128 and enums -> their values, through nested dicts and lists."""
    if isinstance(value, _SCALARS):
        return value
    if isinstance(value, Decimal):
        return decimal_to_bson(value)
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, Mapping):
        return {str(k): bson_ready(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [bson_ready(v) for v in value]
    if isinstance(value, BaseModel):
        return bson_ready(value.model_dump())
    return value


# the trusted read path -----------------------------------------------------------------------

Convert = Callable[[Any], Any]

#: Metadata the server's validator enforces itself (bounds, lengths, patterns) or that only
#: matters for output; anything else (a transforming constraint, a validator of unknown effect)
#: makes the field go through its own TypeAdapter.
_CHECKED_BY_VALIDATOR = frozenset({
    "Ge", "Gt", "Le", "Lt", "Interval", "MinLen", "MaxLen", "Len", "Strict",
    "PlainSerializer", "WrapSerializer", "WithJsonSchema", "_PydanticGeneralMetadata",
    "_FreeText",  # refuses control characters, as the validator's text pattern does
})
#: The model's own validators whose effect on a stored value is known: the conversion it needs.
_STORED_BY = {_to_money: "decimal", _to_decimal_number: "decimal", _to_object_id: "object id",
              _to_utc: "date"}
#: Validators that leave a stored value as it is (they only shape what the API takes).
_NO_EFFECT_WHEN_STORED = frozenset({_iso_timestamp})

#: How many distinct field-type shapes a model remembers as already checked.
_SHAPES_REMEMBERED = 256


class _AnyType:
    """Accepts every type: the field's TypeAdapter judges the value."""

    def __contains__(self, item: object) -> bool:
        return True


_ANY_TYPE = _AnyType()


class _Stored(NamedTuple):
    """How a field is stored: the Python types the driver returns for it, and the conversion
    into the model's value (None: taken as it is)."""

    types: frozenset[type]
    convert: Convert | None


@dataclass(frozen=True, slots=True)
class _ReadPlan:
    """`from_stored` for one model: every stored key in field order, fetched and type-checked
    in C (itemgetter, map), then the few fields that need a conversion converted."""

    names: frozenset[str]
    renamed: tuple[tuple[str, str], ...]  # stored key -> field name, where they differ (_id)
    values_of: Callable[[Mapping[str, Any]], tuple[Any, ...]]
    accepted: tuple[Container[type], ...]
    conversions: tuple[tuple[str, Convert], ...]  # None stays None
    adapters: tuple[tuple[str, Convert], ...]  # full validation of one field
    #: The types of a document's fields, in field order, already found acceptable: documents
    #: of one collection come in a handful of such shapes (which optional fields are null).
    accepted_shapes: set[tuple[type, ...]] = field(default_factory=set)

    def acceptable(self, shape: tuple[type, ...]) -> bool:
        if shape in self.accepted_shapes:
            return True
        if not all(map(operator.contains, self.accepted, shape)):
            return False
        if len(self.accepted_shapes) < _SHAPES_REMEMBERED:
            self.accepted_shapes.add(shape)
        return True


def _flat(metadata: Sequence[Any]) -> list[Any]:
    """`Field(ge=...)` inside an Annotated of an optional type stays a FieldInfo: its own
    metadata counts; anything else it sets (a default, an alias) is not understood here."""
    flat: list[Any] = []
    for item in metadata:
        if isinstance(item, FieldInfo):
            if item.alias is not None or not item.is_required():
                flat.append(item)  # unknown effect: routed to the field's TypeAdapter
            else:
                flat.extend(_flat(item.metadata))
        else:
            flat.append(item)
    return flat


def _stored_form(annotation: Any, metadata: Sequence[Any]) -> _Stored | None:
    """The stored form of a field, or None when only a full validation of it can say."""
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        base, *extra = typing.get_args(annotation)
        return _stored_form(base, [*metadata, *extra])
    if origin in (typing.Union, types.UnionType):
        parts = [_stored_form(arg, metadata) if arg is not type(None)
                 else _Stored(frozenset({type(None)}), None)
                 for arg in typing.get_args(annotation)]
        converts = {part.convert for part in parts if part is not None} - {None}
        if any(part is None for part in parts) or len(converts) > 1:
            return None
        accepted = frozenset().union(*(part.types for part in parts if part is not None))
        return _Stored(accepted, converts.pop() if converts else None)
    special: str | None = None
    for item in _flat(metadata):
        if isinstance(item, BeforeValidator) and item.func in _NO_EFFECT_WHEN_STORED:
            continue
        if isinstance(item, PlainValidator | AfterValidator | BeforeValidator | WrapValidator):
            if special is not None or item.func not in _STORED_BY:
                return None
            special = _STORED_BY[item.func]
        elif type(item).__name__ == "StringConstraints":
            if item.to_lower or item.to_upper or item.strip_whitespace:
                return None
        elif type(item).__name__ not in _CHECKED_BY_VALIDATOR:
            return None
    if special == "decimal" and annotation is Decimal:
        return _Stored(frozenset({Decimal128}), bson_to_decimal)
    if special == "object id" and annotation is ObjectId:
        return _Stored(frozenset({ObjectId}), None)
    if special == "date" and annotation in (datetime, AwareDatetime):
        # Aware UTC with milliseconds: what a tz_aware client decodes (see from_stored).
        return _Stored(frozenset({datetime}), None)
    if special is not None or not isinstance(annotation, type):
        return None
    if issubclass(annotation, Enum):
        if not issubclass(annotation, str):
            return None
        # Members are str: a stored value and a member both find the member.
        return _Stored(frozenset({str, annotation}), annotation._value2member_map_.__getitem__)
    if annotation in (str, bool):
        return _Stored(frozenset({annotation}), None)
    if annotation is int:
        return _Stored(frozenset({int, Int64}), int)
    return None


def _read_plan(model: type[BaseModel]) -> _ReadPlan | None:
    """The plan of `from_stored`, or None when the model must always be validated (it has
    validators or post-init logic of its own, or private attributes)."""
    decorators = model.__pydantic_decorators__
    if (decorators.validators or decorators.field_validators or decorators.root_validators
            or decorators.model_validators or model.__private_attributes__
            or model.model_post_init is not BaseModel.model_post_init
            or len(model.model_fields) < 2):
        return None
    keys: list[str] = []
    accepted: list[Container[type]] = []
    conversions: list[tuple[str, Convert]] = []
    adapters: list[tuple[str, Convert]] = []
    for name, info in model.model_fields.items():
        keys.append(info.alias or name)
        form = _stored_form(info.annotation, info.metadata)
        if form is None:
            accepted.append(_ANY_TYPE)
            adapters.append((name, TypeAdapter(info.rebuild_annotation()).validate_python))
            continue
        accepted.append(form.types)
        if form.convert is not None:
            conversions.append((name, form.convert))
    renamed = tuple((key, name) for key, name in zip(keys, model.model_fields, strict=True)
                    if key != name)
    return _ReadPlan(frozenset(model.model_fields), renamed, operator.itemgetter(*keys),
                     tuple(accepted), tuple(conversions), tuple(adapters))


class StoredDocument(BaseModel):
    """A document as stored in its collection (`schemas/<collection>.json` is its validator).

    Unknown fields are refused, as the validator's `additionalProperties: false` refuses them.
    """

    model_config = ConfigDict(
        extra="forbid",
        populate_by_name=True,
        arbitrary_types_allowed=True,
        revalidate_instances="never",
    )

    #: The collection the model is stored in; set by every concrete model.
    collection_name: ClassVar[str]
    #: Changes to these documents are audited through their outbox (`OUTBOX_FIELD`).
    audited: ClassVar[bool] = False
    _decimal_fields: ClassVar[tuple[str, ...]] = ()
    _container_fields: ClassVar[tuple[str, ...]] = ()
    _read_plan: ClassVar[_ReadPlan | None] = None

    id: PyObjectId | None = Field(default=None, alias="_id")

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        super().__pydantic_init_subclass__(**kwargs)
        fields = cls.model_fields
        cls._decimal_fields = tuple(
            name for name, info in fields.items() if _mentions(info.annotation, Decimal)
        )
        cls._container_fields = tuple(
            name for name, info in fields.items() if _is_container(info.annotation)
        )
        cls._read_plan = _read_plan(cls)

    @classmethod
    def from_document(cls, raw: Mapping[str, Any]) -> Self:
        """Validate a document read from MongoDB (or about to be written)."""
        if OUTBOX_FIELD in raw:
            _OUTBOX.validate_python(raw[OUTBOX_FIELD])
            raw = {key: value for key, value in raw.items() if key != OUTBOX_FIELD}
        return cls.model_validate(raw)

    @classmethod
    def from_stored(cls, raw: Mapping[str, Any]) -> Self:
        """A document the server's validator accepted, as a client opened with
        `tz_aware=True, tzinfo=UTC` returns it (or as `to_document` built it for a write the
        server accepted), built without a second validation; see the module docstring."""
        plan = cls._read_plan
        if plan is None:
            return cls.from_document(raw)
        try:
            stored = plan.values_of(raw)
            if (len(raw) != len(stored) + (OUTBOX_FIELD in raw)
                    or not plan.acceptable(tuple(map(type, stored)))):
                return cls.from_document(raw)  # a field undeclared, or of another type
            # One copy of the document (a dict copies its own kind fastest), keys renamed.
            values = dict(raw)
            values.pop(OUTBOX_FIELD, None)
            for key, name in plan.renamed:
                values[name] = values.pop(key)
            for name, convert in plan.conversions:
                value = values[name]
                if value is not None:
                    values[name] = convert(value)
            for name, adapt in plan.adapters:
                values[name] = adapt(values[name])
        except (KeyError, ValueError, TypeError, ValidationError):
            return cls.from_document(raw)  # a field missing, or a value it cannot convert
        # What `model_construct` sets, without its per-field default handling: every field is
        # present, checked above.
        instance = cls.__new__(cls)
        object.__setattr__(instance, "__dict__", values)
        object.__setattr__(instance, "__pydantic_fields_set__", set(plan.names))
        object.__setattr__(instance, "__pydantic_extra__", None)
        object.__setattr__(instance, "__pydantic_private__", None)
        return instance

    def to_document(self) -> dict[str, Any]:
        """The BSON-ready dict: Decimal128 for money, datetimes and ObjectIds kept, `_id` first
        and left out while still None so the driver assigns one."""
        values = self.__dict__
        document: dict[str, Any] = {}
        if values["id"] is not None:
            document["_id"] = values["id"]
        document.update(values)
        del document["id"]
        for name in self._decimal_fields:
            amount = document[name]
            if amount is not None:
                document[name] = decimal_to_bson(amount)
        for name in self._container_fields:
            document[name] = bson_ready(document[name])
        return document
