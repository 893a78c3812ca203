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
from quart_tasks.storage.unit_of_work import unit_of_work
from quart_tasks.web.access import public, require_auth
from quart_tasks.web.errors import ErrorResponse, unauthorized
from quart_tasks.web.openapi import NoContent, operation_id

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

    Failed logins are limited per username and client address (429), per address
    (429), and per username by a growing delay, never a lock.
    """
    throttle = services().login_throttle
    key, address = username_key(data.username), request.remote_addr or "unknown"
    await throttle.check(key, address)
    # Its own unit, ended before the hash is checked: a burst of logins must not
    # hold every pooled connection while they hash, and starve other requests.
    async with unit_of_work() as lookup:
        user = await find_user(lookup.session, data.username)
    hashes = services().passwords
    if not await hashes.verify(user.password_hash if user else None, data.password):
        await throttle.record_failure(key, address)
        raise unauthorized("Invalid credentials")
    assert user is not None
    await throttle.record_success(key, address)
    new_hash = await hashes.hash(data.password) if hashes.needs_rehash(user.password_hash) else None
    config = current_app.config
    async with unit_of_work() as work:
        if new_hash is not None:
            await set_password_hash(work.session, user, new_hash)
        family_id, refresh_token = await sessions.start_session(
            work.session, user, config["REFRESH_TOKEN_EXP_SECONDS"]
        )
        work.after_commit(
            "purge expired sessions",
            sessions.purge_expired_sometimes(config["SESSION_PURGE_EVERY"]),
        )
    return token_response(user, family_id, refresh_token), 200, NO_STORE


@auth.post("/token/refresh")
@operation_id("refreshToken")
@public
@validate_request(RefreshRequest)
@validate_response(TokenResponse)
@document_response(ErrorResponse, 401)
async def refresh(data: RefreshRequest) -> tuple[TokenResponse, int, dict[str, str]]:
    """Spend a refresh token for a new access token and a new refresh token.

    Each refresh token works once; presenting a spent one revokes its whole session.
    """
    async with unit_of_work() as work:
        rotated = await sessions.rotate(
            work.session, data.refresh_token, current_app.config["REFRESH_TOKEN_EXP_SECONDS"]
        )
    if rotated is None:  # its family's revocation is committed
        raise unauthorized("Refresh token reused: the session is revoked", invalid_token=True)
    return token_response(rotated.user, rotated.family_id, rotated.refresh_token), 200, NO_STORE


@auth.post("/logout")
@require_auth
@document_response(NoContent, 204)
async def logout() -> Response:
    """End the caller's session: its refresh tokens and access tokens stop working."""
    async with unit_of_work() as work:
        await sessions.revoke_family(work.session, current_principal().family_id)
    return Response("", status=204)
