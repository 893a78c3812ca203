"""Fences around code that reaches below a library's public API.

A `Fence` names one patch or private use, the library versions it was written
against, the upstream change that would make it unnecessary, and each thing
it touches. `Fence.check` raises `FenceBroken`, naming the fence, when the
installed version is another or anything it touches is gone or has changed
shape: an upgrade then stops a worker at start-up, not a request later.

The serving wing fences Hypercorn (`serving.patches`), the storage wing
SQLAlchemy (`storage.internals`).
"""

from __future__ import annotations

import inspect
import types
from collections.abc import Iterator
from dataclasses import dataclass
from importlib.metadata import version
from typing import Any, Literal

Kind = Literal["class", "function", "async function", "attribute", "named in"]


class FenceBroken(RuntimeError):
    """A fenced patch no longer fits the library installed; the message names the patch."""


@dataclass(frozen=True)
class Touch:
    """One thing a fence relies on: `name` on `owner`, of `kind`.

    `named in`: the function `owner` (or a function nested in it) refers to
    `name`, as an attribute it sets or reads, or a global it looks up: how a
    patch knows that replacing a module's global or an instance's attribute
    still reaches the code that uses it.
    """

    owner: Any
    name: str
    kind: Kind
    parameters: tuple[str, ...] | None = None

    def problem(self) -> str | None:
        where = (
            f"{getattr(self.owner, '__qualname__', getattr(self.owner, '__name__', self.owner))}"
        )
        if self.kind == "named in":
            if self.name in set(_names_in(self.owner.__code__)):
                return None
            return f"{where} no longer refers to {self.name}"
        if not hasattr(self.owner, self.name):
            return f"{where}.{self.name} is gone"
        found = getattr(self.owner, self.name)
        if self.kind == "class" and not inspect.isclass(found):
            return f"{where}.{self.name} is no longer a class"
        if self.kind == "async function" and not inspect.iscoroutinefunction(found):
            return f"{where}.{self.name} is no longer a coroutine function"
        if self.kind == "function" and not callable(found):
            return f"{where}.{self.name} is no longer callable"
        if self.parameters is not None:
            parameters = tuple(inspect.signature(found).parameters)
            if parameters != self.parameters:
                return f"{where}.{self.name} now takes {parameters}, not {self.parameters}"
        return None


@dataclass(frozen=True)
class Fence:
    """A patch or private use of `library`, written for versions starting with `versions`."""

    name: str
    library: str
    versions: tuple[str, ...]
    unnecessary_when: str
    touches: tuple[Touch, ...]

    def check(self) -> None:
        problems = [problem for touch in self.touches if (problem := touch.problem())]
        installed = version(self.library)
        if not installed.startswith(self.versions):
            problems.insert(0, f"{self.library} is {installed}")
        if problems:
            raise FenceBroken(
                f"the patch '{self.name}' does not fit: {'; '.join(problems)}. It was written "
                f"for {self.library} {' or '.join(v + 'x' for v in self.versions)}, and is "
                f"needed until {self.unnecessary_when}."
            )


def check_all(fences: tuple[Fence, ...]) -> None:
    for fence in fences:
        fence.check()


def _names_in(code: types.CodeType) -> Iterator[str]:
    yield from code.co_names
    for constant in code.co_consts:
        if isinstance(constant, types.CodeType):
            yield from _names_in(constant)
