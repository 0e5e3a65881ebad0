"""The domain's exceptions: raised by repositories and services, mapped to HTTP in one place.

    FidusError
    ├── DatabaseUnavailable          503  the database cannot be reached
    ├── NotFound                     404  the entity does not exist (or is not yours to see)
    ├── Conflict                     409
    │   ├── DuplicateEntity          409  a unique field is already taken
    │   └── VersionConflict          409  someone else changed the document first
    ├── InvalidData                  422
    │   ├── DocumentInvalid          422  the database's validator refused the document
    │   ├── FundMinimumNotMet        422  the amount is below the fund's minimum
    │   ├── TransitionNotAllowed     422  a status move the rules do not allow
    │   ├── PayloadTooLarge          413  an upload over the size limit
    │   └── UnsupportedMediaType     415  an upload of a type not accepted
    ├── AuthenticationFailed         401
    │   └── SignInRefused            401  a wrong password or a sign-in lock, answered alike
    ├── PermissionDenied             403
    ├── Throttled                    429
    └── UpstreamUnavailable          502  the MT5 bridge failed or answered nonsense
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


class TransitionNotAllowed(InvalidData):
    code = "TRANSITION_NOT_ALLOWED"


class PayloadTooLarge(InvalidData):
    code = "FILE_TOO_LARGE"
    http_status = 413


class UnsupportedMediaType(InvalidData):
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


class UpstreamUnavailable(FidusError):
    code = "UPSTREAM_UNAVAILABLE"
    http_status = 502
