"""Creating requests with an `Idempotency-Key`.

The key is stored on the document the request creates, under a unique index among the
documents that carry one. So a retry whose first attempt's outcome is unknown (503 after the
write was sent: it may or may not have been applied) finds the document if it was written and
answers with it; a twin sent concurrently under the same key loses on the unique index and
answers the same way. Either way one document exists, with one audit record.

A key names one request: the same key with a different request is refused with 409
`IDEMPOTENCY_KEY_REUSED` rather than answered with the first request's result, which would
hide the caller's mistake. Secrets in a request (a password) are not compared.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol

from backend.errors import Conflict, DuplicateEntity
from backend.repositories.base import Repository, StoredModel
from backend.services.audit import Actor, AuditTrail


@dataclass(frozen=True, slots=True)
class Created[M]:
    """The result of a creating request: `created` is False when a repeated Idempotency-Key
    found the document its first attempt created (answered 200 instead of 201)."""

    item: M
    created: bool


class KeyedRepository[M](Protocol):
    async def by_idempotency_key(self, key: str) -> M | None: ...


def key_reused(what: str, details: dict[str, Any]) -> Conflict:
    return Conflict(f"this Idempotency-Key was used for a different {what}",
                    code="IDEMPOTENCY_KEY_REUSED", details=details)


async def first_for_key[M](
    repo: KeyedRepository[M], key: str | None, *, same: Callable[[M], bool], what: str,
    name: Callable[[M], dict[str, Any]],
) -> M | None:
    """The document the first request under `key` created, when that request was the same
    one; None when nothing was created under `key`."""
    if not key:
        return None
    existing = await repo.by_idempotency_key(key)
    if existing is None:
        return None
    if not same(existing):
        raise key_reused(what, name(existing))
    return existing


async def create_once[M: StoredModel](
    audit: AuditTrail,
    repo: Repository[M],
    build: Callable[[], Awaitable[M]],
    *,
    key: str | None,
    same: Callable[[M], bool],
    what: str,
    name: Callable[[M], dict[str, Any]],
    actor: Actor,
    action: str,
    entity_type: str,
) -> Created[M]:
    """Create the document `build` makes, with its audit record, once per `key`.

    `build` runs only when the key finds nothing, so a replay costs no work (a password hash,
    say); the document it returns must carry `key` in its `idempotency_key`.
    """
    found = await first_for_key(repo, key, same=same, what=what, name=name)
    if found is not None:
        return Created(found, created=False)
    item = await build()
    try:
        created = await audit.create(repo, item, actor=actor, action=action,
                                     entity_type=entity_type)
    except DuplicateEntity:
        # A twin under the same key may have won the race on the key's unique index.
        found = await first_for_key(repo, key, same=same, what=what, name=name)
        if found is not None:
            return Created(found, created=False)
        raise
    return Created(created, created=True)
