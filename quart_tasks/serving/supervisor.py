"""Run Hypercorn workers and keep them running: a dead worker is replaced, the others serve on.

Hypercorn's own master (`hypercorn.run.run`) stops the whole server when any
worker exits with a non-zero code, so one crashed or OOM-killed worker would take
every other worker down with it. This supervisor starts the same worker function
Hypercorn's master starts, on the same shared listening sockets, and differs only
in what follows a worker's death: it logs it and starts a replacement, after a
delay that doubles while workers keep dying young (a crash loop) and resets once
one has stayed up.

SIGTERM or SIGINT, sent to the supervisor or to the whole process group, shuts
down gracefully: every worker stops accepting, finishes its requests within
Hypercorn's `graceful_timeout`, and exits. SIGHUP replaces the workers: a new one
starts for each, and an old one is told to stop only once a new one is serving,
so the old code serves until the new code can, and a release whose workers
cannot start leaves the old ones serving.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from multiprocessing import get_context
from multiprocessing.connection import Connection, wait
from multiprocessing.context import SpawnContext, SpawnProcess
from multiprocessing.synchronize import Event
from typing import Any

from hypercorn.config import Config, Sockets
from hypercorn.utils import load_application, write_pid_file

from quart_tasks.logs import LOGGER_NAME
from quart_tasks.serving.accepting import AcceptShare, ConnectionCounts, sharing_accepts
from quart_tasks.serving.lifecycle import begin_draining
from quart_tasks.serving.patches import install_serving_patches
from quart_tasks.serving.tuning import UNTUNED, ProcessTuning

logger = logging.getLogger(f"{LOGGER_NAME}.server")

FIRST_RESTART_DELAY = 0.1
MAX_RESTART_DELAY = 10.0
STABLE_AFTER = 10.0
"""A worker that lived this long was not part of a crash loop: the delay resets."""
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)
WORKER_IGNORED_SIGNALS = (*STOP_SIGNALS, signal.SIGHUP)
"""Sent to the whole process group, these are the supervisor's to act on, not the workers'."""
GRACE_MARGIN = 5.0
DRAIN_SECONDS = 0.2


class WorkerStopSignal:
    """A worker's stop signal: its own event is set, or the supervisor is gone.

    Hypercorn's worker polls `is_set()` on its event loop. Checking the parent too
    means a killed supervisor does not leave orphaned workers serving forever.

    When Hypercorn stops a worker it closes every connection that has not sent a
    request yet, and it goes on accepting until it closes its listeners. So the
    worker first stops accepting, leaving new connections to the other workers,
    and only reports the signal `DRAIN_SECONDS` later, once the connections it
    already accepted have had time to send their requests.

    Hypercorn first polls the signal once its worker serves: that first call
    tells the supervisor so, through `serving`.
    """

    def __init__(
        self,
        event: Event,
        parent_pid: int,
        share: AcceptShare,
        serving: Connection | None = None,
    ) -> None:
        self.event = event
        self.parent_pid = parent_pid
        self.share = share
        self.serving = serving
        self.listeners: list[socket.socket] = []
        self.draining_since: float | None = None

    def is_set(self) -> bool:
        if self.serving is not None:
            serving, self.serving = self.serving, None
            with contextlib.suppress(OSError):  # the supervisor is gone: the check below
                serving.send_bytes(b"serving")
            serving.close()
        if self.draining_since is None:
            if not (self.event.is_set() or os.getppid() != self.parent_pid):
                return False
            self.draining_since = time.monotonic()
            loop = asyncio.get_running_loop()
            for listener in self.listeners:
                loop.remove_reader(listener.fileno())
            self.share.stop_accepting()
            begin_draining()  # ends the event streams, which would never end by themselves
        return time.monotonic() - self.draining_since >= DRAIN_SECONDS


def run_worker(
    config: Config,
    sockets: Sockets,
    stop: WorkerStopSignal,
    tuning: ProcessTuning = UNTUNED,
) -> None:
    """A worker process's entry point: Hypercorn's worker function for the configured loop.

    The patches go in first: one that no longer fits the installed Hypercorn stops
    the worker here, with an error naming it, before it touches a socket. The
    process is tuned once the app is loaded (Hypercorn's worker function finds it
    loaded), so that what loading made is frozen out of the collector's walks."""
    install_serving_patches()
    load_application(config.application_path, config.wsgi_max_body_size)
    tuning.apply()
    for signum in WORKER_IGNORED_SIGNALS:
        signal.signal(signum, signal.SIG_IGN)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, WORKER_IGNORED_SIGNALS)
    sockets = sharing_accepts(config, sockets, stop.share)
    stop.listeners = [*sockets.secure_sockets, *sockets.insecure_sockets]
    if config.worker_class == "uvloop":
        from quart_tasks.serving.uvloop_accepting import uvloop_worker as worker
    else:
        from hypercorn.asyncio.run import asyncio_worker as worker
    worker(config=config, sockets=sockets, shutdown_event=stop)


@dataclass
class Worker:
    process: SpawnProcess
    stop: Event
    slot: int | None
    serving: Connection | None = None
    """Readable once the worker serves (or has died); None once heard."""
    generation: int = 0
    """How many reloads came before its start."""
    started_at: float = field(default_factory=time.monotonic)
    retiring: bool = False

    @property
    def pid(self) -> int:
        assert self.process.pid is not None
        return self.process.pid


@dataclass
class RestartPolicy:
    """How long to wait before replacing a dead worker."""

    delay: float = 0.0

    def after_exit(self, uptime: float, exitcode: int) -> float:
        if exitcode == 0 or uptime >= STABLE_AFTER:  # a clean exit or a long life: no loop
            self.delay = 0.0
        else:
            self.delay = min(MAX_RESTART_DELAY, max(FIRST_RESTART_DELAY, self.delay * 2))
        return self.delay


class Supervisor:
    def __init__(
        self,
        config: Config,
        *,
        tuning: ProcessTuning = UNTUNED,
        on_worker_exit: Callable[[int], None] | None = None,
    ) -> None:
        if config.worker_class not in ("asyncio", "uvloop"):
            raise ValueError(f"worker_class {config.worker_class!r} is not supported")
        self.config = config
        self.tuning = tuning
        self.on_worker_exit = on_worker_exit
        self.context: SpawnContext = get_context("spawn")
        # Room to spare: SIGHUP starts each replacement before its predecessor leaves.
        self.connection_counts = ConnectionCounts(self.context, 4 * max(1, config.workers))
        self.workers: list[Worker] = []
        self.replaced: list[Worker] = []  # reloaded, each to stop once a newer worker serves
        self.generation = 0
        self.pending_starts: list[float] = []  # when each awaited replacement is due
        self.policy = RestartPolicy()
        self.stopping = False
        self.reload_requested = False
        self.exitcode = 0

    def run(self) -> int:
        """Serve until told to stop; the exit code is non-zero if a worker failed to stop."""
        if self.config.pid_path is not None:
            write_pid_file(self.config.pid_path)
        sockets = self.config.create_sockets()
        wakeup_reader, wakeup_writer = socket.socketpair()
        wakeup_writer.setblocking(False)
        previous_wakeup_fd = signal.set_wakeup_fd(wakeup_writer.fileno())
        try:
            with self._handling_signals():
                for _ in range(self.config.workers):
                    self.workers.append(self._start(sockets))
                self._supervise(sockets, wakeup_reader)
                self._stop_all()
        finally:
            signal.set_wakeup_fd(previous_wakeup_fd)
            wakeup_reader.close()
            wakeup_writer.close()
            for sock in [*sockets.secure_sockets, *sockets.insecure_sockets]:
                sock.close()
        return self.exitcode

    def _supervise(self, sockets: Sockets, wakeup: socket.socket) -> None:
        while not self.stopping:
            timeout = None
            if self.pending_starts:
                timeout = max(0.0, min(self.pending_starts) - time.monotonic())
            sentinels: list[Any] = [worker.process.sentinel for worker in self.workers]
            serving = [w.serving for w in self.workers if w.serving is not None]
            ready = wait([*sentinels, *serving, wakeup], timeout)
            if wakeup in ready:
                _drain(wakeup)
            if self.stopping:
                return
            self._reap(ready)
            self._hear_serving(ready)
            self._start_due(sockets)
            if self.reload_requested:
                self.reload_requested = False
                self._replace_all(sockets)

    def _reap(self, ready: list[Any]) -> None:
        for worker in [w for w in self.workers if w.process.sentinel in ready]:
            worker.process.join()
            self.workers.remove(worker)
            if worker.slot is not None:
                self.connection_counts.release(worker.slot)
            if self.on_worker_exit is not None:
                self.on_worker_exit(worker.pid)
            exitcode = worker.process.exitcode or 0
            if worker.serving is not None:
                worker.serving.close()
                worker.serving = None
            if worker.retiring:
                logger.info("worker %s stopped (%s)", worker.pid, _describe_exit(exitcode))
                continue
            if worker in self.replaced:  # its replacement has already started
                self.replaced.remove(worker)
                logger.warning(
                    "worker %s exited (%s) while being replaced",
                    worker.pid,
                    _describe_exit(exitcode),
                )
                continue
            uptime = time.monotonic() - worker.started_at
            delay = self.policy.after_exit(uptime, exitcode)
            logger.warning(
                "worker %s exited (%s) after %.1f s; replacing it in %.1f s",
                worker.pid,
                _describe_exit(exitcode),
                uptime,
                delay,
            )
            self.pending_starts.append(time.monotonic() + delay)

    def _start_due(self, sockets: Sockets) -> None:
        now = time.monotonic()
        due = [when for when in self.pending_starts if when <= now]
        for when in due:
            self.pending_starts.remove(when)
            self.workers.append(self._start(sockets))

    def _hear_serving(self, ready: list[Any]) -> None:
        for worker in [w for w in self.workers if w.serving is not None and w.serving in ready]:
            assert worker.serving is not None
            try:
                worker.serving.recv_bytes()
            except EOFError:  # it died before serving: its sentinel tells the rest
                pass
            else:
                self._retire_one_replaced(worker)
            finally:
                worker.serving.close()
                worker.serving = None

    def _replace_all(self, sockets: Sockets) -> None:
        # A second SIGHUP does not replace again the ones already waiting to leave.
        current = [w for w in self.workers if not w.retiring and w not in self.replaced]
        logger.info("replacing %d workers", len(current))
        self.generation += 1
        for old in current:
            self.workers.append(self._start(sockets))
            self.replaced.append(old)

    def _retire_one_replaced(self, serving: Worker) -> None:
        """A newer worker serves: one it replaces stops, of the generation just before
        its own first (after two reloads, the first's workers may serve after the
        second's: each still takes the place of one older than itself)."""
        older = [w for w in self.replaced if w.generation < serving.generation]
        if not older:
            return  # started before the reload: it replaces nobody
        old = max(older, key=lambda worker: worker.generation)
        self.replaced.remove(old)
        old.retiring = True
        old.stop.set()
        logger.info("worker %s serves; stopping worker %s", serving.pid, old.pid)

    def _start(self, sockets: Sockets) -> Worker:
        stop = self.context.Event()
        slot = self.connection_counts.claim()
        share = AcceptShare(self.connection_counts, slot)
        serving, serving_sent = self.context.Pipe(duplex=False)
        process = self.context.Process(
            target=run_worker,
            kwargs={
                "config": self.config,
                "sockets": sockets,
                "stop": WorkerStopSignal(stop, os.getpid(), share, serving_sent),
                "tuning": self.tuning,
            },
        )
        with _signals_deferred():
            process.start()
        serving_sent.close()  # the worker's end: EOF here once the worker is gone
        worker = Worker(process, stop, slot, serving, generation=self.generation)
        logger.info("worker %s started", worker.pid)
        return worker

    def _stop_all(self) -> None:
        for worker in self.workers:
            worker.stop.set()
        deadline = time.monotonic() + float(self.config.graceful_timeout) + GRACE_MARGIN
        for worker in self.workers:
            worker.process.join(max(0.0, deadline - time.monotonic()))
            if worker.process.exitcode is None:
                logger.error("worker %s did not stop in time; killing it", worker.pid)
                worker.process.kill()
                worker.process.join()
            if worker.process.exitcode != 0:
                self.exitcode = 1
        self.workers.clear()
        self.replaced.clear()

    @contextmanager
    def _handling_signals(self) -> Iterator[None]:
        def stop(*_: object) -> None:
            self.stopping = True

        def reload(*_: object) -> None:
            self.reload_requested = True

        previous = {signum: signal.signal(signum, stop) for signum in STOP_SIGNALS}
        previous[signal.SIGHUP] = signal.signal(signal.SIGHUP, reload)
        try:
            yield
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)


@contextmanager
def _signals_deferred() -> Iterator[None]:
    """Hold group-wide signals while a worker starts: it inherits the mask and ignores
    them once it runs; the supervisor receives them when the mask is restored."""
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, WORKER_IGNORED_SIGNALS)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def _drain(wakeup: socket.socket) -> None:
    wakeup.setblocking(False)
    try:
        while wakeup.recv(512):
            pass
    except BlockingIOError:
        pass


def _describe_exit(exitcode: int) -> str:
    if exitcode < 0:
        return f"killed by {signal.Signals(-exitcode).name}"
    return f"exit code {exitcode}"
