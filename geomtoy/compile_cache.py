"""JAX's persistent compilation cache, on by default for `geomtoy run`.

A run compiles a handful of XLA programs per static shape group (init, training chunk,
evaluation, geometry analysis; about 2-4 s on a 2-core CPU). With the cache on, a second
run of the same shapes (a resume, the next sweep of `make figures`, a rerun with other
grid values of the same shapes) loads them from disk instead: it compiles nothing.

Where: `$GEOMTOY_COMPILE_CACHE`, else `$XDG_CACHE_HOME/geomtoy/jax`, else
`~/.cache/geomtoy/jax`; `geomtoy run --compile-cache DIR` overrides both, and
`--no-compile-cache` (or GEOMTOY_COMPILE_CACHE=off) turns it off. A JAX_COMPILATION_CACHE_DIR
set by the user is respected as it is. Entries are keyed by JAX on the program, the
compiler options, the devices and the jax/jaxlib versions, so a stale entry is never used.
An entry is 0.1-1 MB (a few per sweep shape); the directory is safe to delete at any time.
It is left unbounded on purpose: JAX's size-bounded cache keeps access-time files that
processes sharing one directory (parallel `make -j` sweeps) race on.

JAX's defaults cache only programs that took over a second to compile; the small CPU
programs of a toy-model sweep compile in 0.01-1 s, so every program is cached here
(min compile time 0, no minimum entry size).
"""

from __future__ import annotations

import os
from pathlib import Path

import jax

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


def enable(path: str | Path | None = None, enabled: bool = True) -> Path | None:
    """Turn the persistent cache on (or leave it off); returns the directory used.

    Call before the first compilation of the process. JAX_COMPILATION_CACHE_DIR, when the
    user set it, wins (JAX reads it itself). A directory that cannot be created turns the
    cache off for this run rather than failing it."""
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
        jax.config.update("jax_compilation_cache_dir", str(directory))
    jax.config.update("jax_enable_compilation_cache", True)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", -1)
    return directory
