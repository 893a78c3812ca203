"""`POST /api/login` and the bearer token every other route needs."""

from __future__ import annotations

import base64
import json
import time
from typing import Any

import jwt
import pytest

from .support import TEST_SECRET_KEY, Client

ISSUER = "quart-tasks"
OTHER_KEY = "another-secret-key-of-enough-length-for-hmac-sha256"


def claims(**overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    base = {"iss": ISSUER, "sub": "admin", "iat": now, "exp": now + 600, "jti": "test-token"}
    base.update(overrides)
    return {key: value for key, value in base.items() if value is not None}


def signed(payload: dict[str, Any], key: str = TEST_SECRET_KEY, algorithm: str = "HS256") -> str:
    return jwt.encode(payload, key, algorithm=algorithm)


def unsigned(payload: dict[str, Any]) -> str:
    """An `alg: none` token, as an attacker would write it."""

    def part(value: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()

    return f"{part({'alg': 'none', 'typ': 'JWT'})}.{part(payload)}."


async def assert_unauthorized(response: Any) -> None:
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    body = await response.get_json()
    assert body["error"]["code"] == "unauthorized"
    assert body["error"]["message"]


async def test_login_issues_a_token_with_every_required_claim(client: Client) -> None:
    response = await client.post("/api/login", json={"username": "admin", "password": "admin"})

    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    body = await response.get_json()
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 3600
    header = jwt.get_unverified_header(body["access_token"])
    assert header["alg"] == "HS256"
    decoded = jwt.decode(body["access_token"], TEST_SECRET_KEY, algorithms=["HS256"], issuer=ISSUER)
    assert decoded["sub"] == "admin"
    assert decoded["exp"] - decoded["iat"] == 3600
    assert decoded["jti"]


@pytest.mark.parametrize(
    "credentials",
    [
        {"username": "admin", "password": "wrong"},
        {"username": "root", "password": "admin"},
        {"username": "ADMIN", "password": "admin"},
    ],
)
async def test_wrong_credentials_are_refused(client: Client, credentials: dict[str, str]) -> None:
    response = await client.post("/api/login", json=credentials)

    await assert_unauthorized(response)
    assert "access_token" not in await response.get_json()


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


BAD_AUTHORIZATION = {
    "missing": None,
    "another scheme": "Basic YWRtaW46YWRtaW4=",
    "empty bearer": "Bearer ",
    "garbage": "Bearer not.a.token",
    "expired": "Bearer " + signed(claims(iat=int(time.time()) - 120, exp=int(time.time()) - 60)),
    "wrongly signed": "Bearer " + signed(claims(), key=OTHER_KEY),
    "alg none": "Bearer " + unsigned(claims()),
    "HS512 with the right key": "Bearer " + signed(claims(), algorithm="HS512"),
    "wrong issuer": "Bearer " + signed(claims(iss="someone-else")),
    "unknown subject": "Bearer " + signed(claims(sub="mallory")),
    **{
        f"without {claim}": "Bearer " + signed(claims(**{claim: None}))
        for claim in ("iss", "sub", "iat", "exp", "jti")
    },
}


@pytest.mark.parametrize("authorization", BAD_AUTHORIZATION.values(), ids=BAD_AUTHORIZATION.keys())
async def test_bad_tokens_are_refused(client: Client, authorization: str | None) -> None:
    headers = {} if authorization is None else {"Authorization": authorization}

    response = await client.get("/api/tasks", headers=headers)

    await assert_unauthorized(response)


async def test_a_well_formed_token_of_the_right_key_is_accepted(client: Client) -> None:
    """The counterpart of the attacks above: the same construction, done right, passes."""
    response = await client.get(
        "/api/tasks", headers={"Authorization": "Bearer " + signed(claims())}
    )

    assert response.status_code == 200


PROTECTED = [
    ("GET", "/api/tasks"),
    ("POST", "/api/tasks"),
    ("GET", "/api/tasks/1"),
    ("PUT", "/api/tasks/1"),
    ("PATCH", "/api/tasks/1"),
    ("DELETE", "/api/tasks/1"),
]


@pytest.mark.parametrize(("method", "path"), PROTECTED)
async def test_every_task_route_needs_a_token(client: Client, method: str, path: str) -> None:
    response = await client.open(path, method=method, json={"title": "x", "done": False})

    await assert_unauthorized(response)


async def test_an_anonymous_request_is_refused_before_its_body_is_read(client: Client) -> None:
    response = await client.post(
        "/api/tasks", data="{not json", headers={"Content-Type": "application/json"}
    )

    await assert_unauthorized(response)
