"""ETags from resource versions, and the `If-Match` / `If-None-Match` preconditions."""

from __future__ import annotations

from dataclasses import dataclass

from quart import request
from werkzeug.datastructures import ETags
from werkzeug.http import parse_etags, quote_etag

from quart_tasks.web.compression import version_tag
from quart_tasks.web.errors import APIError


def etag(version: int) -> str:
    return quote_etag(str(version))


@dataclass(frozen=True, slots=True)
class VersionMatch:
    """What an `If-Match` header accepts: any version (`*`) or the listed ones."""

    any_version: bool
    versions: frozenset[int]

    def accepts(self, version: int) -> bool:
        return self.any_version or version in self.versions


def if_match() -> VersionMatch | None:
    """The request's `If-Match`, or None without one. Weak tags never match (RFC 9110)."""
    header = request.if_match
    return version_match(header) if header else None


def parse_if_match(value: str) -> VersionMatch:
    """An `If-Match` value given some other way than the header (a batch's command)."""
    return version_match(parse_etags(value))


def version_match(tags: ETags) -> VersionMatch:
    # A tag of more digits than a BIGINT has cannot name a version: skip, not overflow.
    strong = (version_tag(tag) for tag in tags.as_set())
    versions = frozenset(
        int(tag) for tag in strong if tag.isascii() and tag.isdigit() and len(tag) <= 18
    )
    return VersionMatch(any_version=tags.star_tag, versions=versions)


def not_modified(version: int) -> str | None:
    """The ETag of a 304 while `If-None-Match` names this version, in any encoding: the
    tag the client named (`"5-gzip"` for its compressed copy, as the 200 would say)."""
    header = request.if_none_match
    if not header:
        return None
    if header.star_tag:
        return etag(version)
    for tag in header.as_set(include_weak=True):
        if version_tag(tag) == str(version):
            return quote_etag(tag)
    return None


def precondition_failed(current_version: int) -> APIError:
    return APIError(
        412,
        "precondition_failed",
        "The resource has changed: If-Match does not name its current ETag",
        headers={"ETag": etag(current_version)},
    )
