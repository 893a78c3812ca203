"""`POST /api/login`."""

from __future__ import annotations

import hmac

from quart import Blueprint, current_app
from quart_schema import document_response, validate_request, validate_response

from ..errors import ErrorResponse, unauthorized
from ..security import issue_access_token
from .schemas import LoginRequest, TokenResponse

auth = Blueprint("auth", __name__)

NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


def _credentials_match(username: str, password: str) -> bool:
    config = current_app.config
    # Both comparisons always run, in constant time, so timing reveals neither value.
    user_ok = hmac.compare_digest(username.encode(), config["API_USER"].encode())
    pass_ok = hmac.compare_digest(password.encode(), config["API_PASS"].encode())
    return user_ok & pass_ok


@auth.post("/login")
@validate_request(LoginRequest)
@validate_response(TokenResponse)
@document_response(ErrorResponse, 401)
async def login(data: LoginRequest) -> tuple[TokenResponse, int, dict[str, str]]:
    """Exchange a username and password for an access token."""
    if not _credentials_match(data.username, data.password):
        raise unauthorized("Invalid credentials")
    token, expires_in = issue_access_token(data.username)
    return TokenResponse(access_token=token, expires_in=expires_in), 200, NO_STORE
