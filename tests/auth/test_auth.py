"""`POST /api/login` and the access token every other route needs."""

from __future__ import annotations

import asyncio
import base64
import json
import time
from collections.abc import Callable
from typing import Any

import jwt
import pytest

from quart_tasks.auth.tokens import REQUIRED_CLAIMS
from quart_tasks.web.keys import key_id
from tests.helpers.apps import ADMIN
from tests.helpers.support import TEST_SECRET_KEY, Client

ISSUER = "quart-tasks"
OTHER_KEY = "another-secret-key-of-enough-length-for-hmac-sha256"


def claims_of(token: str) -> dict[str, Any]:
    return dict(jwt.decode(token, options={"verify_signature": False}))


def signed(
    payload: dict[str, Any],
    key: str = TEST_SECRET_KEY,
    algorithm: str = "HS256",
    kid: str | None = "current",
) -> str:
    headers = {} if kid is None else {"kid": key_id(TEST_SECRET_KEY) if kid == "current" else kid}
    return jwt.encode(payload, key, algorithm=algorithm, headers=headers)


def unsigned(payload: dict[str, Any]) -> str:
    """An `alg: none` token, as an attacker would write it."""

    def part(value: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()

    header = {"alg": "none", "typ": "JWT", "kid": key_id(TEST_SECRET_KEY)}
    return f"{part(header)}.{part(payload)}."


async def assert_unauthorized(response: Any) -> None:
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    body = await response.get_json()
    assert set(body) == {"error"}
    assert body["error"]["code"] == "unauthorized"
    assert body["error"]["message"]


async def test_login_issues_a_token_with_every_required_claim(client: Client) -> None:
    response = await client.post("/api/login", json=ADMIN)

    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    body = await response.get_json()
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 3600
    assert len(body["refresh_token"]) >= 40
    assert jwt.get_unverified_header(body["access_token"]) == {
        "alg": "HS256",
        "typ": "JWT",
        "kid": key_id(TEST_SECRET_KEY),
    }
    decoded = jwt.decode(body["access_token"], TEST_SECRET_KEY, algorithms=["HS256"], issuer=ISSUER)
    assert set(REQUIRED_CLAIMS) <= set(decoded)
    assert decoded["sub"].isdigit()
    assert decoded["role"] == "admin"
    assert decoded["exp"] - decoded["iat"] == 3600


@pytest.mark.parametrize(
    "credentials",
    [
        {"username": "admin", "password": "wrong"},
        {"username": "root", "password": "admin"},
        {"username": "admin", "password": "ADMIN"},
    ],
)
async def test_wrong_credentials_are_refused(client: Client, credentials: dict[str, str]) -> None:
    response = await client.post("/api/login", json=credentials)

    await assert_unauthorized(response)
    assert "access_token" not in await response.get_json()


async def test_the_username_is_case_insensitive(client: Client) -> None:
    response = await client.post("/api/login", json={"username": "ADMIN", "password": "admin"})

    assert response.status_code == 200


@pytest.mark.parametrize(
    "body",
    [{"username": "admin"}, {"password": "admin"}, {"username": 1, "password": "admin"}, {}],
)
async def test_incomplete_credentials_are_a_validation_error(
    client: Client, body: dict[str, Any]
) -> None:
    response = await client.post("/api/login", json=body)

    assert response.status_code == 400
    assert (await response.get_json())["error"]["code"] == "validation_error"


async def test_the_bearer_scheme_is_case_insensitive(client: Client, token: str) -> None:
    response = await client.get("/api/tasks", headers={"Authorization": f"bearer {token}"})

    assert response.status_code == 200


def forged(valid: dict[str, Any]) -> dict[str, Callable[[], str | None]]:
    """Authorization headers an attacker might try, built from a real token's claims."""
    now = int(time.time())

    def without(claim: str) -> Callable[[], str]:
        return lambda: "Bearer " + signed({k: v for k, v in valid.items() if k != claim})

    def with_(**changes: Any) -> dict[str, Any]:
        return {**valid, **changes}

    return {
        "missing": lambda: None,
        "another scheme": lambda: "Basic YWRtaW46YWRtaW4=",
        "empty bearer": lambda: "Bearer ",
        "garbage": lambda: "Bearer not.a.token",
        "expired": lambda: "Bearer " + signed(with_(iat=now - 120, exp=now - 60)),
        "wrongly signed": lambda: "Bearer " + signed(valid, key=OTHER_KEY),
        "alg none": lambda: "Bearer " + unsigned(valid),
        "HS512 with the right key": lambda: "Bearer " + signed(valid, algorithm="HS512"),
        "no kid": lambda: "Bearer " + signed(valid, kid=None),
        "unknown kid": lambda: "Bearer " + signed(valid, kid="0123456789abcdef"),
        "wrong issuer": lambda: "Bearer " + signed(with_(iss="someone-else")),
        "unknown user": lambda: "Bearer " + signed(with_(sub="999999")),
        "non-numeric subject": lambda: "Bearer " + signed(with_(sub="admin")),
        "huge subject": lambda: "Bearer " + signed(with_(sub="9" * 30)),
        "another family": lambda: "Bearer " + signed(with_(fam="0" * 32)),
        **{f"without {claim}": without(claim) for claim in REQUIRED_CLAIMS},
    }


ATTACKS = sorted(forged({"sub": "1"}))


@pytest.mark.parametrize("attack", ATTACKS)
async def test_forged_tokens_are_refused(client: Client, token: str, attack: str) -> None:
    authorization = forged(claims_of(token))[attack]()
    headers = {} if authorization is None else {"Authorization": authorization}

    response = await client.get("/api/tasks", headers=headers)

    await assert_unauthorized(response)


async def test_the_same_forgery_done_right_is_accepted(client: Client, token: str) -> None:
    """The counterpart of the attacks: re-signing real claims with the real key passes."""
    response = await client.get(
        "/api/tasks", headers={"Authorization": "Bearer " + signed(claims_of(token))}
    )

    assert response.status_code == 200


async def test_a_token_is_verified_once_then_remembered(
    client: Client, token: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    headers = {"Authorization": f"Bearer {token}"}
    assert (await client.get("/api/tasks", headers=headers)).status_code == 200
    other = signed({**claims_of(token), "jti": "another"})
    decoded: list[str] = []
    real_decode = jwt.decode

    def counting_decode(token: str, *args: Any, **kwargs: Any) -> Any:
        decoded.append(token)
        return real_decode(token, *args, **kwargs)

    monkeypatch.setattr(jwt, "decode", counting_decode)
    for _ in range(3):
        assert (await client.get("/api/tasks", headers=headers)).status_code == 200
    assert (
        await client.get("/api/tasks", headers={"Authorization": f"Bearer {other}"})
    ).status_code == 200

    assert decoded == [other]


async def test_a_remembered_token_still_expires(client: Client, token: str) -> None:
    expires_at = int(time.time()) + 1
    short_lived = signed({**claims_of(token), "exp": expires_at})
    headers = {"Authorization": f"Bearer {short_lived}"}
    assert (await client.get("/api/tasks", headers=headers)).status_code == 200

    await asyncio.sleep(expires_at - time.time() + 0.05)
    response = await client.get("/api/tasks", headers=headers)

    await assert_unauthorized(response)
    assert (await response.get_json())["error"]["message"] == "Token expired"


PROTECTED = [
    ("GET", "/api/tasks"),
    ("POST", "/api/tasks"),
    ("GET", "/api/tasks/1"),
    ("PUT", "/api/tasks/1"),
    ("PATCH", "/api/tasks/1"),
    ("DELETE", "/api/tasks/1"),
    ("GET", "/api/users"),
    ("GET", "/api/users/me"),
    ("POST", "/api/logout"),
]


@pytest.mark.parametrize(("method", "path"), PROTECTED)
async def test_every_protected_route_needs_a_token(client: Client, method: str, path: str) -> None:
    response = await client.open(path, method=method, json={"title": "x", "done": False})

    await assert_unauthorized(response)


async def test_an_anonymous_request_is_refused_before_its_body_is_read(client: Client) -> None:
    response = await client.post(
        "/api/tasks", data="{not json", headers={"Content-Type": "application/json"}
    )

    await assert_unauthorized(response)
