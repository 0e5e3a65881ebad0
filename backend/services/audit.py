"""The audit trail: who changed what, when, with the before and after.

A change that matters to a regulator and its audit record are written in ONE single-document
operation: the record rides in the changed document's outbox (`_outbox`, see
`backend/repositories/base.py`). MongoDB makes one document's write atomic on every server, so
there is no moment, and no fault, at which the change is stored without its record or the
record without its change, and no transaction or compensation is needed.

The relay then copies each outbox record into `audit_log` under the record's own id (a repeat
copies nothing) and pulls it from the document. It runs right after each audited write (the
fast path), in the API process and the worker on a timer, and in `verify --fix`; the timer and
`verify --fix` only take records older than a grace period, so they never race an operation
that is still in flight.

Events that change no document (a sign-in, a data script's run) are appended to `audit_log`
directly: one insert, atomic on its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from bson import ObjectId

from backend.errors import DatabaseUnavailable
from backend.log import request_id_var
from backend.models.audit_log import ActorType, AuditRecord, snapshot
from backend.repositories.audit_log import AuditLogRepository
from backend.repositories.base import (
    PENDING_BATCH,
    Clock,
    Page,
    Repository,
    StoredModel,
    utcnow,
)

logger = logging.getLogger(__name__)

#: How old an outbox record must be before the timer's relay takes it.
RELAY_GRACE = timedelta(seconds=10)


@dataclass(frozen=True, slots=True)
class Actor:
    type: ActorType
    id: ObjectId | None = None

    @classmethod
    def system(cls) -> Actor:
        return cls(ActorType.SYSTEM)

    @classmethod
    def script(cls, name: str = "script") -> Actor:
        return cls(ActorType.SCRIPT)

    @classmethod
    def user(cls, user_id: ObjectId | None, user_type: str) -> Actor:
        return cls(ActorType(user_type), user_id)


class AuditTrail:
    def __init__(self, log: AuditLogRepository, *, clock: Clock = utcnow) -> None:
        self.clock = clock
        self.log = log
        #: Every repository whose documents carry an outbox, for the relay's sweep.
        self.audited: list[Repository[Any]] = []

    def watch(self, *repositories: Repository[Any]) -> None:
        for repository in repositories:
            if all(r.collection_name != repository.collection_name for r in self.audited):
                self.audited.append(repository)

    def draft(self, actor: Actor, *, action: str, entity_type: str, entity_id: str,
              before: Any = None, after: Any = None, reason: str | None = None) -> AuditRecord:
        return AuditRecord(
            id=ObjectId(),
            actor_id=actor.id,
            actor_type=actor.type,
            action=action,
            entity_type=entity_type,
            entity_id=entity_id,
            before=snapshot(before),
            after=snapshot(after),
            reason=reason,
            at=self.clock(),
            request_id=request_id_var.get(),
        )

    async def search(self, **filters: Any) -> Page[AuditRecord]:
        return await self.log.search(**filters)

    async def record(
        self,
        actor: Actor,
        *,
        action: str,
        entity_type: str,
        entity_id: str,
        before: Any = None,
        after: Any = None,
        reason: str | None = None,
    ) -> AuditRecord:
        """An event that changes no document of its own, appended directly."""
        return await self.log.append(self.draft(
            actor, action=action, entity_type=entity_type, entity_id=entity_id,
            before=before, after=after, reason=reason))

    async def create[M: StoredModel](
        self, repo: Repository[M], item: M, *, actor: Actor, action: str, entity_type: str,
        entity_id: Callable[[M], str] | None = None, deliver: bool = True,
    ) -> M:
        """Insert a document with its audit record in the same insert.

        `deliver=False` leaves the record in the outbox for the caller to deliver once a
        multi-step operation is complete (or for the relay's timer).
        """
        if item.id is None:
            # Known before the insert, so the record can name it.
            setattr(item, "id", ObjectId())  # noqa: B010
        record = self.draft(actor, action=action, entity_type=entity_type,
                            entity_id=entity_id(item) if entity_id else str(item.id))
        created = await repo.create(item, audit=record)
        if deliver:
            await self.deliver(repo, created.id)
        return created

    async def update[M: StoredModel](
        self, repo: Repository[M], current: M, changes: Mapping[str, Any], *, actor: Actor,
        action: str, entity_type: str, reason: str | None = None,
        expected_version: int | None = None, entity_id: Callable[[M], str] | None = None,
        extra_filter: Mapping[str, Any] | None = None, deliver: bool = True,
    ) -> M:
        """A versioned `$set` with its audit record (before and after) in the same update."""
        assert current.id is not None
        version = expected_version if expected_version is not None else getattr(
            current, "version", None)
        record = self.draft(actor, action=action, entity_type=entity_type,
                            entity_id=entity_id(current) if entity_id else str(current.id),
                            before=current, reason=reason)
        updated = await repo.update(current.id, changes, expected_version=version,
                                    extra_filter=extra_filter, audit=record)
        if deliver:
            await self.deliver(repo, updated.id)
        return updated

    async def deliver(self, repo: Repository[Any], document_id: Any) -> int:
        """The fast path of the relay, for one document just written. The change is stored
        with its record whatever happens here: when the database fails now, the relay's timer
        or `verify --fix` finishes the copy."""
        try:
            return await self._relay(repo, document_id=document_id)
        except DatabaseUnavailable as error:
            logger.warning("audit relay deferred for %s %s: %s", repo.collection_name,
                           document_id, type(error).__name__)
            return 0

    async def relay(self, *, older_than: datetime | None = None,
                    repositories: Sequence[Repository[Any]] | None = None) -> int:
        """Copy every pending outbox record (older than `older_than`, when given) into the
        audit log; returns how many were copied for the first time."""
        copied = 0
        for repo in repositories if repositories is not None else self.audited:
            copied += await self._relay(repo, older_than=older_than)
        return copied

    async def relay_due(self) -> int:
        """The timer's pass: only records older than the grace period."""
        return await self.relay(older_than=self.clock() - RELAY_GRACE)

    async def _relay(self, repo: Repository[Any], *, document_id: Any = None,
                     older_than: datetime | None = None) -> int:
        """One batch of documents at a time: their due records copied in one insert (a record
        the log refuses stays in its outbox, where `make verify` reports it, and holds up no
        other), then pulled from the outboxes in one update."""
        copied = 0
        while True:
            batch = await repo.pending_audit(document_id=document_id, older_than=older_than)
            due = {pending.document_id: [entry for entry in pending.records
                                         if older_than is None or entry["at"] <= older_than]
                   for pending in batch}
            stored, inserted = await self.log.append_once(
                [entry for entries in due.values() for entry in entries])
            copied += inserted
            relayed = {document: [entry["_id"] for entry in entries if entry["_id"] in stored]
                       for document, entries in due.items()}
            await repo.clear_audit(relayed)
            if (document_id is not None or not any(relayed.values())
                    or len(batch) < PENDING_BATCH):
                return copied


async def relay_forever(trail: AuditTrail, *, interval_seconds: float,
                        stop: asyncio.Event) -> int:
    """The relay's timer, in the API process and the worker: `relay_due` every
    `interval_seconds` until `stop` is set; returns how many passes completed.

    Nothing but `stop` (or cancellation) ends it: a database that cannot be reached is logged
    and tried again at the next tick, and so is anything unexpected.
    """
    passes = 0
    while not stop.is_set():
        try:
            copied = await trail.relay_due()
        except DatabaseUnavailable as error:
            logger.warning("audit relay waits for the database: %s", error.message)
        except Exception:
            logger.exception("audit relay pass failed; retrying at the next interval")
        else:
            passes += 1
            if copied:
                logger.info("audit relay copied %d record(s) into the audit log", copied)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=interval_seconds)
    return passes
