"""Signed tokens: verified once per process, and never accepted when altered or foreign."""

from __future__ import annotations

from pathlib import Path

from quart import Quart

from quart_tasks.services import services
from quart_tasks.web import signed
from tests.helpers.apps import serving, settings_for_test

PURPOSE = b"test purpose"


async def test_a_token_verifies_to_its_content_and_is_remembered(app: Quart) -> None:
    async with app.app_context():
        token = signed.sign({"a": 1, "k": [2, 3]}, PURPOSE)

        first = signed.verify(token, PURPOSE)
        assert first == {"a": 1, "k": [2, 3]}
        first["a"] = 99  # a caller's changes do not reach the remembered content
        assert signed.verify(token, PURPOSE) == {"a": 1, "k": [2, 3]}
        assert (PURPOSE, token) in services().key_ring.verified


async def test_an_altered_token_or_another_purpose_is_refused_and_not_remembered(
    app: Quart,
) -> None:
    async with app.app_context():
        token = signed.sign({"a": 1}, PURPOSE)
        payload, mac = token.split(".")
        altered = f"{payload[:-1]}{'A' if payload[-1] != 'A' else 'B'}.{mac}"

        assert signed.verify(altered, PURPOSE) is None
        assert signed.verify(token, b"another purpose") is None
        assert services().key_ring.verified == {}


async def test_the_remembered_tokens_are_bounded(app: Quart) -> None:
    async with app.app_context():
        tokens = [signed.sign({"n": n}, PURPOSE) for n in range(signed.VERIFIED_KEPT + 5)]
        for token in tokens:
            assert signed.verify(token, PURPOSE) is not None

        verified = services().key_ring.verified
        assert len(verified) == signed.VERIFIED_KEPT
        assert (PURPOSE, tokens[0]) not in verified
        assert (PURPOSE, tokens[-1]) in verified


async def test_a_token_of_another_secret_is_refused(app: Quart, tmp_path: Path) -> None:
    other = settings_for_test(
        tmp_path, SECRET_KEY="another-secret-key-long-enough-for-hmac-0123456789"
    )
    # The same database as `app`'s: only the secret differs.
    async with serving(other, fresh_schema=False) as other_app, other_app.app_context():
        foreign = signed.sign({"a": 1}, PURPOSE)

    async with app.app_context():
        assert signed.verify(foreign, PURPOSE) is None
