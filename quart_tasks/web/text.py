"""Text every free-text field must be: no NUL character, which PostgreSQL cannot store."""

from __future__ import annotations

from pydantic import AfterValidator


def no_nul(value: str) -> str:
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    return value


NoNul = AfterValidator(no_nul)
