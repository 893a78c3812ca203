"""The API keeps nothing in cookies: no session is read from a request or written to a response."""

from __future__ import annotations

import pytest
from quart import Quart, session

from tests.helpers.support import Client


async def test_no_session_cookie_is_read_or_set(app: Quart, client: Client) -> None:
    response = await client.get("/healthz", headers={"Cookie": "session=eyJ4IjoxfQ.forged"})
    assert response.status_code == 200
    assert "Set-Cookie" not in response.headers
    async with app.test_request_context("/healthz", headers={"Cookie": "session=eyJ4IjoxfQ.x"}):
        assert dict(session) == {}
        with pytest.raises(RuntimeError):
            session["user_id"] = 1
