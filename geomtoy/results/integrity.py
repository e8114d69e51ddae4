"""Checked reads: every file of a results directory is verified before it is trusted.

Block files and checkpoints carry a content checksum (`CHECKSUM`: SHA-256 of every
array's name, dtype, shape and bytes), written with them and checked when they are read,
so a flipped bit is found before the block is joined into the tables (zip's own CRC-32
is only checked when a member is read to its end, and not at all for the headers). A
damaged block is retrained, never a crash loop.

Tables are checked when they are opened (`read_parquet`, `read_npz`): regular files,
readable, the expected columns or arrays, of the expected types and number of rows,
checked from headers and footers before any data are read, within `read_budget()`
bytes unpacked (a crafted header or an inflating archive is refused, never allocated). Any problem is a `Damaged`
error, a SweepError naming the file and what is wrong (the CLI prints it as one line,
exit 2).
"""

from __future__ import annotations

import contextlib
import hashlib
import math
import os
import resource
import stat
import zipfile
import zlib
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

import numpy as np

from geomtoy.errors import SweepError

CHECKSUM = "checksum"
"""The array of a block or checkpoint file holding the hash of all the others."""


class Damaged(SweepError):
    """A file of a results directory is unreadable or not what it should be."""

    def __init__(self, path: Path, reason: str):
        self.path = Path(path)
        super().__init__(path, None, reason)


def content_hash(arrays: Mapping[str, np.ndarray]) -> str:
    h = hashlib.sha256()
    for name in sorted(k for k in arrays if k != CHECKSUM):
        a = np.ascontiguousarray(arrays[name])
        h.update(f"{name}|{a.dtype.str}|{a.shape}|".encode())
        h.update(a.tobytes())
    return h.hexdigest()


def with_checksum(arrays: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The arrays and their content checksum, to be saved together."""
    arrays = dict(arrays)
    return arrays | {CHECKSUM: np.asarray(content_hash(arrays))}


def read_budget() -> int:
    """Bytes one read of a results file may decompress into memory: GEOMTOY_READ_LIMIT
    if set, else 4 GiB, never more than a quarter of the physical memory nor half of the
    address-space limit a batch scheduler set (RLIMIT_AS)."""
    limit = 4 << 30
    with contextlib.suppress(ValueError, OSError, AttributeError):
        limit = min(limit, os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 4)
    with contextlib.suppress(ValueError, OSError):
        soft = resource.getrlimit(resource.RLIMIT_AS)[0]
        if soft != resource.RLIM_INFINITY:
            limit = min(limit, soft // 2)
    with contextlib.suppress(ValueError):
        limit = int(os.environ.get("GEOMTOY_READ_LIMIT") or limit)
    return limit


def regular_file(path: Path, max_bytes: int | None = None) -> int:
    """The size of `path`; Damaged if it is missing, not a regular file (a FIFO or
    device would block or never end) or larger than `max_bytes`."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise Damaged(path, "missing") from None
    except OSError as e:
        raise Damaged(path, f"cannot read: {e.strerror or e}") from None
    if not stat.S_ISREG(st.st_mode):
        raise Damaged(path, "not a regular file")
    if max_bytes is not None and st.st_size > max_bytes:
        raise Damaged(path, f"too large to read ({st.st_size} bytes, limit {max_bytes})")
    return st.st_size


def _header(path: Path, z: zipfile.ZipFile, info: zipfile.ZipInfo):
    """(shape, fortran order, dtype, header bytes) of one .npy member, from its header
    alone; Damaged unless its data fill the member exactly."""
    with z.open(info) as f:
        version = np.lib.format.read_magic(f)
        if version == (1, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_1_0(f)
        elif version in ((2, 0), (3, 0)):
            shape, fortran, dtype = np.lib.format.read_array_header_2_0(f)
        else:
            raise ValueError(f"unknown .npy version {version}")
        start = f.tell()
    if dtype.hasobject:
        raise Damaged(path, f"damaged: {info.filename!r} holds Python objects")
    count = math.prod(shape)
    if start + count * dtype.itemsize != info.file_size:
        raise Damaged(path, f"damaged: {info.filename!r} is not the size its header says")
    return shape, fortran, dtype, start


def _read_member(z: zipfile.ZipFile, info: zipfile.ZipInfo, shape, fortran, dtype, start):
    buf = bytearray(math.prod(shape) * dtype.itemsize)
    with z.open(info) as f:
        f.read(start)
        got = f.readinto(buf) if buf else 0
    if got != len(buf):
        raise ValueError(f"{info.filename}: truncated")
    return np.frombuffer(buf, dtype).reshape(shape, order="F" if fortran else "C")


_UNREADABLE = (
    zipfile.BadZipFile,
    ValueError,
    OSError,
    EOFError,
    KeyError,
    RecursionError,
    SyntaxError,
    TypeError,
    NotImplementedError,
    zlib.error,
)
"""What NumPy's .npy header parser and zipfile raise for a damaged archive."""


def read_npz(
    path: Path,
    keys: Iterable[str] = (),
    *,
    checksum: bool = False,
    members: Iterable[str] | None = None,
    check: Callable[[str, tuple, np.dtype], str | None] | None = None,
) -> dict:
    """The arrays of an .npz file (only `members` if given); Damaged if it cannot be
    read, lacks one of `keys`, (with `checksum`) fails its content checksum, or an
    array's header fails `check(name, shape, dtype)` (a reason, or None if sound).

    Every header is read and checked before any array's bytes, and the arrays together
    may not decompress to more than `read_budget()`: a crafted header or an archive
    that inflates is refused, never read into memory."""
    path = Path(path)
    budget = read_budget()
    regular_file(path, budget)
    wanted = None if members is None else set(members)
    try:
        with zipfile.ZipFile(path) as z:
            infos = [
                i
                for i in z.infolist()
                if i.filename.endswith(".npy") and (wanted is None or i.filename[:-4] in wanted)
            ]
            headers = {i.filename[:-4]: (i, _header(path, z, i)) for i in infos}
            total = sum(math.prod(h[0]) * h[2].itemsize for _, h in headers.values())
            if total > budget:
                raise Damaged(path, f"too large to read ({total} bytes unpacked, limit {budget})")
            missing = [k for k in keys if k not in headers]
            if missing:
                raise Damaged(path, f"damaged: no {missing[0]!r} array")
            for name, (_, (shape, _, dtype, _)) in headers.items():
                why = check(name, shape, dtype) if check is not None else None
                if why:
                    raise Damaged(path, f"damaged: {name!r} {why}")
            arrays = {k: _read_member(z, i, *h) for k, (i, h) in headers.items()}
    except Damaged:
        raise
    except MemoryError:
        raise Damaged(path, "too large to read into this process's memory") from None
    except _UNREADABLE as e:
        raise Damaged(path, f"damaged, not a readable .npz ({_short(e)})") from None
    if checksum:
        if CHECKSUM not in arrays:
            raise Damaged(path, "has no content checksum (written by another geomtoy version?)")
        if arrays[CHECKSUM].dtype.kind != "U" or str(arrays[CHECKSUM]) != content_hash(arrays):
            raise Damaged(path, "damaged: content checksum mismatch")
    return arrays


def read_parquet(
    path: Path,
    columns: Iterable[str] = (),
    rows: int | None = None,
    kinds: Mapping[str, str] | None = None,
):
    """A parquet table; Damaged if unreadable, without one of `columns`, of another
    length than `rows`, with a column of `kinds` ({name: NumPy kinds, e.g. "iu"}) of
    another type, or larger than `read_budget()` unpacked: all checked from the file's
    footer before any column is read."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = Path(path)
    budget = read_budget()
    regular_file(path, budget)
    try:
        meta = pq.ParquetFile(path).metadata
        size = sum(meta.row_group(i).total_byte_size for i in range(meta.num_row_groups))
        if size > budget:
            raise Damaged(path, f"too large to read ({size} bytes unpacked, limit {budget})")
        if rows is not None and meta.num_rows != rows:
            raise Damaged(path, f"damaged: {meta.num_rows} rows, expected {rows}")
        schema = meta.schema.to_arrow_schema()
        missing = [c for c in columns if c not in schema.names]
        if missing:
            raise Damaged(path, f"damaged: no column {missing[0]!r}")
        for name, kind in (kinds or {}).items():
            if name in schema.names and not _of_kind(schema.field(name).type, kind):
                raise Damaged(path, f"damaged: column {name!r} is {schema.field(name).type}")
        table = pq.read_table(path)
    except Damaged:
        raise
    except MemoryError:
        raise Damaged(path, "too large to read into this process's memory") from None
    except (pa.ArrowException, OSError, ValueError, RecursionError, KeyError, TypeError) as e:
        raise Damaged(path, f"damaged, not a readable parquet table ({_short(e)})") from None
    if rows is not None and table.num_rows != rows:
        raise Damaged(path, f"damaged: {table.num_rows} rows, expected {rows}")
    return table


def _of_kind(arrow_type, kinds: str) -> bool:
    try:
        return np.dtype(arrow_type.to_pandas_dtype()).kind in kinds
    except (NotImplementedError, TypeError, AttributeError):
        return False


COLUMN_KINDS = {
    **dict.fromkeys(("instance", "seed", "point", "feature", "group"), "iu"),
    **dict.fromkeys(("loss", "train_loss", "dims_per_feature", "norm", "dimensionality"), "f"),
    **dict.fromkeys(("best", "diverged"), "b"),
}
"""The NumPy kinds of the table columns the readers use."""
ARRAY_SPEC = {
    "W": ("f", ("I", "m", "n")),
    "W2": ("f", ("I", "n", "m")),
    "b": ("f", ("I", "n")),
    "feature_probability": ("f", ("I", "n")),
    "importance": ("f", ("I", "n")),
    "lr": ("f", ("I",)),
    "weight_decay": ("f", ("I",)),
    "lr_b": ("f", ("I",)),
    "weight_decay_b": ("f", ("I",)),
    "min_lr_ratio": ("f", ("I",)),
    "decay_rule": ("iu", ("I",)),
    "init_W": ("iu", ("I",)),
    "init_b": ("iu", ("I",)),
    "n_features": ("iu", ("I",)),
    "n_hidden": ("iu", ("I",)),
    "instance": ("iu", ("I",)),
    "loss": ("f", ("I", None)),
    "step": ("iuf", ("I", None)),  # written as floats by some writers
}
"""dtype kinds and shapes of the arrays of params.npz and curves.npz: I instances, n and
m the largest of the groups in meta.json (when it lists them), None any length."""


def array_check(meta: dict):
    """The header check of `read_npz` for a directory's arrays: each known array's dtype
    and shape as meta.json declares them (before any byte of it is read)."""
    dims: dict[str, int | None] = {"I": meta["n_instances"], "n": None, "m": None}
    try:
        shapes = [g["shape"] for g in meta.get("groups") or ()]
        dims["n"] = max(int(s["n_features"]) for s in shapes) if shapes else None
        dims["m"] = max(int(s["n_hidden"]) for s in shapes) if shapes else None
    except (KeyError, TypeError, ValueError):
        pass

    def check(name: str, shape: tuple, dtype: np.dtype) -> str | None:
        kind, axes = ARRAY_SPEC.get(name, (None, None))
        if kind is not None and dtype.kind not in kind:
            wanted = "floats" if kind == "f" else "numbers" if "f" in kind else "integers"
            return f"has dtype {dtype}, expected {wanted}"
        if axes is None:  # another array (snapshots, an SAE's): the budget bounds it
            return None
        want = tuple(dims.get(a) if a else None for a in axes)
        if len(shape) != len(want) or any(w is not None and s != w for s, w in zip(shape, want)):
            shown = "(" + ", ".join("?" if w is None else str(w) for w in want) + ")"
            return f"has shape {shape}, expected {shown}"
        return None

    return check


def _short(e: BaseException) -> str:
    text = " ".join(str(e).split()) or type(e).__name__
    return text if len(text) <= 80 else text[:77] + "..."
