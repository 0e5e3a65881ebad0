"""The audit trail: who changed what, when, with the before and after.

Services write through `AuditTrail.change`, which applies a change and appends its record
together: in one transaction where the server supports them, otherwise change first and, if the
audit write fails, the change is compensated. Either way a failed audit write fails the change.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from bson import ObjectId
from pydantic import BaseModel
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import PyMongoError
from tenacity import AsyncRetrying, retry_if_exception, stop_after_attempt, wait_random

from backend.log import request_id_var
from backend.models._base import bson_ready
from backend.models.audit_log import ActorType, AuditRecord
from backend.repositories._tx import atomic
from backend.repositories.audit_log import AuditLogRepository
from backend.repositories.base import Clock, Repository, StoredModel, utcnow

#: Never copied into an audit snapshot.
SECRET_FIELDS = frozenset({
    "password_hash", "investor_password_encrypted", "access_token_encrypted",
    "refresh_token_encrypted", "token_hash", "session_token_hash",
})


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


def snapshot(value: Any) -> dict[str, Any] | None:
    """A stored-form copy of a model or document, without secrets."""
    if value is None:
        return None
    if isinstance(value, BaseModel) and hasattr(value, "to_document"):
        document: Mapping[str, Any] = value.to_document()
    elif isinstance(value, BaseModel):
        document = value.model_dump()
    else:
        document = value
    return {k: bson_ready(v) for k, v in document.items() if k not in SECRET_FIELDS}


WRITE_CONFLICT = 112


def _transient(error: BaseException) -> bool:
    """A transaction that lost a write conflict: it was aborted whole, so a retry is safe.

    MongoDB labels these `TransientTransactionError` (code 112); the embedded development
    server reports the same conflict at commit with only its message, hence the text check.
    """
    if not isinstance(error, PyMongoError):
        return False
    if error.has_error_label("TransientTransactionError"):
        return True
    code = getattr(error, "code", None)
    return code == WRITE_CONFLICT or "write conflict" in str(error).lower()


class AuditTrail:
    def __init__(self, db: AsyncDatabase[dict[str, Any]], *, clock: Clock = utcnow) -> None:
        self.db = db
        self.clock = clock
        self.log = AuditLogRepository(db, clock=clock)

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
        session: AsyncClientSession | None = None,
    ) -> AuditRecord:
        record = AuditRecord(
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
        return await self.log.append(record, session=session)

    async def change[T](
        self,
        actor: Actor,
        *,
        action: str,
        entity_type: str,
        apply: Callable[[AsyncClientSession | None], Awaitable[T]],
        entity_id: Callable[[T], str],
        before: Any = None,
        after: Callable[[T], Any] | None = None,
        reason: str | None = None,
        compensate: Callable[[T], Awaitable[None]] | None = None,
    ) -> T:
        """Apply a change and append its audit record, both or neither."""
        # Concurrent transactions touching the same keys abort with a transient error; the
        # whole transaction is retried, which is safe because nothing of it was committed.
        async for attempt in AsyncRetrying(
            stop=stop_after_attempt(5), wait=wait_random(0.01, 0.1),
            retry=retry_if_exception(_transient), reraise=True,
        ):
            with attempt:
                async with atomic(self.db) as session:
                    result = await apply(session)
                    try:
                        await self.record(
                            actor, action=action, entity_type=entity_type,
                            entity_id=entity_id(result), before=before,
                            after=after(result) if after else result, reason=reason,
                            session=session,
                        )
                    except BaseException:
                        if session is None and compensate is not None:
                            await compensate(result)
                        raise
        return result

    async def create[M: StoredModel](
        self, repo: Repository[M], item: M, *, actor: Actor, action: str, entity_type: str,
        entity_id: Callable[[M], str] | None = None,
    ) -> M:
        """Insert a document with its audit record; without a transaction a failed audit write
        removes the new document again."""

        async def remove(created: M) -> None:
            await repo.collection.delete_one({"_id": created.id})

        return await self.change(
            actor, action=action, entity_type=entity_type,
            apply=lambda session: repo.create(item, session=session),
            entity_id=entity_id or (lambda created: str(created.id)), compensate=remove)

    async def update[M: StoredModel](
        self, repo: Repository[M], current: M, changes: Mapping[str, Any], *, actor: Actor,
        action: str, entity_type: str, reason: str | None = None,
        expected_version: int | None = None, entity_id: Callable[[M], str] | None = None,
    ) -> M:
        """A versioned `$set` with its audit record (before and after).

        Without a transaction, a failed audit write puts the previous document back, but only
        while nobody else has changed it since (the version still matches).
        """
        assert current.id is not None
        version = expected_version if expected_version is not None else getattr(
            current, "version", None)

        async def restore(updated: M) -> None:
            await repo.collection.replace_one(
                {"_id": current.id, "version": getattr(updated, "version", None)},
                current.to_document())

        return await self.change(
            actor, action=action, entity_type=entity_type, before=current, reason=reason,
            apply=lambda session: repo.update(current.id, changes,  # type: ignore[arg-type]
                                              expected_version=version, session=session),
            entity_id=entity_id or (lambda updated: str(updated.id)), compensate=restore)
