"""Files of a results directory written safely: atomically (a temporary file in the same
directory, then `os.replace`), never through a link, only as regular files. NumPy only.
"""

from __future__ import annotations

import contextlib
import errno
import io
import json
import os
import re
import stat
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from geomtoy.errors import SweepError

_WRITE = os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK
TEMPORARY = re.compile(r"\.(.+)\.tmp-\d+")
"""The name of a temporary file `atomic_write_bytes` writes (`.NAME.tmp-PID`)."""


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write `data` to `path` so a reader sees the old file or the new one, never half.
    The temporary file is created new (O_EXCL, O_NOFOLLOW): a link planted at its name
    is removed, never written through; the rename replaces a link at `path` itself."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    if os.path.lexists(tmp):  # left by a kill of a process of the same PID, or planted
        os.unlink(tmp)
    try:
        with os.fdopen(os.open(tmp, _WRITE | os.O_EXCL, 0o644), "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:  # disk full, read-only, a signal: no half-written temporary
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


def open_log(path: Path, fresh: bool):
    """A text file to append lines to (truncated first when `fresh`), opened without
    following a link: SweepError if `path` is a link or not a regular file."""
    path = Path(path)
    try:
        fd = os.open(path, _WRITE | (os.O_TRUNC if fresh else os.O_APPEND), 0o644)
    except OSError as e:
        if e.errno != errno.ELOOP:
            raise
        raise SweepError(
            path, None, "is a symbolic link; geomtoy never writes through one"
        ) from None
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise SweepError(path, None, "is not a regular file; geomtoy writes only regular files")
    os.set_blocking(fd, True)
    return os.fdopen(fd, "w")


def own_directory(path: Path) -> Path:
    """`path` as a directory of this results directory, made if absent: SweepError if it
    is a link (files written there would land elsewhere) or not a directory."""
    path = Path(path)
    with contextlib.suppress(FileExistsError):
        path.mkdir()
    if path.is_symlink() or not stat.S_ISDIR(os.lstat(path).st_mode):
        reason = "is a symbolic link or not a directory; geomtoy writes only its own directories"
        raise SweepError(path, None, reason + " (remove it)")
    return path


def atomic_write_json(path: Path, obj: Any) -> None:
    atomic_write_bytes(path, (json.dumps(obj, indent=1, sort_keys=False) + "\n").encode())


def atomic_save_npz(path: Path, arrays: Mapping[str, np.ndarray]) -> None:
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    atomic_write_bytes(path, buf.getvalue())


def load_npz(path: Path) -> dict[str, np.ndarray]:
    with np.load(path, allow_pickle=False) as z:
        return {k: z[k] for k in z.files}
