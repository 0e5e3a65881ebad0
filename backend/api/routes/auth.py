"""Sign-in, refresh, sign-out, the signed-in user and password change."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response, status

from backend.api.deps import (
    CurrentPrincipal,
    CurrentUser,
    GoogleDep,
    ServicesDep,
    client_ip,
)
from backend.api.schemas import (
    GoogleSignInRequest,
    LoginRequest,
    PasswordChangeRequest,
    RefreshRequest,
    TokenResponse,
    error_responses,
)
from backend.models.users import UserRead
from backend.services.auth import TokenPair

router = APIRouter(prefix="/auth", tags=["auth"])


def _tokens(pair: TokenPair) -> TokenResponse:
    return TokenResponse(access_token=pair.access_token, refresh_token=pair.refresh_token,
                         expires_in=pair.expires_in, session_id=pair.session_id,
                         user=UserRead.model_validate(pair.user))


@router.post(
    "/login",
    summary="Sign in with e-mail or username and password",
    response_model=TokenResponse,
    responses=error_responses(401, 422, 429),
)
async def login(body: LoginRequest, request: Request, services: ServicesDep) -> TokenResponse:
    pair = await services.auth.login(
        body.login, body.password.get_secret_value(), ip=client_ip(request),
        user_agent=request.headers.get("user-agent"))
    return _tokens(pair)


@router.post(
    "/google",
    summary="Sign in as an admin with a Google ID token",
    response_model=TokenResponse,
    responses=error_responses(401, 403, 422, 502),
)
async def google_sign_in(body: GoogleSignInRequest, request: Request,
                         google: GoogleDep) -> TokenResponse:
    pair = await google.sign_in(body.id_token, ip=client_ip(request),
                                user_agent=request.headers.get("user-agent"))
    return _tokens(pair)


@router.post(
    "/refresh",
    summary="Exchange a refresh token for new tokens (the old refresh token stops working; "
            "presenting it again ends the session)",
    response_model=TokenResponse,
    responses=error_responses(401, 422),
)
async def refresh(body: RefreshRequest, request: Request, services: ServicesDep) -> TokenResponse:
    return _tokens(await services.auth.refresh(body.refresh_token, ip=client_ip(request)))


@router.post(
    "/logout",
    summary="End this session at once (its access and refresh tokens stop working)",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    responses=error_responses(401),
)
async def logout(principal: CurrentPrincipal, services: ServicesDep) -> Response:
    await services.auth.logout(str(principal.session.id))
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get(
    "/me",
    summary="The signed-in user",
    response_model=UserRead,
    responses=error_responses(401),
)
async def me(user: CurrentUser) -> UserRead:
    return UserRead.model_validate(user)


@router.post(
    "/password",
    summary="Change the signed-in user's password; every session of the user ends. Wrong "
            "current passwords count toward the sign-in lockout",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    responses=error_responses(401, 422),
)
async def change_password(body: PasswordChangeRequest, request: Request,
                          principal: CurrentPrincipal, services: ServicesDep) -> Response:
    await services.users.change_password(
        principal.user, current=body.current_password.get_secret_value(),
        new=body.new_password.get_secret_value(), source=client_ip(request),
        session_id=principal.session.id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
