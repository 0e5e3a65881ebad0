"""The base of every stored model: validation from a MongoDB document and back.

`from_document` validates a raw document as the driver returns it (Decimal128, aware datetimes,
ObjectId); `to_document` builds the BSON-ready dict straight from the field values, without a
`model_dump` round trip, because this path runs for every document the repositories touch.

Optional fields are stored as null rather than omitted, and every validator allows null for
them, so all documents of a collection have the same shape and a `$set` can clear a field.
"""

from __future__ import annotations

import types
import typing
from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal
from enum import Enum
from typing import Any, ClassVar, Self

from bson import ObjectId
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from backend.models._types import PyObjectId, decimal_to_bson

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

    @classmethod
    def from_document(cls, raw: Mapping[str, Any]) -> Self:
        """Validate a document read from MongoDB (or about to be written)."""
        if OUTBOX_FIELD in raw:
            _OUTBOX.validate_python(raw[OUTBOX_FIELD])
            raw = {key: value for key, value in raw.items() if key != OUTBOX_FIELD}
        return cls.model_validate(raw)

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
