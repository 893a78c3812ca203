"""Logging in, refreshing tokens, and logging out."""

from __future__ import annotations

from quart import Blueprint, Response, current_app, request
from quart_schema import document_response, validate_request, validate_response

from quart_tasks.auth import sessions
from quart_tasks.auth.accounts import find_user, set_password_hash
from quart_tasks.auth.caller import current_principal
from quart_tasks.auth.models import User, username_key
from quart_tasks.auth.schemas import LoginRequest, RefreshRequest, TokenResponse
from quart_tasks.auth.tokens import issue_access_token
from quart_tasks.services import services
from quart_tasks.storage.sessions import db_session, release_connection
from quart_tasks.web.access import public, require_auth
from quart_tasks.web.errors import ErrorResponse, unauthorized
from quart_tasks.web.openapi import NoContent

auth = Blueprint("auth", __name__)

NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


def token_response(user: User, family_id: str, refresh_token: str) -> TokenResponse:
    access_token, expires_in = issue_access_token(user.id, user.role, family_id)
    return TokenResponse(
        access_token=access_token, expires_in=expires_in, refresh_token=refresh_token
    )


@auth.post("/login")
@public
@validate_request(LoginRequest)
@validate_response(TokenResponse)
@document_response(ErrorResponse, 401)
@document_response(ErrorResponse, 429)
async def login(data: LoginRequest) -> tuple[TokenResponse, int, dict[str, str]]:
    """Exchange a username and password for an access token and a refresh token.

    Failed logins are limited per username and per client address.
    """
    throttle = services().login_throttle
    key, address = username_key(data.username), request.remote_addr or "unknown"
    await throttle.check(key, address)
    session = db_session()
    user = await find_user(session, data.username)
    await release_connection(session)
    hashes = services().passwords
    if not await hashes.verify(user.password_hash if user else None, data.password):
        await throttle.record_failure(key, address)
        raise unauthorized("Invalid credentials")
    assert user is not None
    if hashes.needs_rehash(user.password_hash):
        await set_password_hash(session, user, await hashes.hash(data.password))
    config = current_app.config
    family_id, refresh_token = await sessions.start_session(
        session, user, config["REFRESH_TOKEN_EXP_SECONDS"], config["SESSION_PURGE_EVERY"]
    )
    return token_response(user, family_id, refresh_token), 200, NO_STORE


@auth.post("/token/refresh")
@public
@validate_request(RefreshRequest)
@validate_response(TokenResponse)
@document_response(ErrorResponse, 401)
async def refresh(data: RefreshRequest) -> tuple[TokenResponse, int, dict[str, str]]:
    """Spend a refresh token for a new access token and a new refresh token.

    Each refresh token works once; presenting a spent one revokes its whole session.
    """
    user, family_id, refresh_token = await sessions.rotate(
        db_session(), data.refresh_token, current_app.config["REFRESH_TOKEN_EXP_SECONDS"]
    )
    return token_response(user, family_id, refresh_token), 200, NO_STORE


@auth.post("/logout")
@require_auth
@document_response(NoContent, 204)
async def logout() -> Response:
    """End the caller's session: its refresh tokens and access tokens stop working."""
    await sessions.revoke_family(db_session(), current_principal().family_id)
    return Response("", status=204)
