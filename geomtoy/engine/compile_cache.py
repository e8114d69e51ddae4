"""Compiled programs that persist across processes, kept as data that geomtoy checks before
JAX reads it: on by default for `geomtoy run` and for `geomtoy.run` in a notebook alike.

A run compiles a handful of XLA programs per static shape group (init, training chunk,
evaluation, geometry analysis). With the cache on, a second run of the same shapes (a
resume, the next sweep of `make figures`, a rerun with other grid values of the same
shapes) loads them instead of compiling: it still traces and lowers each program, as JAX's
persistent compilation cache is keyed on the lowered program, the compile options, the
devices and the jax/jaxlib versions (code edited in memory is compiled again, as it must).

Where: `--compile-cache DIR`, else $GEOMTOY_COMPILE_CACHE, else $JAX_COMPILATION_CACHE_DIR,
else `$XDG_CACHE_HOME/geomtoy/jax` or `~/.cache/geomtoy/jax`; `--no-compile-cache` (or
GEOMTOY_COMPILE_CACHE=off) turns it off. The directory is safe to delete at any time.

Trust model: an entry is an executable, so whoever can write the cache chooses the machine
code a run executes. The cache is therefore the private data of the user running geomtoy:

* the directory is created 0700; one owned by another user, or writable by group or
  others, is ignored with one warning line and the run compiles everything;
* entries live in a subdirectory named after the CPU (model, feature flags, machine) and
  the jax/jaxlib versions (`store`), so nodes of two CPU generations sharing a home never
  share an executable;
* the store's manifest.json (JSON, no pickle anywhere) binds each entry's name to its
  size and SHA-256. On enabling, every entry is checked against it: one that is not in the
  manifest, differs from it (damaged, or copied under another entry's name) or is not a
  regular file is removed unread, with one warning line, and compiled again;
* JAX reads and writes only a private per-process directory holding hard links to the
  checked entries; what JAX wrote there is hashed and published into the store, under a
  lock, when the run ends (`publish`) and at exit. A killed process's directory and
  temporary files are deleted unread by the next run.

A read-only, foreign or nearly full cache warns once and the run goes on without it; a
cache inside --out is refused (exit 2). The checks cost one SHA-256 pass over the store
per process start. Every program is cached (JAX's default: only those compiling > 1 s).
"""

from __future__ import annotations

import atexit
import contextlib
import dataclasses
import errno
import fcntl
import hashlib
import json
import os
import platform
import re
import secrets
import shutil
import stat
import sys
from pathlib import Path

import jax
import jaxlib
from jax.experimental.compilation_cache import compilation_cache as jax_cache

from geomtoy.errors import SweepError

ENV = "GEOMTOY_COMPILE_CACHE"
JAX_ENV = "JAX_COMPILATION_CACHE_DIR"
OFF = ("0", "off", "false", "no", "none", "")
MANIFEST = "manifest.json"
LOCK = "manifest.lock"
PROC = "proc-"  # a process's private directory (and its lock file, PROC....lock)
TMP = ".tmp-"
FORMAT = 1
MIN_FREE_BYTES = 64 << 20  # below this much free space the disk is full: not used
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.+-]{0,200}")  # an entry: <module>-<hash>-cache


def default_dir() -> Path:
    """The cache directory when nothing overrides it."""
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "geomtoy" / "jax"


def resolve(path: str | Path | None = None, enabled: bool = True) -> Path | None:
    """The directory to use (None: off): `path`, else $GEOMTOY_COMPILE_CACHE, else
    $JAX_COMPILATION_CACHE_DIR, else the default."""
    if not enabled:
        return None
    if path is not None:
        return Path(path).expanduser()
    env = os.environ.get(ENV)
    if env is not None:
        return None if env.strip().lower() in OFF else Path(env).expanduser()
    if os.environ.get(JAX_ENV):
        return Path(os.environ[JAX_ENV]).expanduser()
    return default_dir()


def cpu_identity() -> tuple[str, str, str]:
    """(machine, CPU model, sorted feature flags), from /proc/cpuinfo where there is one."""
    model, flags = "", ""
    with contextlib.suppress(OSError, UnicodeDecodeError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = (s.strip() for s in line.partition(":"))
            if key in ("model name", "cpu model", "Processor", "CPU part") and not model:
                model = value
            if key in ("flags", "Features", "isa") and not flags:
                flags = " ".join(sorted(value.split()))
    return platform.machine(), model or platform.processor(), flags


def machine_tag() -> str:
    """The store's name: machine, jax/jaxlib versions and a digest of the CPU's model and
    feature flags (an executable compiled for one CPU may not run on another)."""
    machine, model, flags = cpu_identity()
    digest = hashlib.sha256(repr((machine, model, flags)).encode()).hexdigest()
    tag = f"{machine or 'cpu'}-jax{jax.__version__}-jaxlib{jaxlib.__version__}"
    return re.sub(r"[^A-Za-z0-9_.+-]", "_", tag) + f"-{digest[:16]}"


# Enabling: checks, then JAX pointed at a private directory ------------------------------


@dataclasses.dataclass
class _Active:
    base: Path
    store: Path
    proc: Path
    proc_lock: int
    known: set[str]  # entries of the private directory already in the store


_active: _Active | None = None
_warned: set[str] = set()


def warn(message: str, kind: str | None = None) -> None:
    """One line on stderr, once per `kind` (default: the message) in a process."""
    if (kind or message) in _warned:
        return
    _warned.add(kind or message)
    with contextlib.suppress(OSError, ValueError):
        print(f"geomtoy: warning: {message}", file=sys.stderr, flush=True)


class Untrusted(Exception):
    """A cache directory geomtoy will not use: one line saying why."""


def check_outside(directory: Path, out: str | Path | None) -> None:
    """SweepError (exit 2) when the cache would be inside the output directory: that
    directory would no longer be fresh (nor a clean results directory)."""
    if out is None:
        return
    cache, out = Path(os.path.abspath(directory)), Path(os.path.abspath(out))
    if cache == out or out in cache.parents:
        raise SweepError(directory, None, f"inside --out {out}; give a compile cache outside it")


def enable(
    path: str | Path | None = None, enabled: bool = True, *, out: str | Path | None = None
) -> Path | None:
    """Turn the persistent cache on (or off); returns the store used (None: off).

    Call before the first compilation of a run. `out`: the run's output directory, which
    must not hold the cache (SweepError). A directory that is refused, unwritable or full
    warns once and leaves the cache off for this process; it never fails the run."""
    global _active
    directory = resolve(path, enabled)
    if directory is not None:
        check_outside(directory, out)
    if _active is not None and directory is not None and _active.base == directory:
        return _active.store
    close()
    _warned.clear()  # another directory: its own warnings, once each
    if directory is None:
        jax.config.update("jax_enable_compilation_cache", False)
        return None
    try:
        active = _open(directory)
    except (Untrusted, OSError) as e:
        reason = e.strerror if isinstance(e, OSError) and e.strerror else str(e)
        warn(f"compile cache {directory}: {reason}; compiling every program afresh", "enable")
        jax.config.update("jax_enable_compilation_cache", False)
        return None
    _point_jax_at(active.proc)
    _active = active
    return active.store


def _point_jax_at(directory: Path | None) -> None:
    jax_cache.reset_cache()  # JAX opens its cache once per process: let it open this one
    if directory is None:
        jax.config.update("jax_enable_compilation_cache", False)
        return
    jax.config.update("jax_compilation_cache_dir", str(directory))
    jax.config.update("jax_enable_compilation_cache", True)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", -1)
    jax.config.update("jax_compilation_cache_max_size", -1)  # no access-time files
    jax.config.update("jax_persistent_cache_enable_xla_caches", "none")  # no unchecked files


def _private_dir(path: Path, *, follow: bool) -> None:
    """Create `path` 0700 if absent; Untrusted unless it is a directory of this user that
    no one else can write."""
    with contextlib.suppress(FileExistsError):
        path.mkdir(mode=0o700, parents=True)
    st = path.stat() if follow else path.lstat()
    if not stat.S_ISDIR(st.st_mode):
        raise Untrusted(f"{path} is not a directory")
    if st.st_uid != os.geteuid():
        raise Untrusted(f"owned by another user (uid {st.st_uid}), not used")
    if st.st_mode & 0o022:
        mode = stat.filemode(st.st_mode)
        raise Untrusted(f"writable by other users ({mode}), not used; chmod go-w it to use it")


def _open(base: Path) -> _Active:
    """Check the directory, verify the store, and make this process's private directory
    holding links to the verified entries."""
    _private_dir(base, follow=True)  # the user's own link to elsewhere is theirs to make
    store = base / machine_tag()
    _private_dir(store, follow=False)
    if not os.access(store, os.W_OK):
        raise Untrusted("not writable (read-only?)")
    free = shutil.disk_usage(store).free
    if free < MIN_FREE_BYTES:
        raise Untrusted(f"the disk is full ({free >> 20} MiB free)")
    with _locked(store):
        manifest = _verify(store)
        proc = store / f"{PROC}{os.getpid()}-{secrets.token_hex(4)}"
        flags = os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC | os.O_NOFOLLOW
        lock_fd = os.open(f"{proc}.lock", flags, 0o600)
        try:
            with contextlib.suppress(OSError):  # held while this process lives
                fcntl.flock(lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            proc.mkdir(mode=0o700)
            for entry in manifest:
                _link(store / entry, proc / entry)
        except OSError:
            _remove(proc)
            _remove(Path(f"{proc}.lock"))
            os.close(lock_fd)
            raise
    return _Active(base, store, proc, lock_fd, set(manifest))


@contextlib.contextmanager
def _locked(store: Path):
    """The store's lock, held while the manifest and entries change (waits for it)."""
    fd = os.open(store / LOCK, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, 0o600)
    try:
        with contextlib.suppress(OSError):  # no locks here: races only cost misses
            fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _link(source: Path, target: Path) -> None:
    try:
        os.link(source, target)
    except OSError as e:  # a file system without hard links: a copy
        if e.errno not in (errno.EPERM, errno.EXDEV, errno.EMLINK, errno.ENOTSUP):
            raise
        shutil.copyfile(source, target, follow_symlinks=False)


# Verifying: the manifest, the entries ---------------------------------------------------


def _read_manifest(store: Path) -> dict[str, tuple[int, str]]:
    """{entry name: (size, sha256)}; empty when absent, not a regular file or damaged."""
    try:
        data = _read_regular(store / MANIFEST)
        doc = json.loads(data) if data is not None else None
    except (OSError, ValueError):
        doc = None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        return {}
    out = {}
    for name, record in (doc.get("entries") or {}).items():
        with contextlib.suppress(TypeError, ValueError, KeyError):
            size, digest = int(record["size"]), str(record["sha256"])
            if _NAME.fullmatch(name) and re.fullmatch(r"[0-9a-f]{64}", digest):
                out[name] = (size, digest)
    return out


def _write_manifest(store: Path, manifest: dict[str, tuple[int, str]]) -> None:
    """Written whole to a temporary file, then renamed over the old one."""
    entries = {k: {"size": s, "sha256": d} for k, (s, d) in sorted(manifest.items())}
    doc = {"format": FORMAT, "machine": store.name, "entries": entries}
    tmp = store / f"{TMP}{MANIFEST}.{os.getpid()}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(json.dumps(doc, indent=1) + "\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, store / MANIFEST)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


def _read_regular(path: Path) -> bytes | None:
    """The bytes of `path` if it is a regular file (None otherwise): never follows a link
    and never blocks on a FIFO or device."""
    if not stat.S_ISREG(os.lstat(path).st_mode):
        return None
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        with os.fdopen(os.dup(fd), "rb") as f:
            return f.read()
    finally:
        os.close(fd)


def _digest(path: Path) -> tuple[int, str] | None:
    data = _read_regular(path)
    return None if data is None else (len(data), hashlib.sha256(data).hexdigest())


def _verify(store: Path) -> dict[str, tuple[int, str]]:
    """Keep the entries that match the manifest; remove the rest (one warning line),
    stale temporaries and dead processes' directories. Returns the manifest kept."""
    manifest, kept, removed = _read_manifest(store), {}, []
    with os.scandir(store) as entries:
        names = [e.name for e in entries]
    for name in names:
        if name in (MANIFEST, LOCK):
            continue
        if name.startswith(PROC):
            _remove_if_dead(store, name)
            continue
        if not name.startswith(TMP):
            record = manifest.get(name)
            with contextlib.suppress(OSError):
                if record is not None and _digest(store / name) == record:
                    kept[name] = record
                    continue
            removed.append(name)
        _remove(store / name)
    if removed:
        shown = [n if len(n) <= 40 else n[:37] + "..." for n in removed[:2]]
        what = ", ".join(shown) + (f", +{len(removed) - 2}" if len(removed) > 2 else "")
        warn(f"compile cache {store}: {len(removed)} entries not in its manifest or damaged "
             f"({what}): removed unread, compiled again", "verify")  # fmt: skip
    if kept != manifest or not (store / MANIFEST).is_file():
        _write_manifest(store, kept)
    return kept


def _remove_if_dead(store: Path, name: str) -> None:
    """A process's directory and lock file, once no process holds the lock."""
    lock = store / (name if name.endswith(".lock") else f"{name}.lock")
    try:
        fd = os.open(lock, os.O_RDWR | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        fd = None  # no lock file: nobody can hold it
    try:
        if fd is not None:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return  # held: a live process
    finally:
        if fd is not None:
            os.close(fd)
    _remove(store / lock.name.removesuffix(".lock"))
    _remove(lock)


def _remove(path: Path) -> None:
    """A file, link or directory tree, never following links; by path (no dir_fd calls)."""
    with contextlib.suppress(OSError):
        if stat.S_ISDIR(os.lstat(path).st_mode):
            with os.scandir(path) as entries:
                names = [e.name for e in entries]
            for name in names:
                _remove(path / name)
            os.rmdir(path)
        else:
            os.unlink(path)


# Publishing what this process compiled --------------------------------------------------


def publish() -> int:
    """Hash the entries JAX wrote in this process's directory and add them to the store
    and its manifest; returns how many. A full or read-only store warns once."""
    active = _active
    if active is None:
        return 0
    try:
        with os.scandir(active.proc) as entries:
            new = [e.name for e in entries if e.name not in active.known]
    except OSError:
        return 0
    if not new:
        return 0
    try:
        with _locked(active.store):
            manifest = _read_manifest(active.store)
            added = {n: _add(active, n) for n in new if n not in manifest}
            manifest |= {n: r for n, r in added.items() if r is not None}
            _write_manifest(active.store, manifest)
    except OSError as e:
        warn(
            f"compile cache {active.store}: compiled programs not kept ({e.strerror or e})",
            "publish",
        )
        return 0
    active.known.update(new)
    return sum(r is not None for r in added.values())


def _add(active: _Active, name: str) -> tuple[int, str] | None:
    """Link one checked entry into the store (atomically, by rename)."""
    if not _NAME.fullmatch(name):
        return None
    record = _digest(active.proc / name)
    if record is None:
        return None
    tmp = active.store / f"{TMP}{os.getpid()}-{name}"
    try:
        _link(active.proc / name, tmp)
        os.replace(tmp, active.store / name)
    finally:
        _remove(tmp)
    return record


def close() -> None:
    """Publish, then remove this process's directory; JAX's cache is left off."""
    global _active
    active = _active
    if active is None:
        return
    with contextlib.suppress(OSError):
        publish()
    _active = None
    _point_jax_at(None)
    _remove(active.proc)
    _remove(active.store / f"{active.proc.name}.lock")
    with contextlib.suppress(OSError):
        os.close(active.proc_lock)


atexit.register(close)
