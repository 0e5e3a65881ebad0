"""The audit trail as the data scripts see it: one record per script run, the table of audited
collections (how each one's documents are named in `audit_log` and which actions record their
creation), and the records a script writes when it removes or imports audited documents.

Legacy and imported data: a document that came into the database outside the API (a legacy
user migrated by `validate-data --fix`) enters the audit trail through an `<entity>.import`
record, written by the script that brought it in, in the same update as its migration. Seeds
go through the services, so their documents carry their ordinary creation records. A script
that removes audited documents (`seed --reset`, `dedupe`) first appends one `<entity>.delete`
or `<entity>.quarantine` record per document, so the records that name them stay explained.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from bson import ObjectId
from pymongo.asynchronous.database import AsyncDatabase

from backend.log import request_id_var
from backend.models.audit_log import ActorType, AuditRecord, snapshot
from backend.repositories.audit_log import AuditLogRepository
from backend.repositories.base import utcnow
from backend.services.audit import Actor, AuditTrail

_BATCH = 500


@dataclass(frozen=True, slots=True)
class AuditedCollection:
    """How one audited collection's documents appear in `audit_log`."""

    collection: str
    entity_type: str
    #: The document field a record's `entity_id` holds (as a string).
    entity_key: str
    #: The actions that record a document's creation (besides `<entity_type>.import`).
    created_by: frozenset[str]
    #: A TTL field: a record of a document past this moment is explained by the expiry.
    expires_field: str | None = None

    @property
    def creation_actions(self) -> frozenset[str]:
        return self.created_by | {f"{self.entity_type}.import"}

    def entity_id(self, document: Mapping[str, Any]) -> str | None:
        value = document.get(self.entity_key)
        return None if value is None else str(value)


AUDITED_COLLECTIONS: tuple[AuditedCollection, ...] = (
    AuditedCollection("users", "user", "_id", frozenset({"user.create"})),
    AuditedCollection("crm_prospects", "prospect", "_id", frozenset({"prospect.create"})),
    AuditedCollection("investments", "investment", "investment_id",
                      frozenset({"investment.create"})),
    AuditedCollection("mt5_accounts", "mt5_account", "_id", frozenset({"mt5_account.create"})),
    AuditedCollection("documents", "document", "_id", frozenset({"document.upload"})),
    AuditedCollection("admin_google_sessions", "admin_google_session", "_id",
                      frozenset({"admin.google_sign_in"}), expires_field="token_expires_at"),
    AuditedCollection("schedule_items", "schedule_item", "_id",
                      frozenset({"schedule_item.create"})),
)
#: The last word of an action after which its entity is gone on purpose.
REMOVAL_VERBS = frozenset({"delete", "quarantine"})


def audited_collection(name: str) -> AuditedCollection | None:
    return next((a for a in AUDITED_COLLECTIONS if a.collection == name), None)


def script_record(*, script: str, action: str, entity_type: str, entity_id: str, run_id: str,
                  before: Any = None, after: Any = None, reason: str | None = None,
                  at: datetime | None = None) -> dict[str, Any]:
    """One audit record written by a data script, as stored (its own `_id` included), for
    `audit_log` or a document's outbox."""
    record = AuditRecord(
        id=ObjectId(), actor_id=None, actor_type=ActorType.SCRIPT, action=action,
        entity_type=entity_type, entity_id=entity_id, before=snapshot(before),
        after=snapshot(after), reason=reason, at=at or utcnow(), request_id=run_id)
    return record.to_document()


async def record_each(
    db: AsyncDatabase[dict[str, Any]], collection: str, documents: Sequence[Mapping[str, Any]], *,
    script: str, verb: str, run_id: str, reason: str,
) -> int:
    """Append one `<entity>.<verb>` record per document of an audited collection that a script
    changes wholesale: removes (`delete`, `quarantine`: recorded before the removal, so a crash
    in between leaves a record of a removal that did not happen, never a removal without its
    record) or puts back (`restore`). Returns how many."""
    audited = audited_collection(collection)
    if audited is None or not documents:
        return 0
    records = [script_record(script=script, action=f"{audited.entity_type}.{verb}",
                             entity_type=audited.entity_type, entity_id=entity_id,
                             run_id=run_id, reason=reason)
               for document in documents
               if (entity_id := audited.entity_id(document)) is not None]
    for start in range(0, len(records), _BATCH):
        await db["audit_log"].insert_many(records[start:start + _BATCH], ordered=False)
    return len(records)


async def record_script_run(
    db: AsyncDatabase[dict[str, Any]],
    *,
    script: str,
    action: str,
    run_id: str,
    summary: Mapping[str, Any],
    reason: str | None = None,
) -> None:
    """Append the run's record to `audit_log` through the product's audit trail.

    The entity is the run itself (`entity_type` "data_script", `entity_id` the run id), and the
    run id is the record's `request_id`, as for an API request.
    """
    token = request_id_var.set(run_id)
    try:
        await AuditTrail(AuditLogRepository(db)).record(
            Actor.script(script),
            action=action,
            entity_type="data_script",
            entity_id=run_id,
            after={"script": script, **dict(summary)},
            reason=reason,
        )
    finally:
        request_id_var.reset(token)
