"""Admin Google sign-in sessions; the OAuth tokens are encrypted at rest.

A record is tied to its sign-in session by the hash of the session's current refresh token: it
follows every rotation of that token and is marked revoked when the session ends.
"""

from __future__ import annotations

from datetime import datetime

from bson import ObjectId

from backend.models.admin_google_sessions import AdminGoogleSession
from backend.repositories._errors import driver_errors
from backend.repositories.base import Repository


class AdminGoogleSessionRepository(Repository[AdminGoogleSession]):
    collection_name = "admin_google_sessions"
    model = AdminGoogleSession

    async def follow_rotation(self, old_token_hash: str, new_token_hash: str, *,
                              now: datetime, expires_at: datetime) -> bool:
        """The session's refresh token was replaced: the record now names the new one."""
        with driver_errors(self.collection_name):
            result = await self._collection.update_one(
                {"session_token_hash": old_token_hash, "revoked_at": None},
                {"$set": {"session_token_hash": new_token_hash, "token_expires_at": expires_at,
                          "last_used_at": now, "updated_at": now},
                 "$inc": {"version": 1}})
        return result.modified_count == 1

    async def revoke_for_token(self, token_hash: str, *, now: datetime) -> bool:
        """The sign-in session behind this refresh-token hash ended."""
        with driver_errors(self.collection_name):
            result = await self._collection.update_one(
                {"session_token_hash": token_hash, "revoked_at": None},
                {"$set": {"revoked_at": now, "updated_at": now}, "$inc": {"version": 1}})
        return result.modified_count == 1

    async def revoke_for_admin(self, admin_id: ObjectId, *, now: datetime) -> int:
        """Every session of the admin ended (password change, deactivation)."""
        with driver_errors(self.collection_name):
            result = await self._collection.update_many(
                {"admin_id": admin_id, "revoked_at": None},
                {"$set": {"revoked_at": now, "updated_at": now}, "$inc": {"version": 1}})
        return result.modified_count
