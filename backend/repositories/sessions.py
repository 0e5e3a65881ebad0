"""Sign-in sessions: only the SHA-256 of a refresh token is ever stored."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from bson import ObjectId

from backend.errors import AuthenticationFailed
from backend.models.sessions import Session
from backend.repositories._errors import driver_errors
from backend.repositories.base import Repository, object_id
from backend.security.tokens import hash_token, new_opaque_token


class SessionRepository(Repository[Session]):
    collection_name = "sessions"
    model = Session
    versioned = False
    timestamped = False

    async def open(
        self,
        user_id: ObjectId,
        *,
        now: datetime,
        ttl: timedelta,
        ip: str | None = None,
        user_agent: str | None = None,
    ) -> tuple[Session, str]:
        """A new session and its raw refresh token, which is returned once and never stored."""
        token = new_opaque_token()
        session = Session(
            token_hash=hash_token(token),
            user_id=user_id,
            created_at=now,
            expires_at=now + ttl,
            ip=ip,
            user_agent=(user_agent or None) and user_agent[:512],
        )
        return await self.create(session), token

    def _check_live(self, session: Session | None, now: datetime) -> Session:
        if session is None:
            raise AuthenticationFailed("the session does not exist", code="SESSION_INVALID")
        if session.revoked_at is not None:
            raise AuthenticationFailed("the session has ended", code="SESSION_REVOKED")
        if session.expires_at <= now:
            raise AuthenticationFailed("the session has expired", code="SESSION_EXPIRED")
        return session

    async def validate_token(self, token: str, *, now: datetime) -> Session:
        return self._check_live(await self._find_one({"token_hash": hash_token(token)}), now)

    async def validate_id(self, session_id: str, *, now: datetime) -> Session:
        try:
            oid = object_id(session_id)
        except Exception as error:
            raise AuthenticationFailed("the session does not exist",
                                       code="SESSION_INVALID") from error
        return self._check_live(await self._find_one({"_id": oid}), now)

    async def rotate(self, session: Session, *, now: datetime, ttl: timedelta) -> str:
        """Replace the refresh token (the old one stops working) and extend the session."""
        token = new_opaque_token()
        with driver_errors(self.collection_name):
            result = await self._collection.update_one(
                {"_id": session.id, "token_hash": session.token_hash, "revoked_at": None},
                {"$set": {"token_hash": hash_token(token), "expires_at": now + ttl,
                          "last_used_at": now}},
            )
        if result.modified_count != 1:
            raise AuthenticationFailed("the session has ended", code="SESSION_REVOKED")
        return token

    async def revoke(self, session_id: ObjectId, *, now: datetime) -> bool:
        with driver_errors(self.collection_name):
            result = await self._collection.update_one(
                {"_id": session_id, "revoked_at": None}, {"$set": {"revoked_at": now}}
            )
        return result.modified_count == 1

    async def revoke_all(self, user_id: ObjectId, *, now: datetime,
                         except_id: ObjectId | None = None) -> int:
        query: dict[str, Any] = {"user_id": user_id, "revoked_at": None}
        if except_id is not None:
            query["_id"] = {"$ne": except_id}
        with driver_errors(self.collection_name):
            result = await self._collection.update_many(query, {"$set": {"revoked_at": now}})
        return result.modified_count
