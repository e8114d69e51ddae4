"""The geometry tables of a results directory, from its weights.

`geometry_tables` turns stacked weights (params.npz) into the geometry columns of
instances.parquet and all of features.parquet; a run writes them when it assembles its
tables and `geomtoy analyze` recomputes them after this package changed, without training.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pyarrow as pa

from geomtoy.geometry import analyze

FACTOR_COLUMNS = ("factor_size", "factor_dim", "fit_error", "leak")
"""features.parquet columns describing each feature's tegum factor, the same on every
member: k, the dimensions d it spans, its fit error (RMS cosine error to its polytope
after the best vertex matching, null for `other`) and its leak (largest |cos| of a
member to a represented feature outside it); 0, 0, null, null for features that are not
represented. Readers require these (`geomtoy analyze` adds them to older results)."""

SPREAD_COLUMNS = ("norm_spread",)
"""features.parquet columns added by geometry v3, the same on every member of a factor:
its norm spread (max/min - 1 of its members' norms; labels never depend on it), null
for features that are not represented. Readers do not require them."""


def geometry_tables(params: Mapping[str, np.ndarray], columns: dict, diverged: np.ndarray):
    """instances columns (with geometry added) and features columns, from the weights.

    Uses `geomtoy.geometry.analyze` once per distinct (m, n). The instance's
    `geometry` column is the summary string of its tegum factors (e.g. "pentagon",
    "2 digon + 1 dedicated"), or "diverged".
    """
    W, b = params["W"], params["b"]
    n_features = params["n_features"]
    I = len(W)
    offset = np.concatenate([[0], np.cumsum(n_features)])
    F = int(offset[-1])
    dpf, n_rep, summary, per_feature = _analyze_by_shape(W, n_features, params["n_hidden"], offset)
    summary[diverged] = "diverged"
    dpf[diverged] = np.nan  # D* of NaN or inf weights is no dimensionality

    instances = dict(columns)
    instances["dims_per_feature"] = dpf
    instances["n_represented"] = n_rep
    instances["geometry"] = [str(s) for s in summary]
    instance = np.repeat(np.arange(I, dtype=np.int64), n_features)
    feature = np.arange(F, dtype=np.int64) - offset[:-1][instance]
    mask = np.arange(W.shape[-1])[None, :] < n_features[:, None]  # real features of each row

    features = {
        "instance": instance,
        "feature": feature,
        "norm": per_feature["norm"],
        "dimensionality": per_feature["dimensionality"],
        "interference": per_feature["interference"],
        "bias": np.asarray(b, np.float64)[mask],
        "factor": per_feature["factor"],
        "polytope": [str(s) for s in per_feature["polytope"]],
        "importance": np.asarray(params["importance"], np.float64)[mask],
        "feature_probability": np.asarray(params["feature_probability"], np.float64)[mask],
        **{name: per_feature[name] for name in FACTOR_COLUMNS + SPREAD_COLUMNS},
    }
    for name in ("factor_size", "factor_dim"):
        features[name] = np.nan_to_num(features[name]).astype(np.int64)
    for name in ("fit_error", "leak", "norm_spread"):  # null where undefined; reads back as NaN
        features[name] = pa.array(features[name], mask=np.isnan(features[name]))
    return instances, features


def _analyze_by_shape(W, n_features, n_hidden, offset):
    """`analyze` once per distinct (m, n): per instance D*, the represented count and the
    summary; per feature (rows `offset[i]` on) the Geometry's feature columns."""
    I, F = len(W), int(offset[-1])
    dpf = np.full(I, np.nan)
    n_rep = np.zeros(I, np.int64)
    summary = np.empty(I, object)
    per_feature = {
        "norm": np.full(F, np.nan),
        "dimensionality": np.full(F, np.nan),
        "interference": np.full(F, np.nan),
        "factor": np.full(F, -1, np.int64),
        "polytope": np.empty(F, object),
        **{name: np.full(F, np.nan) for name in FACTOR_COLUMNS + SPREAD_COLUMNS},
    }
    for n, m in sorted(set(zip(n_features.tolist(), n_hidden.tolist()))):
        sel = np.flatnonzero((n_features == n) & (n_hidden == m))
        g = analyze(W[sel, :m, :n])
        dpf[sel] = g.dims_per_feature
        n_rep[sel] = g.n_represented
        summary[sel] = g.summary
        rows = (offset[sel][:, None] + np.arange(n)[None, :]).reshape(-1)
        for k, column in per_feature.items():
            column[rows] = np.asarray(getattr(g, k)).reshape(-1)
    return dpf, n_rep, summary, per_feature
