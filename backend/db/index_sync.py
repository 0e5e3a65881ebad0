"""Bring a database in line with `schemas/*.json`: collections, validators and indexes.

`plan()` only reads (list_collections, index_information) and says what differs; `apply()` carries
the plan out. Nothing is ever dropped unless `allow_drop` is given: an index with a declared name
but another specification, or an index nobody declared, is reported as drift and left in place.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from bson import SON
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import CollectionInvalid, OperationFailure, PyMongoError

from backend.db.schema_registry import CollectionSchema, IndexSpec, get_registry

#: Server error code when a collection is created by someone else between plan and apply.
_NAMESPACE_EXISTS = 48
_ID_INDEX = "_id_"


class ValidatorAction(StrEnum):
    NONE = "none"
    CREATE = "create"  # the collection is created with its validator
    UPDATE = "update"  # collMod, because the stored validator differs from the file


class DriftKind(StrEnum):
    CHANGED = "changed"  # the declared name exists with another specification
    UNDECLARED = "undeclared"  # an index nobody declared
    CONFLICT = "conflict"  # undeclared, and its keys block creating a declared index


@dataclass(frozen=True, slots=True)
class IndexDrift:
    collection: str
    name: str
    kind: DriftKind
    detail: str
    declared: IndexSpec | None = None


@dataclass(slots=True)
class CollectionPlan:
    name: str
    schema: CollectionSchema
    exists: bool
    validator_action: ValidatorAction
    present_indexes: tuple[str, ...]
    to_create: list[IndexSpec] = field(default_factory=list)
    drift: list[IndexDrift] = field(default_factory=list)

    @property
    def declared(self) -> int:
        return self.schema.declared_index_count

    @property
    def present(self) -> int:
        return len(self.present_indexes)

    @property
    def in_sync(self) -> bool:
        return (
            self.validator_action is ValidatorAction.NONE and not self.to_create and not self.drift
        )


@dataclass(slots=True)
class SyncPlan:
    collections: list[CollectionPlan]

    @property
    def in_sync(self) -> bool:
        return all(item.in_sync for item in self.collections)

    @property
    def indexes_to_create(self) -> int:
        return sum(len(item.to_create) for item in self.collections)

    @property
    def drift(self) -> list[IndexDrift]:
        return [d for item in self.collections for d in item.drift]

    def describe(self) -> list[str]:
        """One line per intended change or finding, for `--dry-run`."""
        lines: list[str] = []
        for item in self.collections:
            if item.validator_action is ValidatorAction.CREATE:
                lines.append(f"{item.name}: create collection with its validator")
            elif item.validator_action is ValidatorAction.UPDATE:
                lines.append(f"{item.name}: update validator (collMod)")
            lines.extend(f"{item.name}: create index {spec.name}" for spec in item.to_create)
            lines.extend(f"{item.name}: drift ({d.kind}) {d.name}: {d.detail}" for d in item.drift)
        return lines


@dataclass(slots=True)
class CollectionReport:
    collection: str
    declared: int
    present: int
    created: int = 0
    drifted: int = 0
    dropped: int = 0
    validator: str = ValidatorAction.NONE.value
    errors: list[str] = field(default_factory=list)


@dataclass(slots=True)
class SyncReport:
    rows: list[CollectionReport]
    dry_run: bool
    drift: list[IndexDrift]

    @property
    def created(self) -> int:
        return sum(row.created for row in self.rows)

    @property
    def drifted(self) -> int:
        return sum(row.drifted for row in self.rows)

    @property
    def errors(self) -> list[str]:
        return [f"{row.collection}: {error}" for row in self.rows for error in row.errors]

    @property
    def exit_code(self) -> int:
        """0 in sync, 1 drift left (or, in a dry run, changes pending), 2 on error."""
        if self.errors:
            return 2
        pending = self.dry_run and any(
            row.created or row.validator != ValidatorAction.NONE.value for row in self.rows
        )
        return 1 if self.drifted or pending else 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "dry_run": self.dry_run,
            "exit_code": self.exit_code,
            "collections": [
                {
                    "collection": row.collection,
                    "declared": row.declared,
                    "present": row.present,
                    "created": row.created,
                    "drifted": row.drifted,
                    "dropped": row.dropped,
                    "validator": row.validator,
                    "errors": row.errors,
                }
                for row in self.rows
            ],
            "drift": [
                {
                    "collection": d.collection,
                    "index": d.name,
                    "kind": d.kind.value,
                    "detail": d.detail,
                }
                for d in self.drift
            ],
        }


def _plain(value: Any) -> Any:
    """SON, tuples and integral floats from the server made comparable with the JSON file."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _present_spec(info: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "keys": [[str(k), _plain(v)] for k, v in info.get("key", [])],
        "unique": bool(info.get("unique", False)),
        "sparse": bool(info.get("sparse", False)),
        "partialFilterExpression": _plain(info.get("partialFilterExpression")),
        "expireAfterSeconds": _plain(info.get("expireAfterSeconds")),
    }


def _declared_spec(spec: IndexSpec) -> dict[str, Any]:
    return {
        "keys": [[k, v] for k, v in spec.keys],
        "unique": spec.unique,
        "sparse": spec.sparse,
        "partialFilterExpression": _plain(spec.partial_filter),
        "expireAfterSeconds": spec.expire_after_seconds,
    }


def _collation_differs(spec: IndexSpec, info: Mapping[str, Any]) -> str | None:
    present = info.get("collation")
    if spec.collation is None:
        if present is None or _plain(present).get("locale") == "simple":
            return None
        return f"collation {_plain(present)} not declared"
    if present is None:
        return f"collation {dict(spec.collation)} missing"
    present_plain = _plain(present)
    # The server fills in every collation field; only the declared ones are compared.
    for key, value in spec.collation.items():
        if present_plain.get(key) != value:
            return f"collation {key}={present_plain.get(key)!r}, declared {value!r}"
    return None


def index_differences(spec: IndexSpec, info: Mapping[str, Any]) -> list[str]:
    """What differs between a declared index and the one the server reports under its name."""
    declared = _declared_spec(spec)
    present = _present_spec(info)
    differences = [
        f"{key} is {present[key]!r}, declared {declared[key]!r}"
        for key in declared
        if declared[key] != present[key]
    ]
    collation = _collation_differs(spec, info)
    if collation:
        differences.append(collation)
    return differences


def _same_key_pattern(spec: IndexSpec, info: Mapping[str, Any]) -> bool:
    present_keys = [[str(k), _plain(v)] for k, v in info.get("key", [])]
    return present_keys == [[k, v] for k, v in spec.keys] and (
        _collation_differs(spec, info) is None
    )


def _canonical(value: Any) -> str:
    return json.dumps(_plain(value), sort_keys=True, default=str)


def validator_differs(schema: CollectionSchema, options: Mapping[str, Any]) -> bool:
    """True when the stored validator, level or action is not the declared one."""
    return (
        _canonical(options.get("validator")) != _canonical(schema.validator)
        or options.get("validationLevel", "strict") != schema.validation_level
        or options.get("validationAction", "error") != schema.validation_action
    )


async def plan(
    db: AsyncDatabase[Any], schemas: Mapping[str, CollectionSchema] | None = None
) -> SyncPlan:
    """Compare the database with the declarations; reads only."""
    declared = get_registry() if schemas is None else schemas
    existing: dict[str, Mapping[str, Any]] = {}
    cursor = await db.list_collections()
    async for entry in cursor:
        existing[entry["name"]] = entry.get("options", {})

    plans: list[CollectionPlan] = []
    for name, schema in declared.items():
        if name not in existing:
            plans.append(
                CollectionPlan(
                    name=name,
                    schema=schema,
                    exists=False,
                    validator_action=ValidatorAction.CREATE,
                    present_indexes=(),
                    to_create=list(schema.indexes),
                )
            )
            continue
        info: Mapping[str, Any] = await db[name].index_information()
        action = (
            ValidatorAction.UPDATE
            if validator_differs(schema, existing[name])
            else ValidatorAction.NONE
        )
        item = CollectionPlan(
            name=name,
            schema=schema,
            exists=True,
            validator_action=action,
            present_indexes=tuple(info),
        )
        declared_names = {spec.name for spec in schema.indexes}
        undeclared = {n: i for n, i in info.items() if n != _ID_INDEX and n not in declared_names}
        blocked: set[str] = set()
        for spec in schema.indexes:
            if spec.name in info:
                differences = index_differences(spec, info[spec.name])
                if differences:
                    item.drift.append(
                        IndexDrift(name, spec.name, DriftKind.CHANGED, "; ".join(differences), spec)
                    )
                continue
            for other, other_info in undeclared.items():
                if _same_key_pattern(spec, other_info):
                    # The server refuses a second index on the same keys under another name.
                    item.drift.append(
                        IndexDrift(
                            name,
                            other,
                            DriftKind.CONFLICT,
                            f"same keys as declared {spec.name}, which it blocks",
                            spec,
                        )
                    )
                    blocked.add(other)
                    break
            else:
                item.to_create.append(spec)
        for other, other_info in undeclared.items():
            if other not in blocked:
                keys = [[str(k), _plain(v)] for k, v in other_info.get("key", [])]
                item.drift.append(
                    IndexDrift(name, other, DriftKind.UNDECLARED, f"keys {keys} not declared")
                )
        plans.append(item)
    return SyncPlan(plans)


async def _create_index(db: AsyncDatabase[Any], collection: str, spec: IndexSpec) -> None:
    await db[collection].create_index(list(spec.keys), **spec.create_options())


async def _apply_collection(
    db: AsyncDatabase[Any], item: CollectionPlan, row: CollectionReport, *, allow_drop: bool
) -> None:
    schema = item.schema
    if item.validator_action is ValidatorAction.CREATE:
        try:
            await db.create_collection(item.name, **schema.create_options())
        except CollectionInvalid:
            pass  # created meanwhile by another process; its validator is checked next run
        except OperationFailure as error:
            if error.code != _NAMESPACE_EXISTS:
                raise
        row.validator = "created"
    elif item.validator_action is ValidatorAction.UPDATE:
        try:
            await db.command(SON([("collMod", item.name), *schema.create_options().items()]))
            row.validator = "updated"
        except PyMongoError as error:
            row.validator = "update failed"
            row.errors.append(f"collMod: {_first_line(error)}")

    # One failing index (e.g. unique refused because the data holds duplicates) must not
    # keep the others from being created.
    for spec in item.to_create:
        try:
            await _create_index(db, item.name, spec)
            row.created += 1
        except PyMongoError as error:
            row.errors.append(f"index {spec.name}: {_first_line(error)}")

    for drift in item.drift:
        if not allow_drop:
            row.drifted += 1
            continue
        try:
            await db[item.name].drop_index(drift.name)
            row.dropped += 1
            if drift.declared is not None:
                await _create_index(db, item.name, drift.declared)
                row.created += 1
        except PyMongoError as error:
            row.drifted += 1
            row.errors.append(f"index {drift.name}: {_first_line(error)}")


async def apply(
    db: AsyncDatabase[Any],
    sync_plan: SyncPlan,
    *,
    allow_drop: bool = False,
    dry_run: bool = False,
) -> SyncReport:
    """Carry out a plan; with `dry_run` nothing is written and the report shows what would be.

    A failure in one collection (for example a unique index refused because the data already
    holds duplicates) is recorded in that collection's row and the others still proceed.
    """
    rows: list[CollectionReport] = []
    for item in sync_plan.collections:
        row = CollectionReport(collection=item.name, declared=item.declared, present=item.present)
        rows.append(row)
        if dry_run:
            row.created = len(item.to_create)
            row.drifted = len(item.drift)
            if item.validator_action is not ValidatorAction.NONE:
                row.validator = f"would {item.validator_action.value}"
            continue
        try:
            await _apply_collection(db, item, row, allow_drop=allow_drop)
        except PyMongoError as error:
            row.errors.append(_first_line(error))
            continue
        row.present = len(await db[item.name].index_information())
    return SyncReport(rows=rows, dry_run=dry_run, drift=sync_plan.drift)


async def sync(
    db: AsyncDatabase[Any],
    schemas: Mapping[str, CollectionSchema] | None = None,
    *,
    allow_drop: bool = False,
    dry_run: bool = False,
) -> SyncReport:
    """Plan and apply in one call, as the API does at start-up in development and tests."""
    return await apply(db, await plan(db, schemas), allow_drop=allow_drop, dry_run=dry_run)


def _first_line(error: BaseException) -> str:
    details = getattr(error, "details", None)
    message = details.get("errmsg") if isinstance(details, Mapping) else None
    text = str(message or error).strip().splitlines()
    return f"{type(error).__name__}: {text[0] if text else ''}"
