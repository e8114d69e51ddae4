"""Results for notebooks: a complete results directory as pandas DataFrames and an xarray
Dataset (`geomtoy.open`, `geomtoy.Results`). NumPy and pyarrow only, no JAX, so opening
results made before starts no engine. pandas and xarray are optional:
``pip install "geomtoy[notebook]"``.
"""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np

from geomtoy.results import store as results


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

    @property
    def dims(self) -> list[str]:
        """The dimensions of `to_xarray` besides `feature`: the grid axes and `seed`, and
        first, for an SAE sweep, `toy` (the source model each SAE reads: the SAE grid is
        the product of the source's models with the SAE axes)."""
        sae = self.meta.get("family") == "sae"
        return [*(["toy"] if sae else []), *self.axes, "seed"]

    def to_xarray(self):
        """One xarray Dataset over `dims` and (per-feature columns) `feature`; cells of a
        grid that is not a full product are NaN. A per-feature column named as a
        per-instance one (an SAE's `recovered_0.9`: the share of features per SAE, and
        whether each feature is recovered) is the variable `feature_<name>`."""
        try:
            import xarray as xr
        except ModuleNotFoundError as e:
            raise ModuleNotFoundError(
                "to_xarray needs xarray: pip install xarray (or 'geomtoy[notebook]')"
            ) from e
        index = self.dims
        inst = self.instances
        per_instance = inst.drop(columns=["point", "group"], errors="ignore").set_index(index)
        both = (set(self.features.columns) - {"instance", "feature"}) & set(per_instance.columns)
        features = self.features.rename(columns={c: f"feature_{c}" for c in both})
        features = features.merge(inst[["instance", *index]], on="instance")
        per_feature = features.drop(columns=["instance"]).set_index([*index, "feature"])
        dataset = xr.merge([per_instance.to_xarray(), per_feature.to_xarray()])
        dataset.attrs.update(name=self.meta["name"], path=str(self.path))
        return dataset

    def __repr__(self) -> str:
        axes = ", ".join(self.axes) or "no grid axes"
        return f"<geomtoy results {self.meta['name']!r} at {self.path}: {self.meta['n_instances']} instances; {axes}>"


def open_results(path: str | Path) -> Results:
    """Open a complete results directory (`geomtoy.open`)."""
    return Results(results.open_results(path))
