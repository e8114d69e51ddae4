"""The Python surface for notebooks: `geomtoy.run`, `geomtoy.open`, `geomtoy.train_instances`.

Like the command line, the API trains on every CPU core by default: before JAX starts it
asks for one CPU device per core (`parallel.configure_cpu_devices`) and splits the
instances over them. pandas (tables) and xarray (`to_xarray`) are optional:
``pip install "geomtoy[notebook]"``.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np


def _mesh(devices):
    """The instance mesh over `devices` local devices (None: one device)."""
    from geomtoy import parallel

    want = None if devices in (None, "auto") else int(devices)
    parallel.configure_cpu_devices(want)
    return parallel.current_mesh(parallel.instance_mesh(want))


def train_instances(
    shape,
    hp,
    root_seed: int = 0,
    chunk_steps: int = 500,
    on_chunk: Callable[[int, np.ndarray], None] | None = None,
    devices: int | str = "auto",
):
    """`geomtoy.train.train_instances` over `devices` local devices (default all; on CPU
    one per core): instances are split over them when their count divides evenly."""
    from geomtoy import train

    return train.train_instances(shape, hp, root_seed, chunk_steps, on_chunk, mesh=_mesh(devices))


def run(
    sweep: str | Path,
    scale: str = "default",
    out: str | Path | None = None,
    sets: Sequence[str] = (),
    resume: bool = False,
    overwrite: bool = False,
    devices: int | str = "auto",
    progress: bool = True,
) -> Results:
    """Train a sweep (a TOML file or a bundled name such as "pentagon") into `out`
    (default results/<name>), as `geomtoy run` does, and open the results. A complete
    directory of the same sweep is opened without training."""
    from geomtoy import bundled, compile_cache, runner
    from geomtoy.progress import Progress
    from geomtoy.sweep import load

    spec = load(bundled.resolve(sweep), scale=scale, sets=list(sets))
    out = Path(out) if out is not None else Path("results") / spec.name
    report = Progress(sys.stderr if progress else None)
    compile_cache.enable()  # as the command line: compiled programs persist across runs
    command = f"geomtoy.run({str(sweep)!r}, scale={scale!r})"
    runner.run_sweep(
        spec, out, command=command, resume=resume, overwrite=overwrite, progress=report,
        mesh=_mesh(devices),
    )  # fmt: skip
    return open_results(out)


def _pandas(table, what: str):
    try:
        return table.to_pandas()
    except ModuleNotFoundError as e:
        raise ModuleNotFoundError(
            f"{what} as a DataFrame needs pandas: pip install pandas (or 'geomtoy[notebook]'); "
            "the pyarrow table is .arrow." + what.rsplit(".", 1)[-1]
        ) from e


class Results:
    """A complete results directory: `instances` and `features` as pandas DataFrames,
    `params` and `curves` as NumPy arrays, `meta` as a dict, `arrow` the pyarrow tables
    (results.Results), `axes` the grid axes (dotted keys, e.g. "data.feature_probability")."""

    def __init__(self, loaded):
        self.arrow = loaded
        self.path: Path = loaded.path
        self.meta: dict = loaded.meta
        self.params: dict[str, np.ndarray] = loaded.params
        self.curves: dict[str, np.ndarray] = loaded.curves
        self.axes: list[str] = list(loaded.meta.get("axes", {}))

    @functools.cached_property
    def instances(self):
        return _pandas(self.arrow.instances, "results.instances")

    @functools.cached_property
    def features(self):
        return _pandas(self.arrow.features, "results.features")

    @functools.cached_property
    def samples(self):
        """One row per training point of a finite-data sweep (docs/results.md), or None."""
        table = self.arrow.samples
        return None if table is None else _pandas(table, "results.samples")

    def to_xarray(self):
        """One xarray Dataset over the grid axes, `seed` and (per-feature columns)
        `feature`; cells of a grid that is not a full product are NaN."""
        try:
            import xarray as xr
        except ModuleNotFoundError as e:
            raise ModuleNotFoundError(
                "to_xarray needs xarray: pip install xarray (or 'geomtoy[notebook]')"
            ) from e
        index = [*self.axes, "seed"]
        inst = self.instances
        per_instance = inst.drop(columns=["point", "group"], errors="ignore").set_index(index)
        features = self.features.merge(inst[["instance", *index]], on="instance")
        per_feature = features.drop(columns=["instance"]).set_index([*index, "feature"])
        dataset = xr.merge([per_instance.to_xarray(), per_feature.to_xarray()])
        dataset.attrs.update(name=self.meta["name"], path=str(self.path))
        return dataset

    def __repr__(self) -> str:
        axes = ", ".join(self.axes) or "no grid axes"
        return f"<geomtoy results {self.meta['name']!r} at {self.path}: {self.meta['n_instances']} instances; {axes}>"


def open_results(path: str | Path) -> Results:
    """Open a complete results directory (`geomtoy.open`)."""
    from geomtoy import results

    return Results(results.open_results(path))
