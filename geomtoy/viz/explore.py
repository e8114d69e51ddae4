"""The explorer: one self-contained HTML page to browse every trained model of sweeps.

    geomtoy explore DIR [DIR ...] [--out FILE]

After a sweep a researcher wants to move through the grid and see what each model
learned, not only read static figures. `build_explorer` reads complete results
directories (`results.open_results`) and writes one HTML file that needs no server and no
network: plain JavaScript, inline SVG and canvas, the data embedded. The page has a
sweep picker, one control per grid axis and a seed picker (default: the grid point's
best seed), and for the selected model the views of the paper:

- the feature directions, the columns of W (paper §1): in the plane for m = 2, on a
  line for m = 1, and for m > 2 each tegum factor in its own subspace (its columns
  projected on their top 2 or 3 principal directions, 3-D ones rotatable by drag),
  coloured by importance and labelled by polytope (§5.1);
- W^T W and the bias as heatmaps, and the bars of ||W_i|| coloured by interference (§3.2);
- the features table (norm, D_i, interference, bias, factor, polytope, §3.2, §5.1);
- a phase map over two chosen axes (or an axis and the seed), each cell coloured by the
  best seed's geometry summary, or by the norm and interference of one feature as in
  the paper's phase diagram (§4); clicking a cell selects that model (arrow keys move);
  under it every feature's D_i and the model's D* along the map's x axis (§5.1);
- for ReLU-hidden and abs models, the per-neuron stack plot (§8, §9; abs weights
  rescaled as in footnote 15).

Data are embedded compactly: each table column is one little-endian typed array in
base64 (float32; weights drop to float16 only for sweeps whose float32 payload exceeds
`F32_BUDGET`), strings are de-duplicated into code tables, rows of importance and
feature probability are stored once per distinct row, and models of different shapes
are stored ragged (no padding). A sweep of 10,000 models with n = 20, m = 5 makes a page
of 11.5 MB (float32); with m = 20 16 MB (float16 weights). The page decodes a sweep when
it is first picked; a redraw touches one model only, and tables of more than 120
features render only the rows in view.

Test hooks: the page reads `location.hash` (``#sweep=0&data.feature_probability=3&seed=1``,
axis values by index; also ``instance=``, ``x=``, ``y=``, ``color=``) and writes its
state as JSON into ``<pre id="state">`` and caught errors into ``<pre id="errors">``;
``window.explorer`` exposes ``select``, ``state`` and ``bench``.
"""

from __future__ import annotations

import argparse
import base64
import html
import json
import math
import re
import sys
from collections.abc import Sequence
from importlib import resources
from pathlib import Path

import numpy as np

from geomtoy import models, results
from geomtoy.geometry import neurons, polytopes, vocabulary
from geomtoy.spec import SweepError
from geomtoy.viz import style

DEFAULT_OUT = "explorer.html"

F32_BUDGET = 8_000_000
"""Bytes of float32 arrays above which a sweep's weights (W, W2, b, curves) are float16."""

F16_METRICS_BUDGET = 16_000_000
"""Bytes of arrays (weights already float16) above which the per-feature metrics are float16."""

LABELS = (*vocabulary.POLYTOPES, vocabulary.OTHER, vocabulary.NOT_REPRESENTED)
"""Every polytope label, in the order the page lists it (the vocabulary registry's)."""

POLYTOPE_COLORS = style.POLYTOPE_COLORS

PALETTE = (
    "#ff7f0e",
    "#8c564b",
    "#bcbd22",
    "#393b79",
    "#637939",
    "#8c6d31",
    "#843c39",
    "#7b4173",
    "#3182bd",
    "#e6550d",
    "#31a354",
    "#756bb1",
    "#fd8d3c",
    "#74c476",
    "#9e9ac8",
    "#e7969c",
    "#6baed6",
    "#c49c94",
    "#dbdb8d",
    "#9edae5",
)
"""Colours for geometry summaries that are not a single polytope label."""

ASSET_NAMES = ("explorer.html", "explorer.css", "explorer.js")


# ---------------------------------------------------------------- encoding

_CODES = {"f4": "<f4", "f2": "<f2", "u1": "|u1", "u2": "<u2", "i2": "<i2", "i4": "<i4", "u4": "<u4"}


def _array(values, code: str) -> dict:
    """One typed array as {"dtype", "b64", "size"} (little-endian, what JS typed arrays read)."""
    a = np.ascontiguousarray(np.asarray(values).astype(np.dtype(_CODES[code]), copy=False)).reshape(
        -1
    )
    return {
        "dtype": code,
        "size": int(a.size),
        "b64": base64.b64encode(a.tobytes()).decode("ascii"),
    }


def _int_code(values: np.ndarray, signed: bool = False) -> str:
    """Smallest typed-array code that holds every value."""
    lo = int(values.min()) if values.size else 0
    hi = int(values.max()) if values.size else 0
    if signed or lo < 0:
        return "i2" if -(2**15) <= lo and hi < 2**15 else "i4"
    return "u1" if hi < 2**8 else "u2" if hi < 2**16 else "u4"


def _codes(strings: Sequence[str]) -> tuple[list[str], np.ndarray]:
    """De-duplicate strings: (table in order of first appearance, code per string)."""
    table: dict[str, int] = {}
    codes = np.fromiter(
        (table.setdefault(str(s), len(table)) for s in strings), np.int64, len(strings)
    )
    return list(table), codes


def _dedupe_rows(rows: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Ragged float rows -> (values of the distinct rows concatenated, their offsets, row id per input)."""
    table: dict[bytes, int] = {}
    distinct: list[np.ndarray] = []
    ids = np.empty(len(rows), np.int64)
    for i, r in enumerate(rows):
        r = np.asarray(r, np.float32)
        k = table.get(r.tobytes() + str(r.size).encode())
        if k is None:
            k = table[r.tobytes() + str(r.size).encode()] = len(distinct)
            distinct.append(r)
        ids[i] = k
    offsets = np.concatenate([[0], np.cumsum([r.size for r in distinct])]).astype(np.int64)
    values = np.concatenate(distinct) if distinct else np.zeros(0, np.float32)
    return values, offsets, ids


def _finite_json(x):
    """A float for JSON: NaN and inf become None (JSON has no NaN)."""
    x = float(x)
    return x if math.isfinite(x) else None


def _jsonable(obj):
    """meta.json content made strictly JSON (no NaN) for embedding."""
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, float):
        return _finite_json(obj)
    if isinstance(obj, (str, int, bool)) or obj is None:
        return obj
    if isinstance(obj, np.generic):
        return _jsonable(obj.item())
    return str(obj)


# ---------------------------------------------------------------- one sweep


def _axis_column(res: results.Results, key: str) -> np.ndarray:
    if key not in res.instances.column_names:
        raise SweepError(
            res.path / "instances.parquet", key, "grid axis named in meta.json has no column"
        )
    return res.column(key)


def _axis(key: str, column: np.ndarray) -> tuple[dict, np.ndarray]:
    """An axis description for the page and the value index of each instance.

    Numeric axes are ordered ascending (sliders and the phase map grow to the right and
    upwards); other axes keep the order of first appearance (the sweep file's order).
    """
    numeric = column.dtype.kind in "iuf"
    if numeric:
        values, index = np.unique(column, return_inverse=True)
        positive = values.size > 1 and bool(np.all(values > 0))
        log = (
            positive
            and values.size > 2
            and np.allclose(np.diff(np.log(values)), np.diff(np.log(values))[0], rtol=1e-3)
        )
        labels = [f"{v:.4g}" for v in values.tolist()]
        shown = [_finite_json(v) for v in values.tolist()]
    else:
        labels, index = _codes([str(v) for v in column])
        shown, log = labels, False
    return {
        "key": key,
        "labels": labels,
        "values": shown,
        "numeric": bool(numeric),
        "log": bool(log),
    }, index


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


def sweep_payload(path: str | Path) -> dict:
    """Everything the page needs about one complete results directory (SweepError if not one)."""
    res = results.open_results(path)
    meta = res.meta
    spec = meta.get("spec", {})
    ins = res.instances
    I = ins.num_rows
    if I == 0:
        raise SweepError(res.path / "instances.parquet", None, "no instances")

    order = np.argsort(res.column("instance"), kind="stable")
    if not np.array_equal(res.column("instance")[order], np.arange(I)):
        raise SweepError(
            res.path / "instances.parquet", "instance", "instance ids are not 0 .. I-1"
        )
    col = {name: res.column(name)[order] for name in ins.column_names}

    # grid axes (meta["axes"]: {key: values} or a list of keys)
    axes_meta = meta.get("axes") or {}
    keys = list(axes_meta) if isinstance(axes_meta, (dict, list)) else []
    axes, axis_index = [], []
    for key in keys:
        a, idx = _axis(key, _axis_column(res, key)[order])
        axes.append(a)
        axis_index.append(idx)
    axis_index = np.stack(axis_index, axis=1) if axis_index else np.zeros((I, 0), np.int64)

    # per-instance shapes and ragged weights
    W = res.params["W"]
    n_col = np.asarray(res.params.get("n_features", np.full(I, W.shape[2])), np.int64)
    m_col = np.asarray(res.params.get("n_hidden", np.full(I, W.shape[1])), np.int64)
    model = spec.get("model", {})
    if "model.kind" in col:
        kinds = [str(k) for k in col["model.kind"]]
    else:
        kinds = [str(model.get("kind", "relu_output"))] * I
    kind_labels, kind_code = _codes(kinds)

    feats = res.features
    f_inst = res.column("instance", "features")
    f_feat = res.column("feature", "features")
    f_order = np.lexsort((f_feat, f_inst))
    f_inst, f_feat = f_inst[f_order], f_feat[f_order]
    foff = np.concatenate([[0], np.cumsum(n_col)]).astype(np.int64)
    if len(f_inst) != foff[-1] or not np.array_equal(f_feat, np.arange(foff[-1]) - foff[f_inst]):
        raise SweepError(
            res.path / "features.parquet", None, "rows do not match n_features of each instance"
        )
    fcol = {name: res.column(name, "features")[f_order] for name in feats.column_names}

    W_flat = (
        np.concatenate([W[i, : m_col[i], : n_col[i]].reshape(-1) for i in range(I)])
        if I
        else np.zeros(0)
    )
    woff = np.concatenate([[0], np.cumsum(m_col * n_col)]).astype(np.int64)
    b_flat = (
        np.concatenate([res.params["b"][i, : n_col[i]] for i in range(I)]) if I else np.zeros(0)
    )
    W2_flat = None
    if "W2" in res.params:
        W2 = res.params["W2"]  # (I, n, m)
        W2_flat = np.concatenate([W2[i, : n_col[i], : m_col[i]].reshape(-1) for i in range(I)])

    polytopes = [str(p) for p in fcol["polytope"]]
    poly_labels = list(LABELS) + sorted(set(polytopes) - set(LABELS))
    lookup = {p: i for i, p in enumerate(poly_labels)}
    poly_code = np.fromiter((lookup[p] for p in polytopes), np.int64, len(polytopes))

    geometry = [str(g) for g in col["geometry"]]
    geometries, geo_code = _codes(geometry)
    geo_colors = _geometry_colors(geometries, np.bincount(geo_code, minlength=len(geometries)))

    def rows(name):
        return [fcol[name][foff[i] : foff[i + 1]] for i in range(I)]

    imp_vals, imp_off, imp_row = _dedupe_rows(rows("importance"))
    fp_vals, fp_off, fp_row = _dedupe_rows(rows("feature_probability"))

    curve_loss = np.asarray(res.curves.get("loss", np.zeros((I, 0))), np.float32)
    curve_step = np.asarray(res.curves.get("step", np.zeros((I, 0))), np.int64)
    if curve_loss.shape[0] != I:
        curve_loss, curve_step = np.zeros((I, 0), np.float32), np.zeros((I, 0), np.int64)
    steps_distinct, steps_ids = [], np.zeros(I, np.int64)
    seen: dict[bytes, int] = {}
    for i in range(I):
        key = curve_step[i].tobytes()
        if key not in seen:
            seen[key] = len(steps_distinct)
            steps_distinct.append([int(s) for s in curve_step[i]])
        steps_ids[i] = seen[key]

    point = np.asarray(col["point"], np.int64)
    best = (
        np.asarray(col["best"], bool)
        if "best" in col
        else results.best_of_point(np.asarray(col["loss"], float), point)
    )
    loss = np.asarray(col["loss"], np.float64)

    def floats(names_values: dict, code: str) -> dict:
        return {k: _array(v, code) for k, v in names_values.items()}

    weights = {"W": W_flat, "b": b_flat, "curve_loss": curve_loss}
    if W2_flat is not None:
        weights["W2"] = W2_flat
    metrics = {
        "norm": fcol["norm"],
        "dim": fcol["dimensionality"],
        "interf": fcol["interference"],
        "imp_vals": imp_vals,
        "fp_vals": fp_vals,
    }
    f32_bytes = 4 * sum(np.size(v) for v in (*weights.values(), *metrics.values()))
    weight_code = "f4" if f32_bytes <= F32_BUDGET else "f2"
    f16_bytes = 2 * sum(np.size(v) for v in weights.values()) + 4 * sum(
        np.size(v) for v in metrics.values()
    )
    metric_code = "f4" if weight_code == "f4" or f16_bytes <= F16_METRICS_BUDGET else "f2"

    arrays = floats(weights, weight_code) | floats(metrics, metric_code)
    arrays |= {
        "seed": _array(col["seed"], _int_code(np.asarray(col["seed"]))),
        "point": _array(point, _int_code(point)),
        "axis_index": _array(axis_index, _int_code(axis_index)),
        "loss": _array(loss, "f4"),
        "dpf": _array(col.get("dims_per_feature", np.full(I, np.nan)), "f4"),
        "n_rep": _array(col.get("n_represented", np.zeros(I)), "u2"),
        "geometry": _array(geo_code, _int_code(geo_code)),
        "best": _array(best, "u1"),
        "diverged": _array(np.asarray(col.get("diverged", np.zeros(I)), bool), "u1"),
        "kind": _array(kind_code, "u1"),
        "n": _array(n_col, _int_code(n_col)),
        "m": _array(m_col, _int_code(m_col)),
        "foff": _array(foff, "u4"),
        "woff": _array(woff, "u4"),
        "lr": _array(res.params.get("lr", np.full(I, np.nan)), "f4"),
        "wd": _array(res.params.get("weight_decay", np.full(I, np.nan)), "f4"),
        "factor": _array(fcol["factor"], _int_code(np.asarray(fcol["factor"]), signed=True)),
        "polytope": _array(poly_code, "u1"),
        "imp_off": _array(imp_off, "u4"),
        "imp_row": _array(imp_row, _int_code(imp_row)),
        "fp_off": _array(fp_off, "u4"),
        "fp_row": _array(fp_row, _int_code(fp_row)),
        "curve_row": _array(steps_ids, _int_code(steps_ids)),
    }

    data = spec.get("data", {}) if isinstance(spec, dict) else {}
    varied = data.get("varied_feature") if isinstance(data, dict) else None
    return {
        "name": str(meta.get("name", res.path.name)),
        "path": str(res.path),
        "description": str(spec.get("description", "") if isinstance(spec, dict) else ""),
        "scale": meta.get("scale"),
        "command": meta.get("command"),
        "updated": meta.get("updated"),
        "wall_time_s": _finite_json(meta.get("wall_time_s", float("nan")) or 0.0),
        "spec": _jsonable(spec),
        "n_instances": I,
        "n_points": int(point.max()) + 1 if I else 0,
        "axes": axes,
        "kinds": kind_labels,
        "kind_flags": {
            k: {
                "privileged_hidden": models.MODELS[k].privileged_hidden,
                "untied": models.MODELS[k].untied,
            }
            for k in kind_labels
            if k in models.MODELS
        },
        "polytopes": poly_labels,
        "polytope_colors": [POLYTOPE_COLORS.get(p, "#8c8c8c") for p in poly_labels],
        "polytope_short": [style.POLYTOPE_SHORT.get(p, p) for p in poly_labels],
        "geometries": geometries,
        "geometry_colors": geo_colors,
        "curve_steps": steps_distinct,
        "varied_feature": varied if isinstance(varied, int) else None,
        "precision": {"weights": weight_code, "metrics": metric_code},
        "constants": _constants(),
        "arrays": arrays,
    }


def _constants() -> dict:
    """Thresholds the page shares with geomtoy.geometry (stack-plot neuron counts)."""
    return {
        "feature_threshold": float(neurons.FEATURE_THRESHOLD),
        "dead_neuron": float(neurons.DEAD_NEURON),
        "represented_norm": float(polytopes.REPRESENTED_NORM),
        "link_cos": float(polytopes.LINK_COS),
    }


# ---------------------------------------------------------------- the page


def _asset(name: str) -> str:
    return (resources.files("geomtoy.viz") / "assets" / name).read_text(encoding="utf-8")


def _script_json(obj) -> str:
    """JSON safe inside a <script> element."""
    text = json.dumps(obj, separators=(",", ":"), allow_nan=False)
    return text.replace("</", "<\\/").replace("<!--", "<\\!--")


def render(payloads: list[dict], title: str = "geomtoy explorer") -> str:
    """The HTML page for already loaded sweeps (`sweep_payload`)."""
    template, css, js = (_asset(n) for n in ASSET_NAMES)
    index = [
        {k: p[k] for k in ("name", "path", "n_instances", "description", "scale")} for p in payloads
    ]
    names = [p["name"] for p in payloads]
    for entry in index:  # the picker tells apart sweeps of one name by their directory
        entry["label"] = (
            entry["name"]
            if names.count(entry["name"]) == 1
            else f"{entry['name']} ({entry['path']})"
        )
    data = "\n".join(
        f'<script type="application/json" id="sweep-{i}">{_script_json(p)}</script>'
        for i, p in enumerate(payloads)
    )
    parts = {
        "{{TITLE}}": html.escape(title),
        "/*{{CSS}}*/": css,
        "{{INDEX}}": _script_json(index),
        "<!--{{DATA}}-->": data,
        "/*{{JS}}*/": js,
    }
    # one pass over the template only: nothing inserted is searched again
    return re.sub("|".join(re.escape(k) for k in parts), lambda m: parts[m.group(0)], template)


def _page(dirs: Sequence[str | Path]) -> str:
    """The explorer page for results directories (each once)."""
    if not dirs:
        raise SweepError("geomtoy explore", None, "no results directory given")
    payloads = []
    seen = set()
    for d in dirs:
        key = Path(d).resolve()
        if key in seen:
            continue
        seen.add(key)
        payloads.append(sweep_payload(d))
    return render(payloads, title="geomtoy explorer: " + ", ".join(p["name"] for p in payloads))


def show(dirs: str | Path | Sequence[str | Path], height: int = 760) -> None:
    """Display the explorer for `dirs` inline in a notebook: the same self-contained page
    as `geomtoy explore`, in an iframe (needs IPython)."""
    from IPython.display import HTML, display

    dirs = [dirs] if isinstance(dirs, str | Path) else list(dirs)
    page = html.escape(_page(dirs), quote=True)
    frame = f'<iframe srcdoc="{page}" style="width:100%;height:{height}px;border:0"></iframe>'
    display(HTML(f"<div>{frame}</div>"))  # a bare iframe makes IPython warn


def build_explorer(dirs: Sequence[str | Path], out: str | Path) -> Path:
    """Write the explorer page for the results directories `dirs` to `out`; returns `out`.

    Raises SweepError (the CLI's exit 2) for a directory that is not a complete results
    directory, or an output path that cannot be written.
    """
    out = Path(out)
    inside = out.parent.resolve()
    if results.ResultsDir(inside).meta.exists() or inside.name == "blocks":
        reason = "inside a results directory; write the page elsewhere, e.g. --out explorer.html"
        raise SweepError(out, None, reason)
    page = _page(dirs)
    if out.is_dir():
        raise SweepError(
            out, None, "is a directory; give the HTML file to write, e.g. --out explorer.html"
        )
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        results.atomic_write_bytes(out, page.encode("utf-8"))
    except OSError as e:
        raise SweepError(out, None, f"cannot write: {e.strerror or e}") from None
    return out


def add_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """The arguments of `geomtoy explore` (shared by the CLI and `python -m geomtoy.viz.explore`)."""
    parser.add_argument(
        "dirs", nargs="+", metavar="DIR", help="complete results directories (geomtoy run --out)"
    )
    parser.add_argument(
        "--out",
        default=DEFAULT_OUT,
        metavar="FILE",
        help=f"HTML file to write (default: {DEFAULT_OUT})",
    )
    return parser


def describe(out: Path) -> str:
    """One line about a written page."""
    return f"{out}: explorer page, {out.stat().st_size / 1e6:.1f} MB; open it in a browser"


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m geomtoy.viz.explore DIR [DIR ...] [--out FILE]`; 0, or 2 with one line for bad input."""

    class _Parser(argparse.ArgumentParser):
        def error(self, message: str):
            self.exit(2, f"{self.prog}: error: {message}\n")

    parser = add_arguments(_Parser(prog="geomtoy explore", description=__doc__.split("\n\n")[0]))
    args = parser.parse_args(argv)
    try:
        out = build_explorer(args.dirs, args.out)
    except SweepError as e:
        print(f"geomtoy explore: error: {e}", file=sys.stderr)
        return 2
    print(describe(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
