"""What a process's requests ask of the database within a moment, answered by one run.

One statement for many askers costs the database and the driver less than one
each: reads by id share a `WHERE id = ANY(...)`, reads of the log's bounds
share one read, creates share one statement and one commit. A `Gatherer`
holds the askers of the moment, hands them to its `answer` in runs of at
most `max_per_run`, and gives each asker its own answer, or the error that the
whole run met.

When a run starts:
- after `gather_turns` turns of the event loop, the first asker's included, for
  reads: a request's way from its socket to its read takes the loop several
  turns, so one turn catches only the requests of one readiness poll;
- with `serial`, one run at a time: the first asker goes at once, and those who
  ask while a run is under way go together in the next (a database's group
  commit). A quiet process adds no wait; a busy one puts more in each run.

An asker whose request was cancelled meanwhile (its client left) is not asked
for. A run serves many requests, so it runs in its own empty context, not the
first asker's.
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

Asked = TypeVar("Asked")
Answer = TypeVar("Answer")

GATHER_TURNS = 3
"""The turns a read gathers for, its own included. At 64 connections S5's reads by id,
gathered over one turn, went 3-4 to a statement; over three turns they go more to
one, and `bench/ab.py` measured fewer statements as less CPU and more requests a
second (docs/performance/11-read-askers-over-three-turns.md); a fourth turn gained
no more."""

Answers = Callable[[Sequence[Asked]], Awaitable[Sequence["Answer | BaseException"]]]
"""Answers a run's askers, one answer (or the error for that asker alone) per asker, in order."""


@dataclass(slots=True)
class _Waiting(Generic[Asked, Answer]):
    asked: Asked
    answer: asyncio.Future[Answer] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )


class Gatherer(Generic[Asked, Answer]):
    """Answers what is asked within a moment in runs (see the module's docstring)."""

    def __init__(
        self,
        answer: Answers[Asked, Answer],
        *,
        max_per_run: int,
        gather_turns: int = 0,
        serial: bool = False,
    ) -> None:
        self.answer = answer
        self.max_per_run = max_per_run
        self.gather_turns = gather_turns
        self.serial = serial
        self._waiting: list[_Waiting[Asked, Answer]] = []
        self._gathering = False
        self._runs: set[asyncio.Task[None]] = set()

    async def ask(self, asked: Asked) -> Answer:
        waiting: _Waiting[Asked, Answer] = _Waiting(asked)
        self._waiting.append(waiting)
        if not self._gathering:
            self._gathering = True
            if self.gather_turns > 0:
                asyncio.get_running_loop().call_soon(self._after_turns, self.gather_turns - 1)
            else:
                self._after_turns(0)
        return await waiting.answer

    def _after_turns(self, turns_left: int) -> None:
        """Run at the start of each turn the run still gathers for; then start it."""
        if turns_left > 0:
            asyncio.get_running_loop().call_soon(self._after_turns, turns_left - 1)
        elif self.serial:
            self._spawn(self._run_in_turn())
        else:
            self._gathering = False
            while self._waiting:
                self._spawn(self._run(self._take()))

    def _take(self) -> list[_Waiting[Asked, Answer]]:
        askers = self._waiting[: self.max_per_run]
        del self._waiting[: self.max_per_run]
        return askers

    def _spawn(self, run: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(run, context=contextvars.Context())
        self._runs.add(task)
        task.add_done_callback(self._runs.discard)

    async def _run_in_turn(self) -> None:
        try:
            while self._waiting:
                await self._run(self._take())
        finally:
            self._gathering = False
            for waiting in self._waiting:  # left only when the run was cancelled (shutdown)
                waiting.answer.cancel()
            self._waiting.clear()

    async def _run(self, askers: list[_Waiting[Asked, Answer]]) -> None:
        askers = [waiting for waiting in askers if not waiting.answer.done()]
        if not askers:
            return
        try:
            answers = await self.answer([waiting.asked for waiting in askers])
        except asyncio.CancelledError:  # shutdown
            for waiting in askers:
                waiting.answer.cancel()
            raise
        except Exception as error:  # an outage (503) or a fault: each asker meets it
            answers = [error] * len(askers)
        if len(answers) != len(askers):  # else an asker would wait forever
            fault = RuntimeError(f"{len(answers)} answers for {len(askers)} askers")
            answers = [fault] * len(askers)
        for waiting, answer in zip(askers, answers, strict=True):
            if waiting.answer.done():  # cancelled meanwhile: its client has gone
                continue
            if isinstance(answer, BaseException):
                waiting.answer.set_exception(answer)
            else:
                waiting.answer.set_result(answer)
