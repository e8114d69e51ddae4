"""Train the zoo: `python -m geomtoy.zoo.build [--only NAME ...] [--work DIR] [--out DIR]`
(`make zoo`). Each entry of `catalog.ENTRIES` is run as `geomtoy run` would (the bundled
sweep, its scale and --set overrides, into --work: a complete run there is reused), its
models selected (the best seed of each grid point kept) and written to --out (default the
package's data folder) as NAME.npz, NAME.instances.parquet, NAME.features.parquet and
NAME.json (provenance), with zoo.json indexing every file by its sha256.
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import io
import json
import sys
from collections.abc import Sequence
from pathlib import Path

import jax
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

import geomtoy
from geomtoy import api
from geomtoy.errors import SweepError
from geomtoy.results import store
from geomtoy.zoo import MANIFEST, ZOO_VERSION
from geomtoy.zoo.catalog import BY_NAME, ENTRIES, Entry

DATA = Path(__file__).resolve().parent / "data"
WORK = Path("results") / "zoo"


def selected(res: store.Results, entry: Entry) -> np.ndarray:
    """Instance ids the entry keeps: the best seed of each grid point matching `where`."""
    keep = res.column("best").astype(bool) & ~res.column("diverged").astype(bool)
    for key, value in (entry.where or {}).items():
        keep &= np.isclose(res.column(key).astype(np.float64), value, rtol=1e-9)
    ids = res.column("instance")[keep]
    if not len(ids):
        raise SweepError(res.path, None, f"zoo entry {entry.name}: no model matches {entry.where}")
    return np.sort(ids)


def subset(res: store.Results, ids: np.ndarray) -> tuple[dict, pa.Table, pa.Table]:
    """(params, instances, features) of the instances `ids`, renumbered 0 .. k-1."""
    I = res.meta["n_instances"]
    params = {
        k: v[ids] for k, v in res.params.items() if np.ndim(v) and len(v) == I and k != "instance"
    }  # the run's ids: `run_instance` in the tables
    new = {int(old): k for k, old in enumerate(ids)}
    tables = []
    for table in (res.instances, res.features):
        old = table.column("instance").to_numpy()
        rows = np.flatnonzero(np.isin(old, ids))
        t = table.take(pa.array(rows))
        renumbered = np.array([new[int(i)] for i in old[rows]], np.int64)
        t = t.set_column(t.schema.get_field_index("instance"), "instance", pa.array(renumbered))
        tables.append(t.append_column("run_instance", pa.array(old[rows].astype(np.int64))))
    return params, tables[0], tables[1]


def provenance(entry: Entry, res: store.Results, ids: np.ndarray) -> dict:
    meta = res.meta
    return {
        "name": entry.name,
        "description": entry.description,
        "section": entry.section,
        "zoo_version": ZOO_VERSION,
        "sweep": entry.sweep,
        "scale": entry.scale,
        "sets": list(entry.sets),
        "where": entry.where,
        "select": "the best seed (lowest loss) of each grid point"
        + (" matching where" if entry.where else ""),
        "command": entry.command,
        "run_instances": [int(i) for i in ids],
        "fingerprint": meta.get("fingerprint"),
        "spec": meta.get("spec"),
        "geometry": [str(g) for g in res.column("geometry")[ids]],
        "loss": [float(x) for x in res.column("loss")[ids]],
        "geomtoy_version": geomtoy.__version__,
        "jax_version": jax.__version__,
        "backend": jax.default_backend(),
        "built": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }


def _parquet(table: pa.Table) -> bytes:
    buf = io.BytesIO()
    pq.write_table(table, buf)
    return buf.getvalue()


def build_entry(entry: Entry, work: Path, out: Path) -> dict[str, bytes]:
    """Train (or reuse) the entry's run under `work` and write its files to `out`."""
    res = api.run(entry.sweep, scale=entry.scale, out=work / entry.name, sets=entry.sets).arrow
    ids = selected(res, entry)
    params, instances, features = subset(res, ids)
    npz = io.BytesIO()
    np.savez_compressed(npz, **params)
    files = {
        f"{entry.name}.npz": npz.getvalue(),
        f"{entry.name}.instances.parquet": _parquet(instances),
        f"{entry.name}.features.parquet": _parquet(features),
        f"{entry.name}.json": (
            json.dumps(provenance(entry, res, ids), indent=1, ensure_ascii=False) + "\n"
        ).encode(),
    }
    out.mkdir(parents=True, exist_ok=True)
    for name, blob in files.items():
        store.atomic_write_bytes(out / name, blob)
    return files


def write_manifest(out: Path) -> dict:
    """zoo.json: the version and the sha256 of every entry's files present in `out`."""
    files = {}
    for entry in ENTRIES:
        for suffix in (".npz", ".instances.parquet", ".features.parquet", ".json"):
            path = out / f"{entry.name}{suffix}"
            if path.exists():
                files[path.name] = hashlib.sha256(path.read_bytes()).hexdigest()
    doc = {"zoo_version": ZOO_VERSION, "files": files}
    store.atomic_write_bytes(out / MANIFEST, (json.dumps(doc, indent=1) + "\n").encode())
    return doc


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m geomtoy.zoo.build", description=__doc__)
    parser.add_argument("--only", nargs="+", metavar="NAME", choices=sorted(BY_NAME))
    parser.add_argument("--work", type=Path, default=WORK, help=f"run directories ({WORK})")
    parser.add_argument("--out", type=Path, default=DATA, help="data folder (the package's)")
    args = parser.parse_args(argv)
    try:
        for entry in ENTRIES:
            if args.only is None or entry.name in args.only:
                files = build_entry(entry, args.work, args.out)
                size = sum(len(b) for b in files.values()) / 1e3
                print(f"zoo: {entry.name}: {size:.0f} kB ({entry.command})", file=sys.stderr)
    except SweepError as e:
        print(f"geomtoy.zoo.build: error: {e}", file=sys.stderr)
        return 2
    write_manifest(args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
