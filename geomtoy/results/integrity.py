"""Checked reads: every file of a results directory is verified before it is trusted.

Block files and checkpoints carry a content checksum (`CHECKSUM`: SHA-256 of every
array's name, dtype, shape and bytes), written with them and checked when they are read,
so a flipped bit is found before the block is joined into the tables (zip's own CRC-32
is only checked when a member is read to its end, and not at all for the headers). A
damaged block is retrained, never a crash loop.

Tables are checked when they are opened (`read_parquet`, `read_npz`): readable, the
expected columns or arrays, the expected number of rows. Any problem is a `Damaged`
error, a SweepError naming the file and what is wrong (the CLI prints it as one line,
exit 2).
"""

from __future__ import annotations

import hashlib
import io
import zipfile
from collections.abc import Iterable, Mapping
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


def read_npz(path: Path, keys: Iterable[str] = (), *, checksum: bool = False) -> dict:
    """All arrays of an .npz file; Damaged if it cannot be read, lacks one of `keys`,
    or (with `checksum`) fails its content checksum."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise Damaged(path, "missing") from None
    except OSError as e:
        raise Damaged(path, f"cannot read: {e.strerror or e}") from None
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except (zipfile.BadZipFile, ValueError, OSError, EOFError, KeyError) as e:
        raise Damaged(path, f"damaged, not a readable .npz ({_short(e)})") from None
    missing = [k for k in keys if k not in arrays]
    if missing:
        raise Damaged(path, f"damaged: no {missing[0]!r} array")
    if checksum:
        if CHECKSUM not in arrays:
            raise Damaged(path, "has no content checksum (written by another geomtoy version?)")
        if str(arrays[CHECKSUM]) != content_hash(arrays):
            raise Damaged(path, "damaged: content checksum mismatch")
    return arrays


def read_parquet(path: Path, columns: Iterable[str] = (), rows: int | None = None):
    """A parquet table; Damaged if unreadable, without one of `columns`, or of another
    length than `rows`."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = Path(path)
    try:
        table = pq.read_table(path)
    except FileNotFoundError:
        raise Damaged(path, "missing") from None
    except (pa.ArrowException, OSError, ValueError) as e:
        raise Damaged(path, f"damaged, not a readable parquet table ({_short(e)})") from None
    missing = [c for c in columns if c not in table.column_names]
    if missing:
        raise Damaged(path, f"damaged: no column {missing[0]!r}")
    if rows is not None and table.num_rows != rows:
        raise Damaged(path, f"damaged: {table.num_rows} rows, expected {rows}")
    return table


def check_rows(path: Path, arrays: Mapping[str, np.ndarray], keys: Iterable[str], rows: int):
    """Damaged unless each of `keys` has `rows` entries on its first axis."""
    for k in keys:
        a = arrays.get(k)
        if a is not None and (a.ndim == 0 or a.shape[0] != rows):
            raise Damaged(path, f"damaged: {k!r} has shape {a.shape}, expected {rows} rows")


def _short(e: BaseException) -> str:
    text = " ".join(str(e).split()) or type(e).__name__
    return text if len(text) <= 80 else text[:77] + "..."
