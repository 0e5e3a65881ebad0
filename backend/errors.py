"""The domain's exceptions: raised by repositories and services, mapped to HTTP in one place.

    FidusError                          500  (the root; unexpected when raised bare)
    ├── DatabaseUnavailable             503  the database cannot be reached
    ├── NotFound                        404  the entity does not exist (or is not yours to see)
    ├── Conflict                        409
    │   ├── DuplicateEntity             409  a unique field is already taken
    │   └── VersionConflict             409  someone else changed the document first
    ├── InvalidData                     422
    │   ├── DocumentInvalid             422  the database's validator refused the document
    │   ├── FundMinimumNotMet           422  the amount is below the fund's minimum
    │   ├── InvitationRequired          422  an invitation-only fund without an invitation reason
    │   └── TransitionNotAllowed        422  a status move the rules do not allow
    ├── PayloadTooLarge                 413  an upload over the size limit
    ├── UnsupportedMediaType            415  an upload of a type not accepted
    ├── AuthenticationFailed            401
    │   └── SignInRefused               401  a wrong password or a sign-in lock, answered alike
    ├── PermissionDenied                403
    ├── Throttled                       429  too many attempts; `retry_after_seconds` says when
    ├── UpstreamUnavailable             502  the MT5 bridge failed or answered nonsense
    │   └── BridgeError                 502  (backend/bridge/errors.py)
    │       ├── BridgeUnreachable       502  no answer from the bridge
    │       ├── BridgeRefused           502  the bridge said no (auth, unknown login, ...)
    │       │   └── TerminalCrossed     502  the terminal answered for another login
    │       └── BridgeBadResponse       502  an answer that breaks the bridge's contract
    ├── DocumentCorrupted               500  a stored KYC file is missing or fails its checksum
    ├── DecryptionFailed                500  no field key opens a sealed value (security/crypto.py)
    ├── FundCatalogInvalid              500  the fund terms file is malformed (found at start-up)
    ├── SyncDataError                   500  MT5 data the sync cannot store (sync/job.py)
    └── CommandRefused                  500  a data script refuses to run (ops/_cli.py; exit 2)
        ├── BackupCorrupt               500  a backup file fails its authentication or
        │                                        manifest (ops/backup_cipher.py)
        ├── BackupKeyMismatch           500  no configured BACKUP_ENCRYPTION_KEY opens the file
        ├── NoBackupToDrill             500  no backup file for the restore drill
        │                                        (ops/restore_drill.py)
        ├── RestoreFailed               500  a restore stopped; the target is left as it was
        ├── MigrationLocked             500  another run holds the migration lock
        ├── MigrationChanged            500  an applied migration's file has changed
        └── MigrationFailed             500  a migration step failed (ops/migrations.py)
            └── MigrationLockLost       500  the run lost its lock part-way

The codes above 499 are for scripts and logs; the API answers none of them for a known
condition except `DocumentCorrupted` (data loss to look into) and the 502/503 families.
"""

from __future__ import annotations

from typing import Any, ClassVar


class FidusError(Exception):
    """Root of every error the product raises on purpose."""

    code: ClassVar[str] = "INTERNAL_ERROR"
    http_status: ClassVar[int] = 500

    def __init__(self, message: str, *, details: Any = None, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details
        if code is not None:
            self.code = code  # type: ignore[misc]


class DatabaseUnavailable(FidusError):
    code = "DATABASE_UNAVAILABLE"
    http_status = 503


class NotFound(FidusError):
    code = "NOT_FOUND"
    http_status = 404


class Conflict(FidusError):
    code = "CONFLICT"
    http_status = 409


class DuplicateEntity(Conflict):
    code = "DUPLICATE"

    def __init__(self, message: str, *, field: str | None = None, details: Any = None) -> None:
        super().__init__(message, details=details if details is not None else {"field": field})
        self.field = field


class VersionConflict(Conflict):
    code = "VERSION_CONFLICT"


class InvalidData(FidusError):
    code = "INVALID"
    http_status = 422


class DocumentInvalid(InvalidData):
    code = "DOCUMENT_INVALID"


class FundMinimumNotMet(InvalidData):
    code = "FUND_MINIMUM_NOT_MET"


class InvitationRequired(InvalidData):
    """The request is the admin's to make, but this fund also needs the invitation's reason:
    a missing field for this fund (422), not a missing permission (403)."""

    code = "INVITATION_REQUIRED"


class TransitionNotAllowed(InvalidData):
    code = "TRANSITION_NOT_ALLOWED"


class PayloadTooLarge(FidusError):
    code = "FILE_TOO_LARGE"
    http_status = 413


class UnsupportedMediaType(FidusError):
    code = "UNSUPPORTED_MEDIA_TYPE"
    http_status = 415


class AuthenticationFailed(FidusError):
    code = "UNAUTHENTICATED"
    http_status = 401


class SignInRefused(AuthenticationFailed):
    """A password check refused. The caller is answered the same whether the password was
    wrong or a lockout stood in the way; `locked` tells the services which it was."""

    def __init__(self, message: str, *, code: str | None = None, locked: bool = False) -> None:
        super().__init__(message, code=code)
        self.locked = locked


class PermissionDenied(FidusError):
    code = "FORBIDDEN"
    http_status = 403


class Throttled(FidusError):
    code = "THROTTLED"
    http_status = 429

    def __init__(self, message: str, *, retry_after_seconds: int, details: Any = None,
                 code: str | None = None) -> None:
        super().__init__(message, details=details, code=code)
        #: Sent as the `Retry-After` header: at least one second.
        self.retry_after_seconds = max(retry_after_seconds, 1)


class DocumentCorrupted(FidusError):
    """A stored KYC file is missing or does not match its checksum: data loss to look into."""

    code = "DOCUMENT_CORRUPTED"
    http_status = 500


class UpstreamUnavailable(FidusError):
    code = "UPSTREAM_UNAVAILABLE"
    http_status = 502


class FundCatalogInvalid(FidusError):
    """The fund terms file cannot be trusted; every problem found is listed in `details`."""

    code = "FUND_CATALOG_INVALID"
    http_status = 500
