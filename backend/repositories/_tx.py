"""Writing a change and its audit record together.

On a replica set (production) both go into one transaction, so a failed audit write rolls the
change back. On a standalone server, which refuses transactions, the change is written first and
undone by the caller's compensation when the audit write fails.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import OperationFailure

logger = logging.getLogger(__name__)

ILLEGAL_OPERATION = 20
_FLAG = "_fidus_transactions"


def disable_transactions(client: Any) -> None:
    """Use the compensating path for this client even if the server offers transactions.

    Set for the embedded development server, whose transactions misbehave under concurrent
    load (see the README's notes on the embedded server); never for a real MongoDB.
    """
    setattr(client, _FLAG, False)


async def supports_transactions(db: AsyncDatabase[dict[str, Any]]) -> bool:
    client = db.client
    # Remembered on the client itself (one probe per client; ids of closed clients get reused).
    known = client.__dict__.get(_FLAG)
    if known is None:
        hello = await client.admin.command("hello")
        if hello.get("setName") or hello.get("msg") == "isdbgrid":
            known = True
        else:
            known = await _probe(db)
        setattr(client, _FLAG, known)
    return bool(known)


async def _probe(db: AsyncDatabase[dict[str, Any]]) -> bool:
    try:
        async with db.client.start_session() as session, await session.start_transaction():
            await db["locks"].find_one({"_id": "__transaction_probe__"}, session=session)
    except OperationFailure as error:
        if error.code == ILLEGAL_OPERATION or "replica set" in str(error):
            logger.warning("the database refuses transactions (standalone server): "
                           "audit records are written after the change with compensation")
            return False
        raise
    return True


@asynccontextmanager
async def atomic(db: AsyncDatabase[dict[str, Any]]) -> AsyncIterator[AsyncClientSession | None]:
    """A transaction's session when the server supports them, else None."""
    if not await supports_transactions(db):
        yield None
        return
    async with db.client.start_session() as session, await session.start_transaction():
        yield session


Compensation = Callable[[], Awaitable[None]]
