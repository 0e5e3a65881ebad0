"""The collection declarations in `schemas/*.json`, loaded once and typed.

Each file holds one collection's `$jsonSchema` validator and its index list. Everything that
needs a validator or an index (the index sync, the tests, the data scripts) reads it from here.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any, Literal

SCHEMAS_DIR = Path(__file__).resolve().parents[2] / "schemas"

ValidationLevel = Literal["off", "strict", "moderate"]
ValidationAction = Literal["error", "warn"]

#: Index options a declaration may carry; anything else in a file is an error.
_INDEX_OPTIONS = frozenset(
    {"unique", "partialFilterExpression", "expireAfterSeconds", "collation", "sparse"}
)


class SchemaFileError(ValueError):
    """A file in `schemas/` is malformed."""


@dataclass(frozen=True, slots=True)
class IndexSpec:
    name: str
    keys: tuple[tuple[str, int], ...]
    comment: str
    unique: bool = False
    sparse: bool = False
    partial_filter: Mapping[str, Any] | None = None
    expire_after_seconds: int | None = None
    collation: Mapping[str, Any] | None = None

    @property
    def is_ttl(self) -> bool:
        return self.expire_after_seconds is not None

    def create_options(self) -> dict[str, Any]:
        """Keyword arguments for `create_index`, including the name."""
        options: dict[str, Any] = {"name": self.name}
        if self.unique:
            options["unique"] = True
        if self.sparse:
            options["sparse"] = True
        if self.partial_filter is not None:
            options["partialFilterExpression"] = dict(self.partial_filter)
        if self.expire_after_seconds is not None:
            options["expireAfterSeconds"] = self.expire_after_seconds
        if self.collation is not None:
            options["collation"] = dict(self.collation)
        return options


@dataclass(frozen=True, slots=True)
class CollectionSchema:
    name: str
    description: str
    validator: Mapping[str, Any]
    validation_level: ValidationLevel
    validation_action: ValidationAction
    indexes: tuple[IndexSpec, ...]
    path: Path = field(compare=False)

    @property
    def json_schema(self) -> Mapping[str, Any]:
        schema: Mapping[str, Any] = self.validator["$jsonSchema"]
        return schema

    @property
    def required(self) -> frozenset[str]:
        return frozenset(self.json_schema.get("required", ()))

    @property
    def properties(self) -> Mapping[str, Mapping[str, Any]]:
        props: Mapping[str, Mapping[str, Any]] = self.json_schema.get("properties", {})
        return props

    @property
    def declared_index_count(self) -> int:
        """Declared indexes plus the implicit `_id` index, as `index_information()` counts."""
        return len(self.indexes) + 1

    def index(self, name: str) -> IndexSpec:
        for spec in self.indexes:
            if spec.name == name:
                return spec
        raise KeyError(f"{self.name} declares no index named {name!r}")

    def create_options(self) -> dict[str, Any]:
        """Keyword arguments for `create_collection` (validator and its level and action)."""
        return {
            "validator": json.loads(json.dumps(self.validator)),
            "validationLevel": self.validation_level,
            "validationAction": self.validation_action,
        }


def _parse_index(collection: str, raw: Mapping[str, Any]) -> IndexSpec:
    unknown = set(raw) - _INDEX_OPTIONS - {"name", "keys", "comment"}
    if unknown:
        raise SchemaFileError(f"{collection}: index {raw.get('name')!r} has unknown {unknown}")
    name = raw.get("name")
    keys = raw.get("keys")
    if not isinstance(name, str) or not name:
        raise SchemaFileError(f"{collection}: an index has no name")
    if not isinstance(keys, list) or not keys:
        raise SchemaFileError(f"{collection}: index {name} has no keys")
    parsed: list[tuple[str, int]] = []
    for pair in keys:
        if (
            not isinstance(pair, list)
            or len(pair) != 2
            or not isinstance(pair[0], str)
            or pair[1] not in (1, -1)
        ):
            raise SchemaFileError(f"{collection}: index {name} key {pair!r} is not [field, 1|-1]")
        parsed.append((pair[0], int(pair[1])))
    comment = raw.get("comment")
    if not isinstance(comment, str) or not comment.strip():
        raise SchemaFileError(f"{collection}: index {name} must say which query it serves")
    ttl = raw.get("expireAfterSeconds")
    if ttl is not None and (not isinstance(ttl, int) or isinstance(ttl, bool) or ttl < 0):
        raise SchemaFileError(f"{collection}: index {name} expireAfterSeconds must be an int >= 0")
    return IndexSpec(
        name=name,
        keys=tuple(parsed),
        comment=comment,
        unique=bool(raw.get("unique", False)),
        sparse=bool(raw.get("sparse", False)),
        partial_filter=raw.get("partialFilterExpression"),
        expire_after_seconds=ttl,
        collation=raw.get("collation"),
    )


def load_schema_file(path: Path) -> CollectionSchema:
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as error:
        raise SchemaFileError(f"{path.name}: {error}") from error
    name = raw.get("collection")
    if name != path.stem:
        raise SchemaFileError(f"{path.name}: 'collection' must be {path.stem!r}, got {name!r}")
    validator = raw.get("validator")
    if not isinstance(validator, dict) or "$jsonSchema" not in validator:
        raise SchemaFileError(f"{path.name}: validator must hold a $jsonSchema")
    level = raw.get("validationLevel", "strict")
    action = raw.get("validationAction", "error")
    if level not in ("off", "strict", "moderate") or action not in ("error", "warn"):
        raise SchemaFileError(f"{path.name}: bad validationLevel/validationAction")
    indexes = tuple(_parse_index(name, item) for item in raw.get("indexes", []))
    names = [spec.name for spec in indexes]
    if len(set(names)) != len(names) or "_id_" in names:
        raise SchemaFileError(f"{path.name}: index names must be unique and not '_id_'")
    return CollectionSchema(
        name=name,
        description=str(raw.get("description", "")),
        validator=validator,
        validation_level=level,
        validation_action=action,
        indexes=indexes,
        path=path,
    )


class SchemaRegistry(Mapping[str, CollectionSchema]):
    """All collection schemas by collection name, in file-name order."""

    def __init__(self, schemas: Mapping[str, CollectionSchema]) -> None:
        self._schemas = dict(schemas)

    @classmethod
    def from_directory(cls, directory: Path = SCHEMAS_DIR) -> SchemaRegistry:
        files = sorted(directory.glob("*.json"))
        if not files:
            raise SchemaFileError(f"no schema files in {directory}")
        return cls({schema.name: schema for schema in map(load_schema_file, files)})

    def __getitem__(self, name: str) -> CollectionSchema:
        try:
            return self._schemas[name]
        except KeyError:
            raise KeyError(f"no schema file for collection {name!r}") from None

    def __iter__(self) -> Iterator[str]:
        return iter(self._schemas)

    def __len__(self) -> int:
        return len(self._schemas)

    def declared_index_count(self, name: str) -> int:
        return self[name].declared_index_count


@cache
def get_registry() -> SchemaRegistry:
    """The registry of the repository's `schemas/` directory, loaded once per process."""
    return SchemaRegistry.from_directory(SCHEMAS_DIR)


def get_schema(name: str) -> CollectionSchema:
    return get_registry()[name]


def declared_index_count(name: str) -> int:
    return get_registry().declared_index_count(name)
