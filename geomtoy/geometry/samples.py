"""Tables of finite-data runs: per-instance summaries and the per-sample table.

A block of a finite-data group (data.n_samples = T > 0) stores, besides the weights,
the measurements of `geomtoy.engine.fullbatch.measure`: the training set's hidden vectors
h_X = W x_X (I, m, T), their data-point dimensionalities D_X and norms, the feature
dimensionalities D_i, and the norms of W and H. `finite_tables` turns them into

instances.parquet columns (NaN / "" for instances of infinite-data groups)
    n_samples              T (0 for fresh samples every step)
    test_loss              loss on eval_samples fresh samples (= loss)
    sample_dim_mean        mean_X D_X (about m/T whenever H H^T is near isotropic)
    sample_dim_max         max_X D_X: m/T for a T-gon, the best-stored point otherwise
    feature_dim_max        max_i D_i: 2/5 for a clean pentagon, less with many small
                           features adding to the denominator
    weight_norm            ||W||_F
    hidden_norm            ||H||_F / sqrt(T), the RMS hidden-vector norm
    truncated              samples that overflowed their sparse slots (should be 0)
    sample_geometry        the hidden vectors labelled by `point_geometry` (the same
                           polytope checks as features, points shorter than
                           POINT_REPRESENTED_RTOL x the longest left out), e.g. "triangle",
                           "pentagon"; "" when T is above SAMPLE_GEOMETRY_MAX (a T x T
                           Gram matrix per instance)

samples.parquet, one row per training point of every finite instance
    instance, sample, dimensionality (D_X), norm (||h_X||), polytope (the point's label
    in `point_geometry`: e.g. "pentagon", "not_represented" for a point near the origin,
    "" when T is above SAMPLE_GEOMETRY_MAX), hidden_0 ... hidden_{m-1} (the hidden
    vector, NaN past the instance's m).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import numpy as np

from geomtoy.geometry.polytopes import Geometry, analyze
from geomtoy.geometry.thresholds import POINT_REPRESENTED_RTOL, REPRESENTED_NORM

SAMPLE_GEOMETRY_MAX = 512
"""Largest T whose hidden vectors are labelled (their Gram matrix is T x T)."""

SUMMARY_COLUMNS = (
    "n_samples",
    "test_loss",
    "sample_dim_mean",
    "sample_dim_max",
    "feature_dim_max",
    "weight_norm",
    "hidden_norm",
    "truncated",
)


def block_arrays(measures: Mapping[str, np.ndarray], n: int) -> dict[str, np.ndarray]:
    """What a finite block file stores (the first n, unpadded, instances of `measures`)."""
    keep = ("hidden", "sample_dimensionality", "sample_norm", "feature_dimensionality")
    out = {f"finite_{k}": np.asarray(measures[k])[:n] for k in keep}
    out["finite_weight_norm"] = np.asarray(measures["weight_norm"])[:n]
    out["finite_truncated"] = np.asarray(measures["truncated"])[:n]
    return out


def finite_tables(n_instances: int, blocks: Iterable[Mapping[str, np.ndarray]]):
    """(instance columns, samples.parquet columns or None) from the block files."""
    cols = {k: np.full(n_instances, np.nan) for k in SUMMARY_COLUMNS}
    cols["n_samples"] = np.zeros(n_instances, np.int64)
    cols["truncated"] = np.zeros(n_instances, np.int64)
    cols["sample_geometry"] = np.full(n_instances, "", object)
    parts = []
    for z in blocks:
        if "finite_hidden" not in z:
            continue
        ids, H = z["instance"], z["finite_hidden"]
        T = H.shape[2]
        cols["n_samples"][ids] = T
        cols["test_loss"][ids] = z["loss"]
        cols["sample_dim_mean"][ids] = z["finite_sample_dimensionality"].mean(axis=1)
        cols["sample_dim_max"][ids] = z["finite_sample_dimensionality"].max(axis=1)
        cols["feature_dim_max"][ids] = z["finite_feature_dimensionality"].max(axis=1)
        cols["weight_norm"][ids] = z["finite_weight_norm"]
        cols["hidden_norm"][ids] = np.sqrt(np.mean(z["finite_sample_norm"] ** 2, axis=1))
        cols["truncated"][ids] = z["finite_truncated"]
        parts.append((ids, H, z["finite_sample_dimensionality"], z["finite_sample_norm"]))
    if not parts:
        return {}, None
    cols["sample_geometry"], point_labels = _sample_geometry(n_instances, parts)
    return cols, _samples_columns(parts, point_labels)


def point_geometry(H) -> Geometry:
    """Geometry of the training points' hidden vectors H (I, m, T), as a person reads
    the plot: the points shorter than `POINT_REPRESENTED_RTOL` x the longest of their
    training set are left out (`not_represented`), the others are labelled as features
    are (`geomtoy.geometry.polytopes.analyze`: polytopes by their directions, k-gons by
    their angular gaps). Labels do not depend on the hidden vectors' scale."""
    H = np.asarray(H, np.float32)
    longest = np.max(np.linalg.norm(H, axis=1), axis=1) if H.size else np.zeros(len(H))
    ok = np.isfinite(longest) & (longest > 0)
    scale = np.where(ok, REPRESENTED_NORM / (POINT_REPRESENTED_RTOL * np.where(ok, longest, 1)), 1)
    return analyze(H * scale[:, None, None].astype(np.float32))


def _sample_geometry(n_instances: int, parts) -> tuple[np.ndarray, list]:
    """Summaries of the hidden vectors of every instance with T <= SAMPLE_GEOMETRY_MAX and
    each part's per-point labels ("" above it), in one analysis: zero columns and rows pad
    them to one shape (a zero vector is not represented and changes no label), so the
    analysis compiles once."""
    labels = np.full(n_instances, "", object)
    points = [np.full(H.shape[::2], "", object) for _, H, _, _ in parts]
    small = [p for p, (_, H, _, _) in enumerate(parts) if H.shape[2] <= SAMPLE_GEOMETRY_MAX]
    if not small:
        return labels, points
    m_max = max(parts[p][1].shape[1] for p in small)
    ids = np.concatenate([parts[p][0] for p in small])
    padded = np.zeros((len(ids), m_max, SAMPLE_GEOMETRY_MAX), np.float32)
    rows = []
    for p in small:
        H = parts[p][1]
        start = sum(len(r) for r in rows)
        padded[start : start + len(H), : H.shape[1], : H.shape[2]] = H
        rows.append(np.arange(start, start + len(H)))
    g = point_geometry(padded)
    labels[ids] = g.summary  # non-finite (diverged) instances get "none"
    for p, r in zip(small, rows):
        points[p] = g.polytope[r, : parts[p][1].shape[2]].astype(object)
    return labels, points


def _samples_columns(parts, point_labels) -> dict[str, np.ndarray]:
    m_max = max(H.shape[1] for _, H, _, _ in parts)
    out: dict[str, list] = {"instance": [], "sample": [], "dimensionality": [], "norm": []}
    out["polytope"] = [labels.reshape(-1) for labels in point_labels]
    hidden = [[] for _ in range(m_max)]
    for ids, H, dims, norms in parts:
        I, m, T = H.shape
        out["instance"].append(np.repeat(ids.astype(np.int64), T))
        out["sample"].append(np.tile(np.arange(T, dtype=np.int64), I))
        out["dimensionality"].append(dims.reshape(-1))
        out["norm"].append(norms.reshape(-1))
        for j in range(m_max):
            hidden[j].append(H[:, j].reshape(-1) if j < m else np.full(I * T, np.nan, np.float32))
    columns = {k: np.concatenate(v) for k, v in out.items()}
    columns["polytope"] = [str(label) for label in columns["polytope"]]
    columns |= {f"hidden_{j}": np.concatenate(v) for j, v in enumerate(hidden)}
    return columns
