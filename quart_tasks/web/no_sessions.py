"""No cookie sessions: the API is stateless, so none is opened, read or saved."""

from __future__ import annotations

from quart import Quart, Response
from quart.sessions import NullSession, SessionInterface, SessionMixin
from quart.wrappers import BaseRequestWebsocket
from werkzeug.wrappers import Response as WerkzeugResponse

# Read-only: setting a key on it raises, so one serves every request.
_NO_SESSION = NullSession()


class NoSessions(SessionInterface):
    """Spares every request the signed-cookie session's decode and save."""

    async def open_session(self, app: Quart, request: BaseRequestWebsocket) -> NullSession:
        return _NO_SESSION

    async def save_session(
        self, app: Quart, session: SessionMixin, response: Response | WerkzeugResponse | None
    ) -> None:
        return None
