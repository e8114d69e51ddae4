"""Signals a batch job gets: stop at the next chunk boundary with a checkpoint.

Schedulers send SIGTERM (SLURM, Kubernetes, preemptible VMs) or SIGHUP (a closed
terminal or ssh session) some seconds before they kill a job. `handling()` turns these,
and Ctrl-C (SIGINT), into a flag; the run loop calls `check()` at every chunk and block
boundary, which writes nothing itself but raises `Stopped` once a signal came, after the
caller has saved its checkpoint. The CLI then prints one line saying how to resume and
exits 128 + the signal number (143 for SIGTERM, 129 for SIGHUP, 130 for Ctrl-C).

A flag rather than an exception from the handler: an exception raised inside JAX's
start-up or a garbage-collector callback is swallowed or aborts the process, so Ctrl-C
during start-up used to be lost; the flag survives until the next check. A second Ctrl-C
raises KeyboardInterrupt at once, for a user who does not want to wait for the chunk.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator

HANDLED = (signal.SIGTERM, signal.SIGHUP, signal.SIGINT)

_pending: int | None = None


class Stopped(Exception):  # noqa: N818 (a stop request, not an error)
    """A signal asked the run to stop; raised at a chunk or block boundary."""

    def __init__(self, signum: int):
        self.signum = signum
        super().__init__(signal.Signals(signum).name)

    @property
    def exit_code(self) -> int:
        return 128 + self.signum

    @property
    def name(self) -> str:
        return "Ctrl-C" if self.signum == signal.SIGINT else signal.Signals(self.signum).name


def _handler(signum, frame) -> None:
    global _pending
    if signum == signal.SIGINT and _pending == signal.SIGINT:
        raise KeyboardInterrupt  # the second Ctrl-C: now
    _pending = signum


def pending() -> int | None:
    """The signal received and not yet acted on, or None."""
    return _pending


def check() -> None:
    """Raise `Stopped` if a handled signal came since `handling()` began."""
    if _pending is not None:
        raise Stopped(_pending)


def install() -> None:
    """Catch SIGTERM, SIGHUP and SIGINT as a flag from now on (the `geomtoy` command's
    first act; main thread only; signals ignored by the parent stay ignored)."""
    if threading.current_thread() is not threading.main_thread():
        return
    for s in HANDLED:
        if signal.getsignal(s) is not signal.SIG_IGN:
            signal.signal(s, _handler)


def ended() -> None:
    """The command has ended and its status is decided: from now on Ctrl-C and SIGHUP
    are ignored, so one during the interpreter's teardown (which restores the default
    handlers and can take seconds with JAX loaded) cannot turn a success into a silent
    death by signal."""
    if threading.current_thread() is threading.main_thread():
        for s in (signal.SIGINT, signal.SIGHUP):
            signal.signal(s, signal.SIG_IGN)


@contextlib.contextmanager
def handling() -> Iterator[None]:
    """Catch SIGTERM, SIGHUP and SIGINT as a flag for the duration (main thread only;
    elsewhere, e.g. a notebook's worker thread, signals keep their handlers)."""
    global _pending
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    saved = {}
    for s in HANDLED:
        current = signal.getsignal(s)
        if current is signal.SIG_IGN:  # nohup, or a background job: keep ignoring it
            continue
        saved[s] = signal.signal(s, _handler)
    try:
        yield
    finally:
        for s, h in saved.items():
            signal.signal(s, h)
        _pending = None
