"""One generic async repository over a collection and its model.

Stored models provide `to_document()` (the BSON-ready dict: Decimal128 money, aware UTC dates,
ObjectId ids), `from_document(raw)` (full validation) and `from_stored(raw)` (a document the
server's validator accepted, built without validating it twice: the read path here); this class
adds the queries, pagination, optimistic
concurrency, timestamps, the audit outbox and the single mapping of driver errors to domain
errors.

The generic query methods (`_find`, `_find_one`, `_page`, ...) are for subclasses only: the
services see methods named in the fund manager's words, never a MongoDB filter.

The audit outbox: an audited create or update carries its audit record inside the same
single-document write (`_outbox`, an array of records with their own ids), so the change and its
record are stored together or not at all on every server, with or without transactions. The
relay (`backend/services/audit.py`) copies each record into `audit_log` under its own id, so a
repeated copy finds it already there, and then pulls it from the document.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, ClassVar, Protocol, Self, overload

from bson import ObjectId
from bson.errors import InvalidId
from pymongo import ASCENDING, DESCENDING, ReturnDocument
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import BulkWriteError

from backend.db.types import Database
from backend.errors import InvalidData, NotFound, VersionConflict
from backend.models._base import OUTBOX_FIELD, bson_ready
from backend.models.audit_log import AuditRecord, snapshot
from backend.repositories._errors import DUPLICATE_KEY, driver_errors

Clock = Callable[[], datetime]
Filter = Mapping[str, Any]
Sort = Sequence[tuple[str, int]]

MAX_PAGE_SIZE = 100
#: Documents the relay reads at a time.
PENDING_BATCH = 100


def utcnow() -> datetime:
    # BSON dates hold milliseconds; truncating here keeps stored and returned values equal.
    return stored_time(datetime.now(UTC))


@overload
def stored_time(moment: datetime) -> datetime: ...
@overload
def stored_time(moment: None) -> None: ...
def stored_time(moment: datetime | None) -> datetime | None:
    """A moment as MongoDB stores it: to the millisecond."""
    if moment is None:
        return None
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)


class StoredModel(Protocol):
    # Read-only here, so a collection keyed by a name (`throttles`, `locks`) fits as well.
    @property
    def id(self) -> ObjectId | str | None: ...

    def to_document(self) -> dict[str, Any]: ...

    @classmethod
    def from_document(cls, raw: Mapping[str, Any]) -> Self: ...

    @classmethod
    def from_stored(cls, raw: Mapping[str, Any]) -> Self: ...


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
class PendingAudit:
    """Audit records still riding in one document, waiting for the relay."""

    document_id: Any
    records: list[dict[str, Any]]


def _entry(record: AuditRecord, after: Mapping[str, Any] | None) -> dict[str, Any]:
    """The stored form of an outbox entry: the audit record with its own id and `after`."""
    document = record.to_document()
    document.setdefault("_id", ObjectId())
    if after is not None:
        document["after"] = snapshot(after)
    return document


class Repository[M: StoredModel]:
    """CRUD, pagination, concurrency control and the audit outbox for one collection.

    Subclasses set `collection_name` and `model`; `versioned` collections carry a `version`
    integer that every update must name, so two concurrent edits cannot both win.
    """

    collection_name: ClassVar[str]
    model: type[M]
    versioned: ClassVar[bool] = True
    timestamped: ClassVar[bool] = True
    soft_delete: ClassVar[bool] = False

    def __init__(self, db: Database, *, clock: Clock = utcnow) -> None:
        self.clock = clock
        self._collection: AsyncCollection[dict[str, Any]] = db[self.collection_name]
        codec = self._collection.codec_options
        # from_stored takes dates as the driver decodes them: aware, in UTC.
        self._from_server = (self.model.from_stored if codec.tz_aware and codec.tzinfo is UTC
                             else self.model.from_document)

    # conversion -------------------------------------------------------------------------

    def _load(self, raw: Mapping[str, Any]) -> M:
        # Every document loaded here came from the server, or was just written through it.
        return self._from_server(raw)

    def _live(self, filter_: Filter) -> dict[str, Any]:
        """Soft-deleted documents are invisible unless a query asks for them explicitly."""
        query = dict(filter_)
        if self.soft_delete and "deleted_at" not in query:
            query["deleted_at"] = None
        return query

    # create -------------------------------------------------------------------------------

    def prepare(self, item: M) -> dict[str, Any]:
        document = item.to_document()
        if self.timestamped and ("created_at" not in document or not document.get("updated_at")):
            now = self.clock()
            document.setdefault("created_at", now)
            document["updated_at"] = document.get("updated_at") or now
        if self.versioned:
            document.setdefault("version", 1)
        return document

    async def create(self, item: M, *, audit: AuditRecord | None = None) -> M:
        """Insert one document; with `audit`, its record rides in the same insert."""
        document = self.prepare(item)
        if audit is not None:
            document.setdefault("_id", ObjectId())
            document[OUTBOX_FIELD] = [_entry(audit, document)]
        with driver_errors(self.collection_name):
            result = await self._collection.insert_one(document)
        document["_id"] = result.inserted_id
        return self._load(document)

    async def create_many(self, items: Sequence[M], *,
                          audits: Sequence[AuditRecord] | None = None) -> int:
        """Insert documents in one round trip, each with its audit record when given; one
        already stored (a unique key taken) is left as it is, so a repeated call stores each
        once. Returns how many were new."""
        if not items:
            return 0
        documents = []
        for index, item in enumerate(items):
            document = self.prepare(item)
            if audits is not None:
                document.setdefault("_id", ObjectId())
                document[OUTBOX_FIELD] = [_entry(audits[index], document)]
            documents.append(document)
        with driver_errors(self.collection_name):
            try:
                result = await self._collection.insert_many(documents, ordered=False)
            except BulkWriteError as error:
                details = error.details or {}
                if any(e.get("code") != DUPLICATE_KEY for e in details.get("writeErrors", [])):
                    raise
                # Every new document was written; only the ones already stored were refused.
                return int(details.get("nInserted", 0))
        return len(result.inserted_ids)

    # read ---------------------------------------------------------------------------------

    async def get(self, id_: ObjectId | str) -> M:
        oid = object_id(id_)
        with driver_errors(self.collection_name):
            raw = await self._collection.find_one(self._live({"_id": oid}))
        if raw is None:
            raise NotFound(
                f"no {self.collection_name} record with id {oid}",
                details={"collection": self.collection_name, "id": str(oid)},
            )
        return self._load(raw)

    async def find_by_id(self, id_: ObjectId) -> M | None:
        return await self._find_one({"_id": id_})

    async def by_idempotency_key(self, key: str) -> M | None:
        """The document a creating request stored under its Idempotency-Key (collections
        whose documents carry `idempotency_key`)."""
        return await self._find_one({"idempotency_key": key})

    async def _find_one(self, filter_: Filter) -> M | None:
        with driver_errors(self.collection_name):
            raw = await self._collection.find_one(self._live(filter_))
        return None if raw is None else self._load(raw)

    async def _find(
        self,
        filter_: Filter | None = None,
        *,
        sort: Sort | None = None,
        projection: Mapping[str, Any] | None = None,
        skip: int = 0,
        limit: int = 0,
    ) -> list[M]:
        with driver_errors(self.collection_name):
            cursor = self._collection.find(
                self._live(filter_ or {}),
                projection=projection,
                sort=list(sort) if sort else None,
                skip=skip,
                limit=limit,
            )
            return [self._load(raw) async for raw in cursor]

    async def _find_raw(
        self,
        filter_: Filter | None = None,
        *,
        projection: Mapping[str, Any] | None = None,
        sort: Sort | None = None,
        limit: int = 0,
    ) -> list[dict[str, Any]]:
        with driver_errors(self.collection_name):
            cursor = self._collection.find(
                self._live(filter_ or {}), projection=projection,
                sort=list(sort) if sort else None, limit=limit,
            )
            return [raw async for raw in cursor]

    async def _page(
        self,
        filter_: Filter | None = None,
        *,
        sort: Sort = (("created_at", DESCENDING),),
        page: int = 1,
        page_size: int = 20,
    ) -> Page[M]:
        """Offset pagination with the total; `_id` is appended so the order is stable. Two
        round trips, the count and the page; one when the count leaves the page empty."""
        check_page(page, page_size)
        stable = [*sort, ("_id", sort[-1][1] if sort else ASCENDING)]
        query = self._live(filter_ or {})
        with driver_errors(self.collection_name):
            total = await self._collection.count_documents(query)
        skip = (page - 1) * page_size
        if skip >= total:
            return Page(items=[], total=total, page=page, page_size=page_size)
        items = await self._find(query, sort=stable, skip=skip, limit=page_size)
        return Page(items=items, total=total, page=page, page_size=page_size)

    async def _count(self, filter_: Filter | None = None) -> int:
        with driver_errors(self.collection_name):
            return await self._collection.count_documents(self._live(filter_ or {}))

    async def _exists(self, filter_: Filter) -> bool:
        with driver_errors(self.collection_name):
            return await self._collection.find_one(self._live(filter_), {"_id": 1}) is not None

    async def _aggregate(self, pipeline: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
        with driver_errors(self.collection_name):
            cursor = await self._collection.aggregate(list(pipeline))
            return [doc async for doc in cursor]

    async def is_empty(self) -> bool:
        return not await self._exists({})

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
        audit: AuditRecord | None = None,
    ) -> M:
        """A partial `$set` returning the new document.

        On a versioned collection the caller must name the version it read; when someone else
        changed the document since, `VersionConflict` is raised and nothing is written. With
        `audit` (whose `before` is the document as read), the record rides in the same update,
        its `after` being that document with this change applied.
        """
        oid = object_id(id_)
        query: dict[str, Any] = self._live({"_id": oid, **(extra_filter or {})})
        if self.versioned:
            if expected_version is None:
                raise ValueError("a versioned update must name the version it read")
            query["version"] = expected_version
        # Changes arrive as Python values (Decimal, enums); the stored form is BSON's.
        assignments = {key: bson_ready(value) for key, value in changes.items()}
        if self.timestamped:
            assignments["updated_at"] = self.clock()
        update: dict[str, Any] = {"$set": assignments}
        increments = dict(inc or {})
        if self.versioned:
            increments["version"] = 1
        if increments:
            update["$inc"] = increments
        if unset:
            update["$unset"] = dict.fromkeys(unset, "")
        if audit is not None:
            after = {**(audit.before or {}), **assignments}
            for key, step in increments.items():
                after[key] = (after.get(key) or 0) + step
            for key in unset:
                after.pop(key, None)
            update["$push"] = {OUTBOX_FIELD: _entry(audit, after)}
        with driver_errors(self.collection_name):
            raw = await self._collection.find_one_and_update(
                query, update, return_document=ReturnDocument.AFTER
            )
        if raw is None:
            await self._raise_missing_or_conflict(oid, expected_version)
        assert raw is not None
        return self._load(raw)

    async def _raise_missing_or_conflict(
        self, oid: ObjectId, expected_version: int | None
    ) -> None:
        with driver_errors(self.collection_name):
            current = await self._collection.find_one(self._live({"_id": oid}), {"version": 1})
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

    async def delete(self, id_: ObjectId | str, *, expected_version: int | None = None) -> M:
        """Soft delete (a `deleted_at` mark) where history matters, a real delete otherwise."""
        if self.soft_delete:
            return await self.update(
                id_, {"deleted_at": self.clock()}, expected_version=expected_version,
            )
        oid = object_id(id_)
        query: dict[str, Any] = {"_id": oid}
        if self.versioned and expected_version is not None:
            query["version"] = expected_version
        with driver_errors(self.collection_name):
            raw = await self._collection.find_one_and_delete(query)
        if raw is None:
            await self._raise_missing_or_conflict(oid, expected_version)
        assert raw is not None
        return self._load(raw)

    # the audit outbox ---------------------------------------------------------------------

    async def pending_audit(
        self, *, document_id: Any = None, older_than: datetime | None = None,
        limit: int = PENDING_BATCH,
    ) -> list[PendingAudit]:
        """Documents whose audit records the relay has not copied yet (with one written at
        or before `older_than`, when given)."""
        query: dict[str, Any] = {f"{OUTBOX_FIELD}.0": {"$exists": True}}
        if older_than is not None:
            query[OUTBOX_FIELD] = {"$elemMatch": {"at": {"$lte": older_than}}}
        if document_id is not None:
            query["_id"] = document_id
        with driver_errors(self.collection_name):
            cursor = self._collection.find(query, {OUTBOX_FIELD: 1}, limit=limit)
            return [PendingAudit(raw["_id"], list(raw[OUTBOX_FIELD])) async for raw in cursor]

    async def clear_audit(self, relayed: Mapping[Any, Sequence[ObjectId]]) -> None:
        """Remove relayed records (by document) from the outboxes, in one round trip; nothing
        else of the documents changes."""
        documents = [document_id for document_id, ids in relayed.items() if ids]
        if not documents:
            return
        record_ids = [record_id for ids in relayed.values() for record_id in ids]
        with driver_errors(self.collection_name):
            await self._collection.update_many(
                {"_id": {"$in": documents}},
                {"$pull": {OUTBOX_FIELD: {"_id": {"$in": record_ids}}}},
            )


def check_page(page: int, page_size: int) -> None:
    if page < 1 or not 1 <= page_size <= MAX_PAGE_SIZE:
        raise InvalidData(
            f"page must be at least 1 and page_size between 1 and {MAX_PAGE_SIZE}",
            code="INVALID_PAGINATION",
        )
