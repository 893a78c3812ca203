"""`/api/users`: registration, the caller's own account, and the list for admins."""

from __future__ import annotations

from quart import Blueprint, current_app, request
from quart_schema import (
    document_response,
    validate_querystring,
    validate_request,
    validate_response,
)

from quart_tasks.auth.accounts import find_user
from quart_tasks.auth.caller import current_principal, forbidden, optional_principal
from quart_tasks.services import services
from quart_tasks.storage.sessions import db_session
from quart_tasks.storage.unit_of_work import unit_of_work
from quart_tasks.users import queries
from quart_tasks.users.schemas import UserCreate, UserListQuery, UserOut, UserPage
from quart_tasks.web.access import optional_auth, require_admin, require_auth
from quart_tasks.web.errors import ErrorResponse, unauthorized
from quart_tasks.web.openapi import operation_id
from quart_tasks.web.pagination import PageHeaders, Total, link_header

users = Blueprint("users", __name__)


@users.post("/users")
@optional_auth
@validate_request(UserCreate)
@validate_response(UserOut, 201)
@document_response(ErrorResponse, 403)
@document_response(ErrorResponse, 409)
async def create_user(data: UserCreate) -> tuple[UserOut, int]:
    """Create a user account.

    Admins may always; anyone may while `REGISTRATION_OPEN` is true.
    """
    if not current_app.config["REGISTRATION_OPEN"]:
        caller = optional_principal()
        if caller is None:
            raise unauthorized("Registration is closed: an admin must create accounts")
        if not caller.is_admin:
            raise forbidden("Registration is closed: an admin must create accounts")
    async with unit_of_work() as lookup:  # ended before hashing, as a login's
        if await find_user(lookup.session, data.username) is not None:
            raise queries.username_taken()  # before paying for a hash
    password_hash = await services().passwords.hash(data.password)
    async with unit_of_work() as work:
        user = await queries.create_user(
            work.session, username=data.username, password_hash=password_hash
        )
    return UserOut.model_validate(user), 201


@users.get("/users/me")
@operation_id("getCurrentUser")
@require_auth
@validate_response(UserOut)
async def me() -> UserOut:
    """The caller's own account."""
    caller = current_principal()
    return UserOut(
        id=caller.user_id, username=caller.username, role=caller.role, created_at=caller.created_at
    )


@users.get("/users")
@require_admin
@validate_querystring(UserListQuery)
@validate_response(UserPage, 200, PageHeaders)
async def list_users(query_args: UserListQuery) -> tuple[UserPage, int, PageHeaders]:
    """List every user, a page at a time (admins only)."""
    page = query_args.page_request()
    items, total = await queries.list_users(db_session(), page)
    body = UserPage.of(items, page, Total(total))
    link = link_header(request.path, query_args.link_params(), page, Total(total))
    return body, 200, PageHeaders(link=link)
