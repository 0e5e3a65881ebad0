"""Dependencies of the routes, as `Annotated` aliases so a route reads like a plain signature.

`ServicesDep` is the app's one `Services`, built once over the lifespan's database; its clock is
`app.state.clock`, which tests replace to move time without sleeping.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Header, Path, Query, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from backend.errors import AuthenticationFailed, PermissionDenied
from backend.models._common import IdempotencyKey, NotNull
from backend.models.sessions import Session
from backend.models.users import User, UserType
from backend.repositories.base import MAX_PAGE_SIZE, utcnow
from backend.security.addresses import client_address, trusted_networks
from backend.services import Actor, Services
from backend.services.google import GoogleSignIn


def services_for(app: FastAPI) -> Services:
    """The app's services, built on first use over the lifespan's database."""
    services: Services | None = getattr(app.state, "services", None)
    if services is None:
        if not hasattr(app.state, "clock"):
            app.state.clock = utcnow
        state = app.state
        services = Services(app.state.connection.database, app.state.settings,
                            clock=lambda: state.clock())
        app.state.services = services
    return services


def google_for(app: FastAPI) -> GoogleSignIn:
    google: GoogleSignIn | None = getattr(app.state, "google", None)
    if google is None:
        google = GoogleSignIn(services_for(app),
                              transport=getattr(app.state, "google_transport", None))
        app.state.google = google
    return google


def _services(request: Request) -> Services:
    return services_for(request.app)


def _google(request: Request) -> GoogleSignIn:
    return google_for(request.app)


OBJECT_ID_PATTERN = "^[0-9a-f]{24}$"
FUND_CODE_PATTERN = "^[A-Z][A-Z0-9_]{1,15}$"

#: A record's id in a path: 24 lower-case hexadecimal digits.
ObjectIdPath = Annotated[str, Path(pattern=OBJECT_ID_PATTERN,
                                   description="the record's id (24 hexadecimal digits)",
                                   examples=["665f1c2ab8e4a1d2c3b4a5f6"])]
#: An optional filter by a record's id.
ObjectIdQuery = Annotated[str | None, Query(pattern=OBJECT_ID_PATTERN)]
#: An optional filter by fund code.
FundCodeQuery = Annotated[str | None, Query(pattern=FUND_CODE_PATTERN)]

#: The `Idempotency-Key` header of a creating route: a retry under the same key (after a 503,
#: say, whose write may have happened) answers the first result instead of creating twice.
IdempotencyKeyHeader = Annotated[
    IdempotencyKey | NotNull,
    Header(alias="Idempotency-Key",
           description="a key of the caller's choosing (8-128 of A-Z a-z 0-9 . _ : -); a retry "
                       "with the same key answers the first result (200) instead of creating "
                       "twice; the same key with a different request is refused (409 "
                       "IDEMPOTENCY_KEY_REUSED)"),
]

ServicesDep = Annotated[Services, Depends(_services)]
GoogleDep = Annotated[GoogleSignIn, Depends(_google)]

_bearer = HTTPBearer(auto_error=False, description="The access token from /api/v1/auth/login")


@dataclass(frozen=True, slots=True)
class Principal:
    """The signed-in user and the live session the access token names."""

    user: User
    session: Session

    @property
    def actor(self) -> Actor:
        return Actor.user(self.user.id, self.user.user_type.value)


async def _principal(
    services: ServicesDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise AuthenticationFailed("sign in first: send Authorization: Bearer <access token>",
                                   code="NOT_AUTHENTICATED")
    user, session = await services.auth.resolve(credentials.credentials)
    return Principal(user, session)


CurrentPrincipal = Annotated[Principal, Depends(_principal)]


async def _current_user(principal: CurrentPrincipal) -> User:
    return principal.user


def _require(*roles: UserType) -> Any:
    allowed = frozenset(roles)

    async def check(principal: CurrentPrincipal) -> Principal:
        if principal.user.password_change_required:
            raise PermissionDenied(
                "an admin reset this password: set a new one at POST /api/v1/auth/password",
                code="PASSWORD_CHANGE_REQUIRED")
        if principal.user.user_type not in allowed:
            raise PermissionDenied(
                "this route needs the role " + " or ".join(sorted(r.value for r in allowed)),
                details={"role": principal.user.user_type.value})
        return principal

    return check


CurrentUser = Annotated[User, Depends(_current_user)]
#: Admin-only routes: decisions, money, mappings, documents, the audit log.
AdminUser = Annotated[Principal, Depends(_require(UserType.ADMIN))]
#: Staff routes: admins and managers (managers read clients and investments and work the CRM).
StaffUser = Annotated[Principal, Depends(_require(UserType.ADMIN, UserType.MANAGER))]
ClientUser = Annotated[Principal, Depends(_require(UserType.CLIENT))]


@dataclass(frozen=True, slots=True)
class Pagination:
    page: int
    page_size: int


def _pagination(
    page: Annotated[int, Query(ge=1, le=1_000_000, description="1-based page number")] = 1,
    page_size: Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE, description="items per page")] = 20,
) -> Pagination:
    return Pagination(page, page_size)


PageDep = Annotated[Pagination, Depends(_pagination)]


def client_ip(request: Request) -> str | None:
    """The client's address: the peer's, or from X-Forwarded-For when the peer is a proxy
    named in FORWARDED_ALLOW_IPS (uvicorn's own proxy-header handling is off)."""
    proxies = trusted_networks(request.app.state.settings.forwarded_allow_ips)
    return client_address(request.client.host if request.client else None,
                          request.headers.getlist("x-forwarded-for"), proxies)
