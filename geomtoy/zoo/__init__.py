"""Reference models by name: trained toy models of the paper, shipped in the package with
their geometry labels and where they came from.

    from geomtoy import zoo
    zoo.names()                      # ['pentagon', 'uniform_40x10', 'abs_3x6', 'feature_geometry']
    m = zoo.load("pentagon")
    m.W[0]                           # (m, n) = (2, 5): the best seed's weights
    m.features.to_pandas()           # norms, D_i, tegum factors, polytope labels
    m.provenance["command"]          # geomtoy run pentagon --scale default

Each entry is the best seed of some grid points of a bundled sweep (`catalog.ENTRIES`),
trained by `python -m geomtoy.zoo.build` (`make zoo`): its provenance records the sweep,
scale, --set overrides, fingerprint and instance ids, so `geomtoy run` with that command
retrains the same models. Loading reads NumPy and Parquet files only (no JAX), each
checked against the checksum the build recorded.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
from importlib import resources

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from geomtoy.errors import SweepError
from geomtoy.zoo.catalog import BY_NAME, ENTRIES, ZOO_VERSION, Entry

__all__ = ["ZOO_VERSION", "Entry", "ZooModel", "load", "names"]

MANIFEST = "zoo.json"
"""The data folder's index: the zoo version and each file's sha256."""


@dataclasses.dataclass(frozen=True)
class ZooModel:
    """The models of one zoo entry, k of them (the leading axis of every array).

    params: the run's params.npz rows of these models (W (k, m, n), b (k, n), W2 for the
    abs model, importance, feature_probability, lr, ...). instances, features: their rows of
    the run's instances.parquet and features.parquet (`instance` renumbered 0 .. k-1; the
    run's id in `run_instance`). provenance: the entry, the command, the sweep's fingerprint,
    geomtoy and JAX versions of the build.
    """

    name: str
    params: dict[str, np.ndarray]
    instances: pa.Table
    features: pa.Table
    provenance: dict

    @property
    def W(self) -> np.ndarray:
        return self.params["W"]

    @property
    def b(self) -> np.ndarray:
        return self.params["b"]

    def __len__(self) -> int:
        return len(self.params["W"])


def names() -> list[str]:
    """The entries' names, in the catalogue's order."""
    return [e.name for e in ENTRIES]


def _data():
    return resources.files("geomtoy.zoo") / "data"


def _read(name: str, checksums: dict) -> bytes:
    blob = (_data() / name).read_bytes()
    if hashlib.sha256(blob).hexdigest() != checksums.get(name):
        raise SweepError(f"geomtoy/zoo/data/{name}", None, "checksum mismatch; rebuild the zoo")
    return blob


def manifest() -> dict:
    """The data folder's index (zoo version, files and their sha256)."""
    doc = json.loads((_data() / MANIFEST).read_text(encoding="utf-8"))
    if doc.get("zoo_version") != ZOO_VERSION:
        reason = f"zoo version {doc.get('zoo_version')}, this geomtoy reads {ZOO_VERSION}"
        raise SweepError(f"geomtoy/zoo/data/{MANIFEST}", "zoo_version", reason)
    return doc


def load(name: str) -> ZooModel:
    """The models of the zoo entry `name` (see `names()`); SweepError for an unknown name."""
    if name not in BY_NAME:
        raise SweepError("geomtoy.zoo", name, f"no such model; the zoo holds {', '.join(names())}")
    checksums = manifest()["files"]
    with np.load(io.BytesIO(_read(f"{name}.npz", checksums))) as f:
        params = {k: f[k] for k in f.files}
    tables = {
        # one thread: pyarrow's thread pool reading from memory can abort the interpreter
        # at exit ("terminate called without an active exception"), seen with pyarrow 26
        t: pq.read_table(io.BytesIO(_read(f"{name}.{t}.parquet", checksums)), use_threads=False)
        for t in ("instances", "features")
    }
    provenance = json.loads(_read(f"{name}.json", checksums))
    return ZooModel(name, params, tables["instances"], tables["features"], provenance)
