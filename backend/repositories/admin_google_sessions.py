"""Admin Google sign-in sessions; the OAuth tokens are encrypted at rest."""

from __future__ import annotations

from backend.models.admin_google_sessions import AdminGoogleSession
from backend.repositories.base import Repository


class AdminGoogleSessionRepository(Repository[AdminGoogleSession]):
    collection_name = "admin_google_sessions"
    model = AdminGoogleSession
