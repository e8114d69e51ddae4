"""One writer per results directory: advisory locks on small files inside it.

Every process that writes a results directory holds its *run lock*
(`DIR/.geomtoy.runs.lock`) from before its first write until it ends:

- a whole run (`geomtoy run`, `merge`, `--overwrite`) holds it exclusively;
- the tasks of one job array (`--worker K/N`, or the processes of a jax.distributed
  job) hold it shared, each also holding its own *worker lock*
  (`DIR/.geomtoy-worker-K.lock`) exclusively, so the same task cannot run twice;
- whoever writes meta.json or assembles the tables holds the *meta lock*
  (`DIR/.geomtoy-meta.lock`) exclusively for that short moment, so the tasks of an
  array agree on the sweep and assemble the tables exactly once.

A run or worker lock that is held is never waited for: the second process is refused
with one line naming the holder's PID and host (`Locked`, exit 2); a task of a job array
of N is refused while tasks of an array of another N hold their worker locks (the two
arrays would split the blocks differently and leave some to no one). The meta lock is
waited for, polling, and the wait ends at once on SIGTERM, SIGHUP or Ctrl-C
(geomtoy.runs.signals) and, after its timeout, names the process that holds it. Each lock file records its holder
as one JSON line; the kernel drops a lock when its process dies (even by SIGKILL), so a
lock file left behind by a killed run is reused, never trusted. Lock files are opened
without following links and must be regular files: a link or FIFO planted under a lock
file's name is refused with one line, never written through or waited on.

Locks are `flock(2)`. On local file systems they are exact. On NFS (Linux >= 2.6.12)
flock is emulated with POSIX byte-range locks and works across clients when the
server's lock manager runs; with the `nolock` mount option, or on file systems that do
not implement locks (some FUSE mounts such as gcsfuse, Lustre without `-o flock`), a
lock only excludes processes on the same host. Where locking is not supported at all
the run goes on with one warning line, and nothing detects a second writer.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import platform
import stat
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from geomtoy.errors import SweepError
from geomtoy.runs import signals

RUN_LOCK = ".geomtoy.runs.lock"
META_LOCK = ".geomtoy-meta.lock"
WORKER_LOCK = ".geomtoy-worker-{k}.lock"
LOCK_FILES = (RUN_LOCK, META_LOCK)
"""Hidden bookkeeping files of a results directory (with the worker locks)."""

_UNSUPPORTED = (errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS, errno.EINVAL)


class Locked(SweepError):
    """The directory is being written by another process."""


def is_lock_file(name: str) -> bool:
    return name in LOCK_FILES or (name.startswith(".geomtoy-worker-") and name.endswith(".lock"))


def _describe(info: dict) -> str:
    who = f"PID {info.get('pid', '?')} on {info.get('host', '?')}"
    if "worker" in info:
        who += f" (worker {info['worker']})"
    return who


_OPEN = os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC


def _open(path: Path, flags: int) -> int:
    """A lock file's descriptor, never through a link nor of a FIFO or device:
    SweepError if `path` is one."""
    try:
        fd = os.open(path, flags | _OPEN, 0o644)
    except OSError as e:
        if e.errno != errno.ELOOP:
            raise
        raise SweepError(
            path, None, "is a symbolic link, not a geomtoy lock file; remove it"
        ) from None
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise SweepError(path, None, "is not a regular file, not a geomtoy lock file; remove it")
    return fd


def _read_holder(path: Path) -> dict:
    with contextlib.suppress(OSError, ValueError, SweepError, RecursionError):
        fd = _open(path, os.O_RDONLY)
        try:
            info = json.loads(os.read(fd, 4096) or b"{}")
        finally:
            os.close(fd)
        if isinstance(info, dict):
            return {k: v for k, v in info.items() if isinstance(v, str | int | float)}
    return {}


def holders(directory: Path) -> list[str]:
    """Who holds the locks of `directory`, from its lock files (for messages): the tasks
    of a job array if some hold their worker locks, else the run lock's holder."""
    directory = Path(directory)
    workers = [
        _describe(_read_holder(p))
        for p in sorted(directory.glob(".geomtoy-worker-*.lock"))
        if _is_held(p)
    ]
    if workers:
        return workers
    run = directory / RUN_LOCK
    return [_describe(_read_holder(run))] if _is_held(run) else []


def _worker_arrays(directory: Path, mine: Path | None = None) -> dict[int, str]:
    """{N: a holder} for the job arrays whose tasks now hold worker locks in `directory`
    (other than the lock file `mine`)."""
    arrays = {}
    for p in sorted(Path(directory).glob(".geomtoy-worker-*.lock")):
        info = _read_holder(p)
        if p != mine and _is_held(p):
            with contextlib.suppress(ValueError, TypeError, AttributeError):
                arrays.setdefault(int(str(info["worker"]).split("/")[1]), _describe(info))
    return arrays


def _is_held(path: Path) -> bool:
    """Whether some process holds a lock on `path` (probed with a shared lock)."""
    try:
        fd = _open(path, os.O_RDONLY)
    except (OSError, SweepError):
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except OSError as e:
        return e.errno in (errno.EWOULDBLOCK, errno.EAGAIN)
    finally:
        os.close(fd)
    return False


def check_free(directory: Path, worker: tuple[int, int] | None = None) -> None:
    """Locked if a run now holds `directory` in a way that excludes this one: any
    whole run, or (for a whole run) the tasks of a job array. Only reads."""
    directory = Path(directory)
    workers = [p for p in directory.glob(".geomtoy-worker-*.lock") if _is_held(p)]
    if _is_held(directory / RUN_LOCK) or (worker is None and workers):
        lock = FileLock(
            directory / RUN_LOCK, what="" if worker is None else "(not of this job array)"
        )
        raise lock._refusal()


def _warn(message: str) -> None:
    with contextlib.suppress(OSError, ValueError):
        print(f"geomtoy: warning: {message}", file=sys.stderr, flush=True)


class FileLock:
    """One flock on one lock file; `acquire` refuses (Locked) instead of waiting."""

    def __init__(self, path: Path, *, shared: bool = False, what: str = "", info: dict = ()):
        self.path, self.shared, self.what = Path(path), shared, what
        self.info = dict(info)
        self.fd: int | None = None
        self.supported = True

    def acquire(self, warn: Callable[[str], None] = _warn) -> FileLock:
        mode = (fcntl.LOCK_SH if self.shared else fcntl.LOCK_EX) | fcntl.LOCK_NB
        for _ in range(100):  # retried only if the file was replaced while we locked it
            fd = _open(self.path, os.O_RDWR | os.O_CREAT)
            try:
                fcntl.flock(fd, mode)
            except OSError as e:
                os.close(fd)
                if e.errno in _UNSUPPORTED:
                    warn(
                        f"{self.path.parent}: file locks are not supported here ({e.strerror}); "
                        "a second writer of this directory would not be detected"
                    )
                    self.supported = False
                    return self
                if e.errno not in (errno.EWOULDBLOCK, errno.EAGAIN):
                    raise
                raise self._refusal() from None
            try:  # the holder before us may have removed the file: lock the one in place
                same = os.fstat(fd).st_ino == os.lstat(self.path).st_ino
            except FileNotFoundError:
                same = False
            if same:
                self.fd = fd
                if not self.shared:
                    self._record()
                return self
            os.close(fd)
        raise OSError(errno.EAGAIN, "lock file keeps changing", str(self.path))

    def _record(self) -> None:
        info = {"pid": os.getpid(), "host": platform.node(), "since": time.time()} | self.info
        data = (json.dumps(info) + "\n").encode()
        with contextlib.suppress(OSError):  # the holder line is for messages only
            os.ftruncate(self.fd, 0)
            os.pwrite(self.fd, data, 0)

    def _refusal(self) -> Locked:
        if self.path.name == META_LOCK:  # its holder line (the waiter holds its worker lock)
            info = _read_holder(self.path)
            names = [_describe(info)] if info else []
        else:
            names = holders(self.path.parent)
        what = f" {self.what}" if self.what else ""
        reason = (
            f"in use by another geomtoy process{what} ({', '.join(names) or 'holder unknown'}); "
            "wait for it to end, or stop it (its checkpoints are kept)"
        )
        return Locked(self.path.parent, None, reason)

    def release(self, remove: bool = True) -> None:
        """Unlock; with `remove`, delete the lock file if no one else holds it."""
        if self.fd is None:
            return
        fd, self.fd = self.fd, None
        try:
            if remove:
                try:  # exclusive means no one else holds it: safe to remove
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    with contextlib.suppress(FileNotFoundError):
                        if os.fstat(fd).st_ino == os.lstat(self.path).st_ino:
                            os.unlink(self.path)
                except OSError:
                    pass
        finally:
            os.close(fd)

    def __enter__(self) -> FileLock:
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()


def run_lock(
    directory: Path, *, worker: tuple[int, int] | None = None, command: str = ""
) -> list[FileLock]:
    """Take the run lock of `directory` (creating it): exclusive for a whole run, shared
    plus the worker lock for task K of a job array of N (`worker=(K, N)`).
    Locked if refused; release with `release_all`."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    info = {"command": command} if command else {}
    if worker is None:
        return [FileLock(directory / RUN_LOCK, info=info).acquire()]
    k, n = worker
    shared = FileLock(directory / RUN_LOCK, shared=True, what="(not of this job array)")
    locks = [shared.acquire()]
    try:
        _refuse_other_arrays(directory, n, None)
        mine = FileLock(
            directory / WORKER_LOCK.format(k=k),
            what=f"as worker {k}/{n}",
            info=info | {"worker": f"{k}/{n}"},
        )
        locks.append(mine.acquire())
        _refuse_other_arrays(directory, n, mine.path)  # one that started as we did
    except BaseException:
        release_all(locks)
        raise
    return locks


def _refuse_other_arrays(directory: Path, n: int, mine: Path | None) -> None:
    """Locked if tasks of a job array of another size than `n` hold worker locks."""
    others = {size: who for size, who in _worker_arrays(directory, mine).items() if size != n}
    if others:
        size, who = next(iter(others.items()))
        reason = (
            f"in use by the tasks of a job array of {size} ({who}); this task is of an "
            f"array of {n}: give --worker K/{size}, or wait for them to end"
        )
        raise Locked(directory, None, reason)


def release_all(locks: list[FileLock]) -> None:
    for lock in reversed(locks):
        lock.release()
    locks.clear()


@contextlib.contextmanager
def meta_lock(directory: Path, timeout_s: float = 600.0) -> Iterator[None]:
    """The short exclusive lock around writing meta.json or assembling the tables.
    Waits up to `timeout_s` (the holders keep it for moments), then refuses naming the
    holder; a signal (SIGTERM, SIGHUP, Ctrl-C) ends the wait at once (`signals.Stopped`)."""
    lock = FileLock(Path(directory) / META_LOCK, what="(writing meta.json)")
    deadline = time.monotonic() + timeout_s
    while True:
        signals.check()
        try:
            lock.acquire()
            break
        except Locked:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)
    try:
        yield
    finally:
        lock.release()
