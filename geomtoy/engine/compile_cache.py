"""Compiled programs that persist across processes: on by default for `geomtoy run`.

A run compiles a handful of XLA programs per static shape group (init, training chunk,
evaluation, geometry analysis; about 2-4 s on a 2-core CPU). With the cache on, a second
run of the same shapes (a resume, the next sweep of `make figures`, a rerun with other
grid values of the same shapes) loads them from disk instead: it compiles nothing.

Two layers share one directory:

* `geomtoy run` stores whole executables of the engine's programs (`Program`), keyed on
  what determines their trace, so a warm run neither traces, lowers nor compiles them
  (`executables`).
* `geomtoy.run` and `train_instances` in a notebook use JAX's persistent compilation
  cache, keyed by JAX on the lowered program, the compiler options, the devices and the
  jax/jaxlib versions: code edited or patched in memory is traced again, as it must be.

Where: `$GEOMTOY_COMPILE_CACHE`, else `$XDG_CACHE_HOME/geomtoy/jax`, else
`~/.cache/geomtoy/jax`; `geomtoy run --compile-cache DIR` overrides both, and
`--no-compile-cache` (or GEOMTOY_COMPILE_CACHE=off) turns it off. A JAX_COMPILATION_CACHE_DIR
set by the user is respected as it is. An entry is 0.1-1 MB (a few per sweep shape); the
directory is safe to delete at any time. It is left unbounded on purpose: JAX's
size-bounded cache keeps access-time files that processes sharing one directory
(parallel `make -j` sweeps) race on.

JAX's defaults cache only programs that took over a second to compile; the small CPU
programs of a toy-model sweep compile in 0.01-1 s, so every program is cached here
(min compile time 0, no minimum entry size).
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import logging
import os
import pickle
import threading
from pathlib import Path

import jax
import jaxlib
import numpy as np
import optax
from jax.experimental import serialize_executable

try:  # the context jax.jit keys its own traces on; public config values otherwise
    from jax._src import config as _jax_config
except ImportError:  # pragma: no cover - a JAX without it
    _jax_config = None

log = logging.getLogger(__name__)
ENV = "GEOMTOY_COMPILE_CACHE"
OFF = ("0", "off", "false", "no", "none", "")


def default_dir() -> Path:
    """The cache directory when nothing overrides it."""
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "geomtoy" / "jax"


def resolve(path: str | Path | None = None, enabled: bool = True) -> Path | None:
    """The directory to use (None: off): `path`, else $GEOMTOY_COMPILE_CACHE, else the
    default."""
    if not enabled:
        return None
    if path is not None:
        return Path(path).expanduser()
    env = os.environ.get(ENV)
    if env is not None:
        return None if env.strip().lower() in OFF else Path(env).expanduser()
    return default_dir()


def enable(
    path: str | Path | None = None, enabled: bool = True, *, executables: bool = False
) -> Path | None:
    """Turn the persistent cache on (or leave it off); returns the directory used.

    Call before the first compilation of the process. JAX_COMPILATION_CACHE_DIR, when the
    user set it, wins (JAX reads it itself). A directory that cannot be created turns the
    cache off for this run rather than failing it. `executables`: the caller caches its
    programs itself, within `executables(directory)`, and JAX's cache stays off: an
    executable that JAX's cache loaded cannot be serialized again (on CPU it loses its
    compiled functions), so it could not be stored whole."""
    if os.environ.get("JAX_COMPILATION_CACHE_DIR"):
        directory = Path(os.environ["JAX_COMPILATION_CACHE_DIR"])
    else:
        directory = resolve(path, enabled)
        if directory is None:
            jax.config.update("jax_enable_compilation_cache", False)
            return None
        try:
            directory.mkdir(parents=True, exist_ok=True)
        except OSError:
            return None
        if executables:
            return directory
        jax.config.update("jax_compilation_cache_dir", str(directory))
    jax.config.update("jax_enable_compilation_cache", True)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", -1)
    return directory


# Whole executables: a warm start without tracing ---------------------------------------
#
# JAX's cache is keyed on the lowered program, so every process still traces and lowers
# each program before it can look it up (~1 s of a warm 10-step run on a 2-core CPU, more
# than the programs take to load). Within `executables(directory)` a `Program` is keyed
# instead on what determines its trace: this package's source, the library versions,
# JAX's configuration, the backend and devices, the static arguments, and the shapes,
# dtypes and shardings of the others. On a hit the serialized executable is loaded and
# called, with no tracing, lowering or compilation. Only the command line turns it on.
# Entries are pickles of executables, as JAX's own cache holds executables: a cache
# directory that others can write to is as trusted as code they could run.

EXECUTABLES = "geomtoy-executables"
"""Subdirectory of the compilation cache holding whole executables (one file each)."""
_FORMAT = 1
_directory: Path | None = None
_loaded: dict[str, jax.stages.Compiled] = {}


_HIT, _COMPILE = "/jax/compilation_cache/cache_hits", "/jax/core/compile/backend_compile_duration"
_counts = threading.local()
"""This thread's JAX cache loads and backend compilations (or loads) so far (JAX records
them in the compiling thread): an executable is stored only when its compile call
compiled afresh (one compilation, no load). One that JAX's cache loaded, or that JAX's
in-memory cache returned from an earlier load, cannot be serialized again (on CPU it
loses its compiled functions)."""


def _events() -> dict[str, int]:
    if not hasattr(_counts, "events"):
        _counts.events = {_HIT: 0, _COMPILE: 0}
    return _counts.events


@functools.cache
def _count_events() -> None:
    def count(event: str, *args, **kwargs) -> None:
        if event in (_HIT, _COMPILE):
            _events()[event] += 1

    jax.monitoring.register_event_listener(count)
    jax.monitoring.register_event_duration_secs_listener(count)


class _Unkeyable(Exception):
    """An argument whose trace-relevant description is unknown: plain jax.jit instead."""


@contextlib.contextmanager
def executables(directory: Path | None):
    """Within: `Program` calls load and store whole executables under `directory`
    (the compilation cache's directory; None: off, plain jax.jit). Single-process only:
    a multi-host job keeps JAX's cache, which coordinates its processes."""
    global _directory
    previous = _directory
    if directory is not None and jax.process_count() == 1:
        _count_events()
        _directory = Path(directory) / EXECUTABLES
    try:
        yield
    finally:
        _directory = previous


class Program:
    """`jax.jit(fun, ...)` whose compiled executables persist within `executables`; every
    other attribute (lower, trace, eval_shape) is the jitted function's."""

    def __init__(self, fun, *, static_argnums=(), donate_argnums=()):
        self.jitted = jax.jit(fun, static_argnums=static_argnums, donate_argnums=donate_argnums)
        self.name = f"{fun.__module__}.{fun.__qualname__}"
        self.static = frozenset(static_argnums)
        self.donate = tuple(donate_argnums)
        functools.update_wrapper(self, fun)

    def __getattr__(self, name):
        return getattr(self.jitted, name)

    def __call__(self, *args):
        if _directory is None:
            return self.jitted(*args)
        try:
            key = self._key(args)
        except _Unkeyable:
            return self.jitted(*args)
        compiled = _loaded.get(key) or _load(_directory, key)
        if compiled is None:
            before = dict(_events())
            compiled = self.jitted.lower(*args).compile()
            after = _events()
            if after[_COMPILE] > before[_COMPILE] and after[_HIT] == before[_HIT]:
                _store(_directory, key, compiled)  # compiled here, not loaded
            log.debug("%s: compiled (%s)", self.name, key[:12])
        _loaded[key] = compiled
        return compiled(*(a for i, a in enumerate(args) if i not in self.static))

    def _key(self, args) -> str:
        parts = [self.name, self.donate, _environment(), _trace_config()]
        for i, arg in enumerate(args):
            if i in self.static:
                parts.append(_static(arg))
            else:
                leaves, tree = jax.tree_util.tree_flatten(arg)
                parts.append((str(tree), tuple(_leaf(x) for x in leaves)))
        return hashlib.sha256(repr(parts).encode()).hexdigest()


def program(*, static_argnums=(), donate_argnums=()):
    """Decorator form of `Program`, as `jax.jit(static_argnums=...)` is used."""
    return functools.partial(Program, static_argnums=static_argnums, donate_argnums=donate_argnums)


def _static(arg) -> str:
    if isinstance(arg, jax.sharding.Mesh):
        return repr((arg.axis_names, arg.devices.shape, [d.id for d in arg.devices.flat]))
    return _value(arg)


def _value(x) -> str:
    """repr of a value for a key; an object shown by identity is shown by its slots, and
    one still shown by identity cannot be keyed (it would never hit again)."""
    text = repr(x)
    if " at 0x" in text and hasattr(type(x), "__slots__"):
        slots = [s for s in type(x).__slots__ if s != "__weakref__"]
        text = repr((type(x).__qualname__, [getattr(x, s, None) for s in slots]))
    if " at 0x" in text:
        raise _Unkeyable(text)
    return text


def _leaf(x):
    if isinstance(x, jax.core.Tracer):
        raise _Unkeyable("called under a transformation")
    if isinstance(x, jax.Array):
        sharding = x.sharding
        devices = [d.id for d in sharding._device_assignment]
        return ("a", x.shape, str(x.dtype), x.weak_type, repr(sharding), devices)
    if isinstance(x, np.ndarray | np.generic):
        return ("n", x.shape, str(x.dtype))
    if type(x) in (bool, int, float, complex):
        return ("p", type(x).__name__)
    raise _Unkeyable(type(x).__name__)


_NOT_IN_KEY = (
    "jax_log_",
    "jax_logging_",
    "jax_explain_",
    "jax_compilation_cache_",
    "jax_enable_compilation_cache",
    "jax_persistent_cache_",
    "jax_raise_persistent_cache_errors",
    "jax_debug_log_modules",
    "jax_dump_",
    "jax_include_debug_info_in_dumps",
    "jax_compiler_detailed_logging",
)
"""JAX options that only log, dump or cache: they change no program, so a run with
JAX_LOG_COMPILES=1 finds the same executables."""


def _trace_config() -> str:
    """JAX's configuration (logging and caching aside) and the thread-local context
    jax.jit keys its own traces on, where JAX exposes it."""
    values = sorted((k, v) for k, v in jax.config.values.items() if not k.startswith(_NOT_IN_KEY))
    trace_context = getattr(_jax_config, "trace_context", None)
    context = trace_context() if trace_context else ()
    return repr([_value(x) for x in (*values, *context)])


@functools.cache
def _environment() -> str:
    """Everything of the process a trace depends on beyond its arguments and JAX's
    configuration: this package's source, library versions, backend and devices, and
    the XLA flags of the environment."""
    devices = jax.devices()
    return repr(
        (
            _FORMAT,
            source_digest(Path(__file__).resolve().parents[1]),  # the whole package
            jax.__version__,
            jaxlib.__version__,
            np.__version__,
            optax.__version__,
            devices[0].client.platform_version,
            [(d.id, d.platform, d.device_kind) for d in devices],
            sorted((k, v) for k, v in os.environ.items() if k.startswith("XLA_")),
        )
    )


def source_digest(root: Path) -> str:
    """SHA-256 over the names and contents of every .py file under `root`."""
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*.py")):
        digest.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def _load(directory: Path, key: str) -> jax.stages.Compiled | None:
    """The stored executable of `key`, or None (absent, unreadable or not loadable)."""
    path = directory / key
    try:
        fmt, serialized, in_tree, out_tree, ids = pickle.loads(path.read_bytes())
        if fmt != _FORMAT:
            return None
        by_id = {d.id: d for d in jax.devices()}
        compiled = serialize_executable.deserialize_and_load(
            serialized, in_tree, out_tree, execution_devices=[by_id[i] for i in ids]
        )
    except FileNotFoundError:
        return None
    except Exception as e:  # a damaged or foreign entry is a miss; the store replaces it
        log.debug("%s: not loaded: %r", path, e)
        return None
    log.debug("%s: loaded", path)
    return compiled


def _store(directory: Path, key: str, compiled: jax.stages.Compiled) -> None:
    """Write the executable of `key` atomically; one that cannot be serialized or
    written is simply not stored."""
    try:
        serialized, in_tree, out_tree = serialize_executable.serialize(compiled)
        ids = [d.id for d in compiled.runtime_executable().local_devices()]
        blob = pickle.dumps((_FORMAT, serialized, in_tree, out_tree, ids))
        directory.mkdir(parents=True, exist_ok=True)
        tmp = directory / f".{key}.{os.getpid()}.{threading.get_ident()}.tmp"
        try:
            tmp.write_bytes(blob)
            os.replace(tmp, directory / key)
        finally:
            tmp.unlink(missing_ok=True)
    except Exception as e:
        log.debug("%s: not stored: %r", directory / key, e)
