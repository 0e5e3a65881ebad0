"""One audit record per data-script run: who (the script), what (the counts), when."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pymongo.asynchronous.database import AsyncDatabase

from backend.log import request_id_var
from backend.repositories.audit_log import AuditLogRepository
from backend.services.audit import Actor, AuditTrail


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
