"""One generic async repository over a collection and its model.

Stored models provide `to_document()` (the BSON-ready dict: Decimal128 money, aware UTC dates,
ObjectId ids) and `from_document(raw)`; this class adds the queries, pagination, optimistic
concurrency, timestamps and the single mapping of driver errors to domain errors.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, ClassVar, Protocol, Self

from bson import ObjectId, json_util
from bson.errors import InvalidId
from pymongo import ASCENDING, DESCENDING, ReturnDocument, UpdateOne
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase

from backend.errors import InvalidData, NotFound, VersionConflict
from backend.models._base import bson_ready
from backend.repositories._errors import driver_errors

Clock = Callable[[], datetime]
Filter = Mapping[str, Any]
Sort = Sequence[tuple[str, int]]

MAX_PAGE_SIZE = 100


def utcnow() -> datetime:
    # BSON dates hold milliseconds; truncating here keeps stored and returned values equal.
    now = datetime.now(UTC)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


class StoredModel(Protocol):
    # Read-only here, so a collection keyed by a name (`throttles`, `locks`) fits as well.
    @property
    def id(self) -> ObjectId | str | None: ...

    def to_document(self) -> dict[str, Any]: ...

    @classmethod
    def from_document(cls, raw: Mapping[str, Any]) -> Self: ...


def object_id(value: ObjectId | str, *, what: str = "id") -> ObjectId:
    """The one place where API strings become ObjectIds."""
    if isinstance(value, ObjectId):
        return value
    try:
        return ObjectId(value)
    except (InvalidId, TypeError) as error:
        raise NotFound(f"no record with {what} {value!r}", details={what: str(value)}) from error


@dataclass(frozen=True, slots=True)
class Page[T]:
    items: list[T]
    total: int
    page: int
    page_size: int

    @property
    def pages(self) -> int:
        return (self.total + self.page_size - 1) // self.page_size if self.page_size else 0


@dataclass(frozen=True, slots=True)
class CursorPage[T]:
    items: list[T]
    next_cursor: str | None


@dataclass(frozen=True, slots=True)
class BulkResult:
    matched: int
    modified: int
    upserted: int


def _encode_cursor(values: list[Any]) -> str:
    raw = json_util.dumps(values, json_options=json_util.CANONICAL_JSON_OPTIONS)
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def _decode_cursor(cursor: str) -> list[Any]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        values = json_util.loads(base64.urlsafe_b64decode(padded.encode()).decode())
    except (ValueError, json.JSONDecodeError) as error:
        raise InvalidData("the cursor is not valid", code="INVALID_CURSOR") from error
    if not isinstance(values, list):
        raise InvalidData("the cursor is not valid", code="INVALID_CURSOR")
    return values


class Repository[M: StoredModel]:
    """CRUD, pagination and concurrency control for one collection.

    Subclasses set `collection_name` and `model`; `versioned` collections carry a `version`
    integer that every update must name, so two concurrent edits cannot both win.
    """

    collection_name: ClassVar[str]
    model: type[M]
    versioned: ClassVar[bool] = True
    timestamped: ClassVar[bool] = True
    soft_delete: ClassVar[bool] = False

    def __init__(self, db: AsyncDatabase[dict[str, Any]], *, clock: Clock = utcnow) -> None:
        self.db = db
        self.clock = clock
        self.collection: AsyncCollection[dict[str, Any]] = db[self.collection_name]

    # conversion -------------------------------------------------------------------------

    def _load(self, raw: Mapping[str, Any]) -> M:
        return self.model.from_document(raw)

    def _live(self, filter_: Filter) -> dict[str, Any]:
        """Soft-deleted documents are invisible unless a query asks for them explicitly."""
        query = dict(filter_)
        if self.soft_delete and "deleted_at" not in query:
            query["deleted_at"] = None
        return query

    # create -------------------------------------------------------------------------------

    def prepare(self, item: M) -> dict[str, Any]:
        document = item.to_document()
        if self.timestamped:
            now = self.clock()
            document.setdefault("created_at", now)
            document["updated_at"] = document.get("updated_at") or now
        if self.versioned:
            document.setdefault("version", 1)
        return document

    async def create(self, item: M, *, session: AsyncClientSession | None = None) -> M:
        document = self.prepare(item)
        with driver_errors(self.collection_name):
            result = await self.collection.insert_one(document, session=session)
        document["_id"] = result.inserted_id
        return self._load(document)

    # read ---------------------------------------------------------------------------------

    async def get(self, id_: ObjectId | str, *, session: AsyncClientSession | None = None) -> M:
        oid = object_id(id_)
        with driver_errors(self.collection_name):
            raw = await self.collection.find_one(self._live({"_id": oid}), session=session)
        if raw is None:
            raise NotFound(
                f"no {self.collection_name} record with id {oid}",
                details={"collection": self.collection_name, "id": str(oid)},
            )
        return self._load(raw)

    async def find_one(
        self, filter_: Filter, *, session: AsyncClientSession | None = None
    ) -> M | None:
        with driver_errors(self.collection_name):
            raw = await self.collection.find_one(self._live(filter_), session=session)
        return None if raw is None else self._load(raw)

    async def get_by(self, field: str, value: Any) -> M:
        found = await self.find_one({field: value})
        if found is None:
            raise NotFound(
                f"no {self.collection_name} record with {field} {value!r}",
                details={"collection": self.collection_name, field: str(value)},
            )
        return found

    async def find(
        self,
        filter_: Filter | None = None,
        *,
        sort: Sort | None = None,
        projection: Mapping[str, Any] | None = None,
        skip: int = 0,
        limit: int = 0,
        session: AsyncClientSession | None = None,
    ) -> list[M]:
        with driver_errors(self.collection_name):
            cursor = self.collection.find(
                self._live(filter_ or {}),
                projection=projection,
                sort=list(sort) if sort else None,
                skip=skip,
                limit=limit,
                session=session,
            )
            return [self._load(raw) async for raw in cursor]

    async def find_raw(
        self,
        filter_: Filter | None = None,
        *,
        projection: Mapping[str, Any] | None = None,
        sort: Sort | None = None,
        limit: int = 0,
    ) -> list[dict[str, Any]]:
        with driver_errors(self.collection_name):
            cursor = self.collection.find(
                self._live(filter_ or {}), projection=projection,
                sort=list(sort) if sort else None, limit=limit,
            )
            return [raw async for raw in cursor]

    async def page(
        self,
        filter_: Filter | None = None,
        *,
        sort: Sort = (("created_at", DESCENDING),),
        page: int = 1,
        page_size: int = 20,
    ) -> Page[M]:
        """Offset pagination with the total; `_id` is appended so the order is stable."""
        if page < 1 or not 1 <= page_size <= MAX_PAGE_SIZE:
            raise InvalidData(
                f"page must be at least 1 and page_size between 1 and {MAX_PAGE_SIZE}",
                code="INVALID_PAGINATION",
            )
        stable = [*sort, ("_id", sort[-1][1] if sort else ASCENDING)]
        query = self._live(filter_ or {})
        with driver_errors(self.collection_name):
            total = await self.collection.count_documents(query)
        items = await self.find(query, sort=stable, skip=(page - 1) * page_size, limit=page_size)
        return Page(items=items, total=total, page=page, page_size=page_size)

    async def keyset(
        self,
        filter_: Filter | None = None,
        *,
        sort_field: str = "created_at",
        direction: int = DESCENDING,
        after: str | None = None,
        limit: int = 50,
    ) -> CursorPage[M]:
        """Cursor pagination for long lists: no skipping, stable under inserts."""
        if not 1 <= limit <= MAX_PAGE_SIZE:
            raise InvalidData(f"limit must be between 1 and {MAX_PAGE_SIZE}",
                              code="INVALID_PAGINATION")
        query = self._live(filter_ or {})
        if after:
            last_value, last_id = _decode_cursor(after)
            op = "$lt" if direction == DESCENDING else "$gt"
            query = {"$and": [query, {"$or": [
                {sort_field: {op: last_value}},
                {sort_field: last_value, "_id": {op: last_id}},
            ]}]}
        with driver_errors(self.collection_name):
            cursor = self.collection.find(
                query, sort=[(sort_field, direction), ("_id", direction)], limit=limit + 1
            )
            raws = [raw async for raw in cursor]
        more = len(raws) > limit
        raws = raws[:limit]
        next_cursor = (
            _encode_cursor([raws[-1].get(sort_field), raws[-1]["_id"]]) if more and raws else None
        )
        return CursorPage(items=[self._load(r) for r in raws], next_cursor=next_cursor)

    async def count(self, filter_: Filter | None = None) -> int:
        with driver_errors(self.collection_name):
            return await self.collection.count_documents(self._live(filter_ or {}))

    async def exists(self, filter_: Filter) -> bool:
        with driver_errors(self.collection_name):
            return await self.collection.find_one(self._live(filter_), {"_id": 1}) is not None

    async def aggregate(
        self, pipeline: Sequence[Mapping[str, Any]], *, session: AsyncClientSession | None = None
    ) -> list[dict[str, Any]]:
        with driver_errors(self.collection_name):
            cursor = await self.collection.aggregate(list(pipeline), session=session)
            return [doc async for doc in cursor]

    # update -------------------------------------------------------------------------------

    async def update(
        self,
        id_: ObjectId | str,
        changes: Mapping[str, Any],
        *,
        expected_version: int | None = None,
        extra_filter: Filter | None = None,
        inc: Mapping[str, Any] | None = None,
        unset: Sequence[str] = (),
        session: AsyncClientSession | None = None,
    ) -> M:
        """A partial `$set` returning the new document.

        On a versioned collection the caller must name the version it read; when someone else
        changed the document since, `VersionConflict` is raised and nothing is written.
        """
        oid = object_id(id_)
        query: dict[str, Any] = self._live({"_id": oid, **(extra_filter or {})})
        if self.versioned:
            if expected_version is None:
                raise ValueError("a versioned update must name the version it read")
            query["version"] = expected_version
        # Changes arrive as Python values (Decimal, enums); the stored form is BSON's.
        update: dict[str, Any] = {"$set": {key: bson_ready(value)
                                           for key, value in changes.items()}}
        if self.timestamped:
            update["$set"]["updated_at"] = self.clock()
        increments = dict(inc or {})
        if self.versioned:
            increments["version"] = 1
        if increments:
            update["$inc"] = increments
        if unset:
            update["$unset"] = dict.fromkeys(unset, "")
        with driver_errors(self.collection_name):
            raw = await self.collection.find_one_and_update(
                query, update, return_document=ReturnDocument.AFTER, session=session
            )
        if raw is None:
            await self._raise_missing_or_conflict(oid, expected_version, session=session)
        assert raw is not None
        return self._load(raw)

    async def _raise_missing_or_conflict(
        self, oid: ObjectId, expected_version: int | None,
        *, session: AsyncClientSession | None = None,
    ) -> None:
        with driver_errors(self.collection_name):
            current = await self.collection.find_one(
                self._live({"_id": oid}), {"version": 1}, session=session
            )
        if current is None:
            raise NotFound(
                f"no {self.collection_name} record with id {oid}",
                details={"collection": self.collection_name, "id": str(oid)},
            )
        raise VersionConflict(
            f"the {self.collection_name} record {oid} was changed by someone else",
            details={"expected_version": expected_version,
                     "current_version": current.get("version")},
        )

    # delete -------------------------------------------------------------------------------

    async def delete(
        self,
        id_: ObjectId | str,
        *,
        expected_version: int | None = None,
        session: AsyncClientSession | None = None,
    ) -> M:
        """Soft delete (a `deleted_at` mark) where history matters, a real delete otherwise."""
        if self.soft_delete:
            return await self.update(
                id_, {"deleted_at": self.clock()}, expected_version=expected_version,
                session=session,
            )
        oid = object_id(id_)
        query: dict[str, Any] = {"_id": oid}
        if self.versioned and expected_version is not None:
            query["version"] = expected_version
        with driver_errors(self.collection_name):
            raw = await self.collection.find_one_and_delete(query, session=session)
        if raw is None:
            await self._raise_missing_or_conflict(oid, expected_version, session=session)
        assert raw is not None
        return self._load(raw)

    # bulk ---------------------------------------------------------------------------------

    async def bulk_upsert(
        self,
        items: Sequence[M],
        *,
        key_fields: Sequence[str],
        session: AsyncClientSession | None = None,
    ) -> BulkResult:
        """Insert or replace-by-key in one round trip per 1,000 documents; an existing
        document keeps its `_id` and `created_at`, and its version is incremented."""
        if not items:
            return BulkResult(0, 0, 0)
        now = self.clock()
        operations = []
        for item in items:
            document = item.to_document()
            document.pop("_id", None)
            key = {field: document[field] for field in key_fields}
            on_insert: dict[str, Any] = {}
            if self.timestamped:
                on_insert["created_at"] = document.pop("created_at", None) or now
                document["updated_at"] = now
            update: dict[str, Any] = {"$set": document}
            if self.versioned:
                document.pop("version", None)
                update["$inc"] = {"version": 1}
            if on_insert:
                update["$setOnInsert"] = on_insert
            operations.append(UpdateOne(key, update, upsert=True))
        matched = modified = upserted = 0
        with driver_errors(self.collection_name):
            for start in range(0, len(operations), 1000):
                result = await self.collection.bulk_write(
                    operations[start:start + 1000], ordered=False, session=session
                )
                matched += result.matched_count
                modified += result.modified_count
                upserted += result.upserted_count
        return BulkResult(matched, modified, upserted)
