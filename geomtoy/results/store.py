"""The results directory: its layout, table assembly and reading back (writers: files.py).

A results directory holds meta.json, instances.parquet, features.parquet, params.npz and
curves.npz (columns and arrays: docs/results.md), and blocks/ while a run is in progress.
Every file is written atomically (a temporary file in the same directory, then
`os.replace`), so a killed run never leaves a table that looks complete but is not.
NumPy and pyarrow only: plotting and the explorer read results without JAX.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import io
import json
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from geomtoy import __version__
from geomtoy.errors import SweepError
from geomtoy.results.files import (  # the writers, re-exported (`x as x`) for the runs
    TEMPORARY as TEMPORARY,
    atomic_save_npz as atomic_save_npz,
    atomic_write_bytes as atomic_write_bytes,
    atomic_write_json as atomic_write_json,
    load_npz as load_npz,
    open_log as open_log,
    own_directory as own_directory,
)
from geomtoy.results.integrity import (
    COLUMN_KINDS,
    Damaged,
    array_check,
    read_npz,
    read_parquet,
    regular_file,
)

if TYPE_CHECKING:
    from geomtoy.sweep.plan import Sweep

FORMAT = 1
TABLES = ("instances.parquet", "features.parquet", "params.npz", "curves.npz")
WRITTEN = (*TABLES, "samples.parquet", "progress.jsonl")
"""Every file a run writes at the top of its directory besides meta.json (--overwrite
moves them all aside)."""
GEOMETRY_COLUMNS = ("dims_per_feature", "n_represented", "geometry")
META_KEYS = ("name", "status", "fingerprint", "n_instances")
"""Keys a meta.json needs to be read; one without them is reported as damaged."""
RUN_META_KEYS = (*META_KEYS, "file", "scale", "sets", "spec", "source", "runs", "wall_time_s")
"""Keys a meta.json needs for a run to resume it or `geomtoy merge` to finish it."""
META_BYTES = 64 << 20
"""The largest meta.json read (a sweep of millions of instances writes a few MB)."""
META_TYPES = {
    "name": str,
    "status": str,
    "fingerprint": str,
    "n_instances": int,
    "wall_time_s": int | float,
    "spec": dict,
    "axes": dict,
    "groups": list,
    "sets": list,
    "source": str,
    "file": str,
    "scale": str,
}
"""The type each meta.json key must have where present."""
INSTANCE_COLUMNS = ("instance", "seed", "point", "loss", "best", "diverged")
FEATURE_COLUMNS = ("instance", "feature")
"""Columns a table must have to be read (the geometry ones `geomtoy analyze` recomputes)."""
PARAMS_KEYS = ("W", "b", "n_features", "n_hidden", "feature_probability", "importance")
"""Columns of instances.parquet that `geomtoy analyze` recomputes from params.npz."""


# ---------------------------------------------------------------- atomic writes


def atomic_write_parquet(path: Path, columns: Mapping[str, Any]) -> None:
    """A parquet table carrying `table_metadata` of its directory as key/value metadata."""
    table = pa.table(dict(columns))
    table = table.replace_schema_metadata(table_metadata(Path(path).parent))
    buf = io.BytesIO()
    pq.write_table(table, buf)
    atomic_write_bytes(path, buf.getvalue())


def table_metadata(directory: Path) -> dict[str, str]:
    """What every parquet table says of itself (read with pyarrow's
    ``pq.read_schema(path).metadata``): geomtoy's version, the results format and the
    sweep's name (from the directory's meta.json, written before any table)."""
    out = {"geomtoy_version": __version__, "geomtoy_format": str(FORMAT)}
    with contextlib.suppress(OSError, ValueError, AttributeError):
        out["sweep"] = str(json.loads((Path(directory) / "meta.json").read_text())["name"])
    return out


# ---------------------------------------------------------------- the directory


@dataclasses.dataclass(frozen=True)
class ResultsDir:
    """Paths inside one results directory."""

    path: Path

    @property
    def meta(self) -> Path:
        return self.path / "meta.json"

    @property
    def blocks(self) -> Path:
        return self.path / "blocks"

    def block(self, index: int) -> Path:
        return self.blocks / f"block-{index:05d}.npz"

    def checkpoint(self, index: int) -> Path:
        return self.blocks / f"block-{index:05d}.ckpt.npz"

    def table(self, name: str) -> Path:
        return self.path / name

    def read_meta(self, keys: tuple[str, ...] = META_KEYS) -> dict | None:
        """meta.json, or None if there is none; SweepError if it is unreadable or lacks
        one of `keys`."""
        try:
            regular_file(self.meta, META_BYTES)
            text = self.meta.read_bytes()
        except Damaged as e:
            if e.reason == "missing":
                return None
            raise
        except FileNotFoundError:
            return None
        except OSError as e:
            raise SweepError(self.meta, None, f"cannot read: {e.strerror or e}") from None
        try:
            meta = json.loads(text)
        except json.JSONDecodeError as e:
            reason = f"not valid JSON ({e.msg}, line {e.lineno})"
            raise SweepError(self.meta, None, reason) from None
        except (RecursionError, UnicodeDecodeError, ValueError):
            raise SweepError(self.meta, None, "not valid JSON (nested too deeply?)") from None
        if not isinstance(meta, dict) or "fingerprint" not in meta or "status" not in meta:
            raise SweepError(self.meta, None, "not a geomtoy meta.json (no fingerprint/status)")
        fmt = meta.get("format", FORMAT)
        if not isinstance(fmt, int) or isinstance(fmt, bool) or fmt > FORMAT:
            reason = (
                f"results format {fmt!r} is newer than this geomtoy {__version__} reads "
                f"(up to {FORMAT}); upgrade geomtoy, or give another --out"
            )
            raise SweepError(self.meta, "format", reason)
        missing = [k for k in keys if k not in meta]
        if missing or not isinstance(meta.get("runs", []), list):
            what = f"no {missing[0]!r}" if missing else "'runs' is not a list"
            raise SweepError(self.meta, None, f"damaged: {what}")
        for key, types in META_TYPES.items():
            value = meta.get(key)
            if key in meta and (not isinstance(value, types) or isinstance(value, bool)):
                raise SweepError(self.meta, None, f"damaged: {key!r} is {json.dumps(value)[:40]}")
        if meta.get("n_instances", 0) < 0:
            raise SweepError(self.meta, None, "damaged: 'n_instances' is negative")
        if not all(_sound_group(g) for g in meta.get("groups", ())):
            raise SweepError(self.meta, None, "damaged: 'groups' are not shape groups")
        if not all(isinstance(v, list) for v in meta.get("axes", {}).values()):
            raise SweepError(self.meta, None, "damaged: 'axes' are not lists of values")
        return meta

    def remove_stale_temporaries(self) -> None:
        """Temporary files a killed writer left (`.NAME.tmp-PID`), nothing else."""
        for d in (self.path, self.blocks):
            if d.is_dir() and not d.is_symlink():
                for p in d.iterdir():
                    if TEMPORARY.fullmatch(p.name):
                        with contextlib.suppress(FileNotFoundError, IsADirectoryError):
                            p.unlink()


def _sound_group(group) -> bool:
    """A meta.json shape group: {"shape": {"n_features": int, "n_hidden": int, ...}, ...}."""
    shape = group.get("shape") if isinstance(group, dict) else None
    return isinstance(shape, dict) and all(
        isinstance(shape.get(k, 0), int) and shape.get(k, 0) >= 0
        for k in ("n_features", "n_hidden")
    )


# ---------------------------------------------------------------- assembling tables


def now() -> str:
    """The current UTC time, as meta.json records it."""
    return datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")


# ---------------------------------------------------------------- assembling tables


def _padded(sweep: Sweep) -> dict[str, np.ndarray]:
    """The sweep's arrays before any block is read: NaN (or -1, False) padded to the
    largest n, m and chunk count of its groups."""
    I = sweep.n_instances
    n = max(g.shape.n_features for g in sweep.groups)
    m = max(g.shape.n_hidden for g in sweep.groups)
    c = max(len(sweep.chunks(g)) for g in sweep.groups)
    has_w2 = any(g.shape.model.untied for g in sweep.groups)
    nan = np.nan
    a = {
        "W": np.full((I, m, n), nan, np.float32),
        "b": np.full((I, n), nan, np.float32),
        "feature_probability": np.full((I, n), nan),
        "importance": np.full((I, n), nan),
        "loss": np.full(I, nan),
        "train_loss": np.full(I, nan),
        "diverged": np.zeros(I, bool),
        "curve_loss": np.full((I, c), nan, np.float32),
        "curve_step": np.full((I, c), -1, np.int64),
    }
    if has_w2:
        a["W2"] = np.full((I, n, m), nan, np.float32)
    if sweep.snapshots:
        S = len(sweep.snapshot_steps())
        a["snapshot_W"] = np.full((I, S, m, n), nan, np.float32)
        a["snapshot_b"] = np.full((I, S, n), nan, np.float32)
        if has_w2:
            a["snapshot_W2"] = np.full((I, S, n, m), nan, np.float32)
    return a


def _fill(a: dict[str, np.ndarray], z: Mapping[str, np.ndarray], ids, n: int, m: int) -> None:
    """Copy one block file's arrays into the padded sweep arrays at rows `ids`."""
    for name, index in (
        ("W", (ids, slice(m), slice(n))),
        ("b", (ids, slice(n))),
        ("W2", (ids, slice(n), slice(m))),
        ("snapshot_W", (ids, slice(None), slice(m), slice(n))),
        ("snapshot_b", (ids, slice(None), slice(n))),
        ("snapshot_W2", (ids, slice(None), slice(n), slice(m))),
        ("loss", ids),
        ("train_loss", ids),
        ("diverged", ids),
    ):
        if name in z and name in a:
            a[name][index] = z[name]
    c = z["curve_loss"].shape[1]
    a["curve_loss"][ids, :c] = z["curve_loss"]
    a["curve_step"][ids, :c] = z["curve_step"]


def gather(sweep: Sweep, rd: ResultsDir) -> tuple[dict, dict, dict]:
    """Join all block files: (params.npz arrays, instances columns without geometry,
    curves.npz arrays)."""
    a = _padded(sweep)
    for block in sweep.blocks():
        g = sweep.groups[block.group]
        z = read_npz(rd.block(block.index), checksum=True)
        ids = z["instance"]
        if not np.array_equal(ids, g.instance[block.rows]):
            raise RuntimeError(f"{rd.block(block.index)} holds other instances than its block")
        _fill(a, z, ids, g.shape.n_features, g.shape.n_hidden)
        n = g.shape.n_features
        a["feature_probability"][ids, :n] = g.feature_probability[block.rows]
        a["importance"][ids, :n] = g.importance[block.rows]

    def per_instance(get) -> np.ndarray:
        return np.asarray([get(sweep.groups[g], r) for g, r in zip(sweep.group_of, sweep.row_of)])

    params = {k: a[k] for k in ("W", "b", "feature_probability", "importance")}
    params |= {
        "lr": per_instance(lambda g, r: g.lr[r]),
        "weight_decay": per_instance(lambda g, r: g.weight_decay[r]),
        "n_features": np.asarray(per_instance(lambda g, r: g.shape.n_features), np.int64),
        "n_hidden": np.asarray(per_instance(lambda g, r: g.shape.n_hidden), np.int64),
        "instance": np.arange(sweep.n_instances, dtype=np.int64),
    }
    # The recipe leaves of Liu et al. (geomtoy.sweep.grid.EXTRA_LEAVES: lr_b, weight_decay_b,
    # decay_rule, min_lr_ratio, init_W, init_b; choices as their index in the registry tuple)
    for leaf in dict.fromkeys(k for g in sweep.groups for k in g.extra):
        params[leaf] = per_instance(lambda g, r, leaf=leaf: g.extra[leaf][r])
    if "W2" in a:
        params["W2"] = a["W2"]
    columns = sweep.instance_columns()
    columns |= {
        "loss": a["loss"],
        "train_loss": a["train_loss"],
        "best": best_of_point(a["loss"], sweep.point),
        "diverged": a["diverged"],
    }
    curves = {"step": a["curve_step"], "loss": a["curve_loss"]}
    if sweep.snapshots:
        curves["snapshot_step"] = sweep.snapshot_steps()
        curves |= {k: v for k, v in a.items() if k.startswith("snapshot_")}
    return params, columns, curves


def write_tables(rd: ResultsDir, params: dict, curves: dict, instances: dict, features: dict):
    """The four tables, each written atomically, instances.parquet last."""
    write_arrays(rd, params, curves)
    write_parquet_tables(rd, instances, features)


def write_arrays(rd: ResultsDir, params: dict, curves: dict) -> None:
    """params.npz and curves.npz (before the parquet tables: instances.parquet is last)."""
    atomic_save_npz(rd.table("params.npz"), params)
    atomic_save_npz(rd.table("curves.npz"), curves)


def write_parquet_tables(rd: ResultsDir, instances: dict, features: dict) -> None:
    atomic_write_parquet(rd.table("features.parquet"), features)
    atomic_write_parquet(rd.table("instances.parquet"), instances)


def best_of_point(loss: np.ndarray, point: np.ndarray) -> np.ndarray:
    """True for the lowest finite loss among the instances of each grid point."""
    best = np.zeros(len(loss), bool)
    key = np.where(np.isfinite(loss), loss, np.inf)
    order = np.lexsort((np.arange(len(loss)), key, point))
    first = np.ones(len(order), bool)
    first[1:] = point[order][1:] != point[order][:-1]
    winners = order[first]
    best[winners[np.isfinite(key[winners])]] = True
    return best


# ---------------------------------------------------------------- reading back


@dataclasses.dataclass(frozen=True)
class Results:
    """A complete results directory, loaded: tables as pyarrow Tables, arrays as NumPy."""

    path: Path
    meta: dict
    instances: pa.Table
    features: pa.Table
    params: dict[str, np.ndarray]
    curves: dict[str, np.ndarray]
    samples: pa.Table | None = None  # samples.parquet: finite training sets only

    def column(self, name: str, table: str = "instances") -> np.ndarray:
        """One column as a NumPy array (strings as an object array)."""
        return getattr(self, table).column(name).to_numpy(zero_copy_only=False)


def existing_directory(path: str | Path) -> Path:
    """path, if it is a directory (else SweepError: missing, or not a directory)."""
    path = Path(path)
    if not path.exists():
        raise SweepError(path, None, "no such directory")
    if not path.is_dir():
        raise SweepError(path, None, "not a directory; give a results directory")
    return path


def open_results(path: str | Path) -> Results:
    """Load a complete results directory, checking every file it reads (SweepError naming
    the file and the problem if it is not one, or is damaged)."""
    rd = ResultsDir(existing_directory(path))
    meta = rd.read_meta()
    if meta is None:
        raise SweepError(rd.path, "meta.json", "not a geomtoy results directory")
    if meta["status"] != "complete":
        reason = f"run is {meta['status']}, not complete; rerun `geomtoy run` to finish it"
        raise SweepError(rd.path, "meta.json", reason)
    I = meta["n_instances"]
    check = array_check(meta)
    params = read_npz(rd.table("params.npz"), PARAMS_KEYS, check=check)
    curves = read_npz(rd.table("curves.npz"), ("loss", "step"), check=check)
    features = int(np.sum(params["n_features"]))
    samples = rd.table("samples.parquet")
    return Results(
        path=rd.path,
        meta=meta,
        instances=read_parquet(rd.table("instances.parquet"), INSTANCE_COLUMNS, I, COLUMN_KINDS),
        features=read_parquet(
            rd.table("features.parquet"), FEATURE_COLUMNS, features, COLUMN_KINDS
        ),
        params=params,
        curves=curves,
        samples=read_parquet(samples) if samples.exists() or samples.is_symlink() else None,
    )


def describe(path: Path) -> str:
    """One line about a complete results directory: instances, divergences, geometries."""
    res = open_results(path)
    geometry = res.column("geometry")
    diverged = int(np.sum(res.column("diverged")))
    values, counts = np.unique(geometry.astype(str), return_counts=True)
    top = sorted(zip(counts, values), reverse=True)[:3]
    common = ", ".join(f"{v} x{c}" for c, v in top)
    return (
        f"{path}: {len(geometry)} instances, {diverged} diverged, "
        f"{res.meta['wall_time_s']:.1f} s; most common geometry: {common}"
    )
