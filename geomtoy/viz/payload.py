"""The explorer's data for one toy sweep: `sweep_payload` reads a complete results directory
and returns what the page draws, compactly encoded (`geomtoy.viz.encode`).

Each table column is one typed array; weights and per-feature metrics are float32, or
float16 for sweeps whose float32 payload exceeds the budgets below; models of different
shapes are stored ragged (offsets `foff`, `woff`), rows of importance and feature
probability once per distinct row.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from geomtoy.engine import models
from geomtoy.geometry import neurons, polytopes, vocabulary
from geomtoy.geometry.tables import FACTOR_COLUMNS
from geomtoy.results import store as results
from geomtoy.spec import SweepError
from geomtoy.viz import style
from geomtoy.viz.encode import array, codes, dedupe_rows, finite_json, ints, jsonable

F32_BUDGET = 8_000_000
"""Bytes of float32 arrays above which a sweep's weights (W, W2, b, curves) are float16."""

F16_METRICS_BUDGET = 16_000_000
"""Bytes of arrays (weights already float16) above which the per-feature metrics are float16."""

LABELS = (*vocabulary.POLYTOPES, vocabulary.OTHER, vocabulary.NOT_REPRESENTED)
"""Every polytope label, in the order the page lists it (the vocabulary registry's)."""

POLYTOPE_COLORS = style.POLYTOPE_COLORS

PALETTE = (
    "#ff7f0e", "#8c564b", "#bcbd22", "#393b79", "#637939", "#8c6d31", "#843c39",
    "#7b4173", "#3182bd", "#e6550d", "#31a354", "#756bb1", "#fd8d3c", "#74c476",
    "#9e9ac8", "#e7969c", "#6baed6", "#c49c94", "#dbdb8d", "#9edae5",
)  # fmt: skip
"""Colours for geometry summaries that are not a single polytope label."""


def _axis(key: str, column: np.ndarray) -> tuple[dict, np.ndarray]:
    """An axis description for the page and the value index of each instance.

    Numeric axes are ordered ascending (sliders and the phase map grow to the right and
    upwards); other axes keep the order of first appearance (the sweep file's order).
    """
    numeric = column.dtype.kind in "iuf"
    if numeric:
        values, index = np.unique(column, return_inverse=True)
        positive = values.size > 1 and bool(np.all(values > 0))
        steps = np.diff(np.log(values)) if positive else None
        log = positive and values.size > 2 and np.allclose(steps, steps[0], rtol=1e-3)
        labels = [f"{v:.4g}" for v in values.tolist()]
        shown = [finite_json(v) for v in values.tolist()]
    else:
        labels, index = codes([str(v) for v in column])
        shown, log = labels, False
    axis = {"key": key, "labels": labels, "values": shown, "numeric": bool(numeric)}
    return axis | {"log": bool(log)}, index


def _geometry_colors(geometries: list[str], counts: np.ndarray) -> list[str]:
    """A colour per geometry summary: a single polytope label gets the polytope's colour."""
    colors = [""] * len(geometries)
    used: set[str] = set()
    palette = iter(PALETTE)
    for k in np.argsort(-counts, kind="stable"):
        g = geometries[k]
        if g == "none":
            colors[k] = "#f2f2f2"
        elif g == "diverged":
            colors[k] = "#000000"
        elif g in POLYTOPE_COLORS and g not in used:
            colors[k] = POLYTOPE_COLORS[g]
            used.add(g)
    for k in np.argsort(-counts, kind="stable"):
        if not colors[k]:
            rgb = 90 + (np.frombuffer(geometries[k].encode()[:3].ljust(3), np.uint8) % 120)
            colors[k] = next(palette, None) or "#" + "".join(f"{int(c):02x}" for c in rgb)
    return colors


def _instances(res: results.Results) -> dict[str, np.ndarray]:
    """instances.parquet as columns in instance order (SweepError unless ids are 0 .. I-1)."""
    I = res.instances.num_rows
    if I == 0:
        raise SweepError(res.path / "instances.parquet", None, "no instances")
    order = np.argsort(res.column("instance"), kind="stable")
    if not np.array_equal(res.column("instance")[order], np.arange(I)):
        raise SweepError(
            res.path / "instances.parquet", "instance", "instance ids are not 0 .. I-1"
        )
    return {name: res.column(name)[order] for name in res.instances.column_names}


def _axes(res: results.Results, col: dict) -> tuple[list[dict], np.ndarray]:
    """The grid axes (meta["axes"]: {key: values} or a list of keys) and each instance's
    value index on each, (I, A)."""
    axes_meta = res.meta.get("axes") or {}
    keys = list(axes_meta) if isinstance(axes_meta, (dict, list)) else []
    axes, index = [], []
    for key in keys:
        if key not in col:
            reason = "grid axis named in meta.json has no column"
            raise SweepError(res.path / "instances.parquet", key, reason)
        a, idx = _axis(key, col[key])
        axes.append(a)
        index.append(idx)
    I = len(col["instance"])
    return axes, np.stack(index, axis=1) if index else np.zeros((I, 0), np.int64)


def _features(res: results.Results, n_col: np.ndarray) -> tuple[dict, np.ndarray]:
    """features.parquet as columns ordered by (instance, feature), and each instance's
    first row (I + 1 offsets); SweepError unless the rows match n_features."""
    f_inst = res.column("instance", "features")
    f_feat = res.column("feature", "features")
    order = np.lexsort((f_feat, f_inst))
    f_inst, f_feat = f_inst[order], f_feat[order]
    foff = np.concatenate([[0], np.cumsum(n_col)]).astype(np.int64)
    if len(f_inst) != foff[-1] or not np.array_equal(f_feat, np.arange(foff[-1]) - foff[f_inst]):
        reason = "rows do not match n_features of each instance"
        raise SweepError(res.path / "features.parquet", None, reason)
    for name in FACTOR_COLUMNS:
        if name not in res.features.column_names:
            reason = f"no column; `geomtoy analyze {res.path}` recomputes the geometry tables"
            raise SweepError(res.path / "features.parquet", name, reason)
    return {name: res.column(name, "features")[order] for name in res.features.column_names}, foff


def _ragged_weights(params: dict, n_col: np.ndarray, m_col: np.ndarray) -> dict:
    """W (m x n per instance, row-major), b and W2 (n x m) without padding, concatenated."""
    I = len(n_col)
    W = params["W"]
    out = {
        "W": np.concatenate([W[i, : m_col[i], : n_col[i]].reshape(-1) for i in range(I)]),
        "b": np.concatenate([params["b"][i, : n_col[i]] for i in range(I)]),
    }
    if "W2" in params:
        W2 = params["W2"]  # (I, n, m)
        out["W2"] = np.concatenate([W2[i, : n_col[i], : m_col[i]].reshape(-1) for i in range(I)])
    return out


def _curve_steps(step: np.ndarray) -> tuple[list[list[int]], np.ndarray]:
    """The distinct rows of the curves' steps and each instance's row."""
    distinct: list[list[int]] = []
    ids = np.zeros(len(step), np.int64)
    seen: dict[bytes, int] = {}
    for i, row in enumerate(step):
        key = row.tobytes()
        if key not in seen:
            seen[key] = len(distinct)
            distinct.append([int(s) for s in row])
        ids[i] = seen[key]
    return distinct, ids


def _stacks(res: results.Results, kinds: list[str], kind_code, fcol, foff) -> dict:
    """The neuron stack plot of every model (`geomtoy.geometry.neurons.stacks`), for sweeps
    with a privileged hidden basis: floats ragged like W, neuron ints by `moff`, the colour
    key (importance rank) by `foff`. Empty for sweeps without one."""
    flags = [models.MODELS[k] if k in models.MODELS else None for k in kinds]
    if not any(f is not None and f.privileged_hidden for f in flags):
        return {}
    n_col, m_col = res.params["n_features"], res.params["n_hidden"]
    W, W2 = res.params["W"], res.params.get("W2")
    parts = []
    for i, (n, m) in enumerate(zip(n_col, m_col)):
        untied = flags[kind_code[i]] is not None and flags[kind_code[i]].untied
        w2 = W2[i, :n, :m] if untied and W2 is not None else None
        parts.append(neurons.stacks(W[i, :m, :n], fcol["importance"][foff[i] : foff[i + 1]], w2))
    return {
        name: np.concatenate([getattr(st, name).reshape(-1) for st in parts])
        for name in ("order", "count", "feature", "weight", "bottom", "rank")
    } | {"moff": np.concatenate([[0], np.cumsum(m_col)]).astype(np.int64)}


def _precision(weights: dict, metrics: dict) -> tuple[str, str]:
    """Typed-array codes of the weights and of the metrics, within the byte budgets."""
    sizes = [sum(np.size(v) for v in d.values()) for d in (weights, metrics)]
    weight_code = "f4" if 4 * (sizes[0] + sizes[1]) <= F32_BUDGET else "f2"
    small = 2 * sizes[0] + 4 * sizes[1] <= F16_METRICS_BUDGET
    return weight_code, "f4" if weight_code == "f4" or small else "f2"


def _float_arrays(res, fcol, foff, shapes, stack) -> tuple[dict, dict]:
    """The float arrays (weights, curves, stack plots, per-feature metrics) and their
    precision."""
    I = len(foff) - 1

    def rows(name):
        return [fcol[name][foff[i] : foff[i + 1]] for i in range(I)]

    imp_vals, imp_off, imp_row = dedupe_rows(rows("importance"))
    fp_vals, fp_off, fp_row = dedupe_rows(rows("feature_probability"))
    weights = _ragged_weights(res.params, *shapes) | {"curve_loss": res.curves["loss"]}
    weights |= {f"stack_{k}": stack[k] for k in ("weight", "bottom") if k in stack}
    metrics = {
        "norm": fcol["norm"],
        "dim": fcol["dimensionality"],
        "interf": fcol["interference"],
        "fit_error": np.asarray(fcol["fit_error"], np.float64),
        "leak": np.asarray(fcol["leak"], np.float64),
        "imp_vals": imp_vals,
        "fp_vals": fp_vals,
    }
    weight_code, metric_code = _precision(weights, metrics)
    out = {k: array(v, weight_code) for k, v in weights.items()}
    out |= {k: array(v, metric_code) for k, v in metrics.items()}
    out |= {"imp_off": array(imp_off, "u4"), "imp_row": ints(imp_row)}
    out |= {"fp_off": array(fp_off, "u4"), "fp_row": ints(fp_row)}
    return out, {"weights": weight_code, "metrics": metric_code}


def _labels(col: dict, fcol: dict) -> dict:
    """Polytope labels (the registry's, then any others) and geometry summaries, coded."""
    polytope = [str(p) for p in fcol["polytope"]]
    poly_labels = list(LABELS) + sorted(set(polytope) - set(LABELS))
    lookup = {p: i for i, p in enumerate(poly_labels)}
    poly_code = np.fromiter((lookup[p] for p in polytope), np.int64, len(polytope))
    geometries, geo_code = codes([str(g) for g in col["geometry"]])
    counts = np.bincount(geo_code, minlength=len(geometries))
    return {
        "polytopes": poly_labels,
        "polytope_code": poly_code,
        "geometries": geometries,
        "geometry_code": geo_code,
        "geometry_colors": _geometry_colors(geometries, counts),
    }


def _kinds(res: results.Results, col: dict) -> tuple[list[str], np.ndarray]:
    """Each instance's model kind (a grid axis, or the sweep's one kind), coded."""
    if "model.kind" in col:
        return codes([str(k) for k in col["model.kind"]])
    return codes([str(res.meta["spec"]["model"]["kind"])] * len(col["instance"]))


def _int_arrays(res, col, fcol, foff, axis_index, labels, kind_code) -> dict:
    """Per-instance and per-feature integer arrays, offsets and flags."""
    n_col, m_col = res.params["n_features"], res.params["n_hidden"]
    woff = np.concatenate([[0], np.cumsum(m_col * n_col)]).astype(np.int64)
    return {
        "seed": ints(col["seed"]),
        "point": ints(col["point"]),
        "axis_index": ints(axis_index),
        "loss": array(col["loss"], "f4"),
        "dpf": array(col["dims_per_feature"], "f4"),
        "n_rep": array(col["n_represented"], "u2"),
        "geometry": ints(labels["geometry_code"]),
        "best": array(np.asarray(col["best"], bool), "u1"),
        "diverged": array(np.asarray(col["diverged"], bool), "u1"),
        "kind": array(kind_code, "u1"),
        "n": ints(n_col),
        "m": ints(m_col),
        "foff": array(foff, "u4"),
        "woff": array(woff, "u4"),
        "lr": array(res.params["lr"], "f4"),
        "wd": array(res.params["weight_decay"], "f4"),
        "factor": ints(fcol["factor"], signed=True),
        "factor_size": ints(fcol["factor_size"]),
        "factor_dim": ints(fcol["factor_dim"]),
        "polytope": array(labels["polytope_code"], "u1"),
    }


def _kind_flags(kinds: list[str]) -> dict:
    return {
        k: {
            "privileged_hidden": models.MODELS[k].privileged_hidden,
            "untied": models.MODELS[k].untied,
        }
        for k in kinds
        if k in models.MODELS
    }


def _constants() -> dict:
    """Thresholds the page shares with geomtoy.geometry (stack-plot neuron counts) and the
    vocabulary's D = d/k, the reference lines of the D_i plot, largest first."""
    lines = sorted(vocabulary.reference_lines().items(), reverse=True)
    fraction = [vocabulary.POLYTOPES[names[0]].fraction for _, names in lines]
    return {
        "reference_lines": [[d, "1" if f == "1/1" else f] for (d, _), f in zip(lines, fraction)],
        "feature_threshold": float(neurons.FEATURE_THRESHOLD),
        "dead_neuron": float(neurons.DEAD_NEURON),
        "represented_norm": float(polytopes.REPRESENTED_NORM),
        "link_cos": float(polytopes.LINK_COS),
    }


def _header(res: results.Results, I: int, n_points: int) -> dict:
    """What the page shows about the sweep itself (meta.json)."""
    meta, spec = res.meta, res.meta["spec"]
    varied = spec.get("data", {}).get("varied_feature")
    return {
        "name": str(meta["name"]),
        "path": str(res.path),
        "description": str(spec.get("description", "")),
        "scale": meta.get("scale"),
        "command": meta.get("command"),
        "updated": meta.get("updated"),
        "wall_time_s": finite_json(meta.get("wall_time_s", float("nan")) or 0.0),
        "spec": jsonable(spec),
        "n_instances": I,
        "n_points": n_points,
        "varied_feature": varied if isinstance(varied, int) else None,
    }


def sweep_payload(path: str | Path) -> dict:
    """Everything the page needs about one complete results directory (SweepError if not one)."""
    res = results.open_results(path)
    col = _instances(res)
    I = len(col["instance"])
    n_col = np.asarray(res.params["n_features"], np.int64)
    m_col = np.asarray(res.params["n_hidden"], np.int64)
    axes, axis_index = _axes(res, col)
    fcol, foff = _features(res, n_col)
    kinds, kind_code = _kinds(res, col)
    labels = _labels(col, fcol)
    stack = _stacks(res, kinds, kind_code, fcol, foff)
    floats, precision = _float_arrays(res, fcol, foff, (n_col, m_col), stack)
    steps, steps_ids = _curve_steps(np.asarray(res.curves["step"], np.int64))
    arrays = _int_arrays(res, col, fcol, foff, axis_index, labels, kind_code)
    arrays |= floats | {"curve_row": ints(steps_ids)}
    arrays |= {f"stack_{k}": ints(stack[k]) for k in ("order", "count", "feature", "rank") if stack}
    arrays |= {"moff": array(stack["moff"], "u4")} if stack else {}
    return _header(res, I, int(np.max(col["point"])) + 1) | {
        "axes": axes,
        "kinds": kinds,
        "kind_flags": _kind_flags(kinds),
        "polytopes": labels["polytopes"],
        "polytope_colors": [POLYTOPE_COLORS.get(p, "#8c8c8c") for p in labels["polytopes"]],
        "polytope_short": [style.POLYTOPE_SHORT.get(p, p) for p in labels["polytopes"]],
        "geometries": labels["geometries"],
        "geometry_colors": labels["geometry_colors"],
        "curve_steps": steps,
        "precision": precision,
        "constants": _constants(),
        "arrays": arrays,
    }
