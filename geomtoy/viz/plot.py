"""Matplotlib helpers shared by the figure scripts: style, saving, the paper's panels.

Plotting reads results only; nothing here imports the training engine, so figures
rebuild on a machine without accelerators. Importing this module changes no matplotlib
state: the figure scripts select Agg and the house style in `figure_args`, and the
notebook helpers (`model_figure`, `phase_map`) draw inside `plt.rc_context(RC)` and
return the figure. Every figure is written as PNG and PDF with
fixed metadata, so rebuilding from unchanged results gives identical files, plus a small
JSON caption that figures/index.py turns into the gallery page.
"""

from __future__ import annotations

import argparse
import contextlib
import json
from pathlib import Path

import matplotlib
import matplotlib.patches
import matplotlib.pyplot as plt
import numpy as np

from geomtoy.geometry import dimensionality, neurons, vocabulary
from geomtoy.results import store as results
from geomtoy.viz import style

# Colours of the polytope labels (the vocabulary registry), used by every figure.
POLYTOPE_COLORS = style.POLYTOPE_COLORS
# D = d / k of each uniform polytope (paper §5.1): the reference lines of the D_i figure.
POLYTOPE_DIMENSIONALITY = {p.name: p.dimensionality for p in vocabulary.POLYTOPES.values()}

RC = {
    "figure.dpi": 110,
    "savefig.dpi": 130,
    "font.size": 9,
    "axes.titlesize": 9,
    "axes.spines.top": False,
    "axes.spines.right": False,
}
"""The house style: applied globally by the figure scripts, in a context by the helpers."""


def figure_args(description: str) -> argparse.Namespace:
    """The command line every figure script takes: --results DIR --out DIR. A figure
    script is a program, so this is where it selects Agg and the house style."""
    matplotlib.use("Agg")
    plt.rcParams.update(RC)
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--results", default="results/default", help="folder of sweep results")
    parser.add_argument("--out", default="figures/out", help="folder for PNG, PDF and caption")
    return parser.parse_args()


def load(results_root: str | Path, sweep: str) -> results.Results:
    """One sweep's complete results directory."""
    return results.open_results(Path(results_root) / sweep)


def save(
    fig,
    out_dir: str | Path,
    stem: str,
    *,
    title: str,
    section: str,
    caption: str,
    numbers: str,
    sweeps: list[str],
) -> None:
    """Write stem.png, stem.pdf and stem.json (the gallery caption) into out_dir."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    fig.savefig(out / f"{stem}.png", metadata={"Software": None})
    fig.savefig(
        out / f"{stem}.pdf", metadata={"CreationDate": None, "Producer": None, "Creator": None}
    )
    plt.close(fig)
    meta = {
        "stem": stem,
        "title": title,
        "section": section,
        "caption": caption,
        "numbers": numbers,
        "sweeps": sweeps,
    }
    (out / f"{stem}.json").write_text(json.dumps(meta, indent=1) + "\n")


def best_rows(res: results.Results, axes: list[str]) -> dict[tuple, int]:
    """For each grid point (values of `axes`), the row index of its best (lowest loss) seed."""
    best = res.column("best").astype(bool)
    cols = [res.column(a) for a in axes]
    return {tuple(c[i] for c in cols): i for i in np.flatnonzero(best)}


def per_feature(res: results.Results, name: str) -> np.ndarray:
    """A features.parquet column reshaped to (I, n)."""
    inst = res.column("instance", "features")
    feat = res.column("feature", "features")
    values = res.column(name, "features")
    I, n = int(inst.max()) + 1, int(feat.max()) + 1
    out = np.empty((I, n), dtype=values.dtype)
    out[inst, feat] = values
    return out


def draw_features_2d(ax, W: np.ndarray, colors, labels=None, lim: float = 1.5) -> None:
    """The columns of a (2, n) W as arrows from the origin, the paper's intro panels."""
    for i in range(W.shape[1]):
        ax.plot([0, W[0, i]], [0, W[1, i]], color=colors[i], lw=2, solid_capstyle="round")
        ax.scatter(W[0, i], W[1, i], color=colors[i], s=18, zorder=3)
    ax.set_xlim(-lim, lim)
    ax.set_ylim(-lim, lim)
    ax.set_aspect("equal")
    ax.set_xticks([])
    ax.set_yticks([])
    for s in ax.spines.values():
        s.set_visible(False)
    ax.axhline(0, color="#eee", lw=0.5, zorder=0)
    ax.axvline(0, color="#eee", lw=0.5, zorder=0)


def gram_panel(ax, W: np.ndarray, b: np.ndarray | None = None):
    """W^T W (red +1 ... blue -1) with the bias as an extra column, as in the paper's §3.2;
    returns the image (for a colour bar)."""
    G = W.T @ W
    if b is not None:
        G = np.concatenate([G, np.full((G.shape[0], 1), np.nan), b[:, None]], axis=1)
    image = ax.imshow(G, cmap="RdBu_r", vmin=-1, vmax=1, interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])
    return image


def norm_bars(ax, W: np.ndarray, interference: np.ndarray) -> None:
    """Horizontal bars of ||W_i||, coloured by the feature's interference (0 dark .. 1 yellow)."""
    norms = np.linalg.norm(W, axis=0)
    colors = plt.cm.viridis(np.clip(interference, 0, 1))
    ax.barh(np.arange(len(norms)), norms, color=colors, height=0.8)
    ax.set_ylim(len(norms) - 0.5, -0.5)
    ax.set_xlim(0, max(1.2, float(norms.max()) * 1.05))
    ax.set_yticks([])
    ax.tick_params(labelsize=7)


def stack_colors(n: int) -> np.ndarray:
    """The stack plot's colour per importance rank: most important yellow, least dark."""
    return plt.cm.viridis(np.linspace(1.0, 0.05, n))


def stack_plot(ax, stacks: neurons.Stacks, colors=None) -> None:
    """Draw the paper's neuron stack plot (§8) from `geomtoy.geometry.neurons.stacks`: one
    column per neuron in its order, each weight a rectangle coloured by its feature's
    importance rank (`colors`, default `stack_colors`), positives up from 0, negatives down."""
    m, n = stacks.weight.shape
    colors = stack_colors(n) if colors is None else colors
    for x, h in enumerate(stacks.order):
        for i, w, bottom in zip(stacks.feature[h], stacks.weight[h], stacks.bottom[h]):
            if abs(w) >= neurons.DEAD_NEURON:
                color = colors[stacks.rank[i]]
                ax.bar(x, w, bottom=bottom, color=color, width=0.85, edgecolor="white", lw=0.3)
    ax.axhline(0, color="k", lw=0.5)
    ax.set_xticks([])
    ax.set_xlim(-0.6, m - 0.4)


# ---------------------------------------------------------------- notebook helpers


@contextlib.contextmanager
def _house_style():
    """RC for the figures made inside. A notebook's inline backend switches interactive
    mode on when its first figure is made; that change outlives the context (as a backend
    change does), or later figures would not show."""
    with plt.rc_context(RC):
        try:
            yield
        finally:
            interactive = matplotlib.is_interactive()
    matplotlib.interactive(interactive)


def model_figure(W: np.ndarray, b: np.ndarray | None = None, title: str | None = None):
    """One model at a glance (paper §3.2): W^T W with the bias and a colour bar, the
    feature norms coloured by interference, and for m = 2 the features in the plane.
    W is (m, n) as in the tables' params.npz; returns the figure."""
    W = np.asarray(W, dtype=np.float32)
    m, n = W.shape
    interference = np.asarray(dimensionality.interference(W))
    with _house_style():
        panels = 3 if m == 2 else 2
        fig, axes = plt.subplots(1, panels, figsize=(3.2 * panels, 3.0), layout="constrained")
        image = gram_panel(axes[0], W, b)
        axes[0].set_title("W^T W" + (" | b" if b is not None else ""))
        fig.colorbar(image, ax=axes[0], shrink=0.8)
        norm_bars(axes[1], W, interference)
        axes[1].set_title("||W_i||, colour: interference")
        scale = plt.cm.ScalarMappable(cmap="viridis", norm=plt.Normalize(0, 1))
        fig.colorbar(scale, ax=axes[1], shrink=0.8)
        if m == 2:
            colors = plt.cm.viridis(np.linspace(1.0, 0.15, n))
            lim = max(1.2, float(np.linalg.norm(W, axis=0).max()) * 1.1)
            draw_features_2d(axes[2], W, colors, lim=lim)
            axes[2].set_title("columns of W")
        if title:
            fig.suptitle(title)
    return fig


def _phase_colors(norm: np.ndarray, interference: np.ndarray) -> np.ndarray:
    """The paper's §4 colouring of one feature: hue from blue (no interference) to red
    (>= 1), saturation by its norm (0 grey, >= 1 full colour)."""
    blue, red, grey = (
        np.array(matplotlib.colors.to_rgb(c)) for c in ("#2255bb", "#dd4444", "#dddddd")
    )
    t = np.clip(interference, 0, 1)[..., None]
    s = np.clip(norm, 0, 1)[..., None]
    return grey + s * ((1 - t) * blue + t * red - grey)


PHASES = (
    ("not represented (norm 0)", 0.0, 0.0),
    ("its own dimension (interference 0)", 1.0, 0.0),
    ("in superposition (interference >= 1)", 1.0, 1.0),
)
"""The phase map's legend: (label, norm, interference) of the colours at the corners."""


def phase_map(results, x: str, y: str, feature: int = -1, title: str | None = None):
    """A phase diagram over grid axes x and y of a results directory (`geomtoy.open`
    or `results.open_results`): each cell is the lowest-loss seed, coloured by one
    feature's norm and interference as in the paper's §4 (the extra feature: the last,
    by default), with a legend of the three corner colours. Returns the figure."""
    res = getattr(results, "arrow", results)
    rows = best_rows(res, [x, y])
    norm, interference = per_feature(res, "norm"), per_feature(res, "interference")
    n = norm.shape[1]
    feature %= n  # -1: the last, named by its index
    xs, ys = sorted({k[0] for k in rows}), sorted({k[1] for k in rows})
    grid = np.ones((len(ys), len(xs), 3))
    for (vx, vy), i in rows.items():
        grid[ys.index(vy), xs.index(vx)] = _phase_colors(norm[i, feature], interference[i, feature])
    with _house_style():
        fig, ax = plt.subplots(figsize=(4.2, 3.6), layout="constrained")
        log = [min(v) > 0 and max(v) / min(v) > 20 for v in (xs, ys)]
        ax.pcolormesh(_edges(xs, log[0]), _edges(ys, log[1]), grid)
        ax.set_xscale("log" if log[0] else "linear")
        ax.set_yscale("log" if log[1] else "linear")
        ax.set_xlabel(x)
        ax.set_ylabel(y)
        which = f"feature {feature}" + (f" (the last of {n})" if feature == n - 1 else f" of {n}")
        ax.set_title(title or f"{res.meta['name']}: {which}, best seed per cell")
        handles = [
            matplotlib.patches.Patch(color=_phase_colors(np.float64(a), np.float64(b)), label=t)
            for t, a, b in PHASES
        ]
        fig.legend(
            handles=handles, loc="outside lower center", fontsize="small", frameon=False,
            title="colour: saturation = norm, hue = interference", title_fontsize="small",
        )  # fmt: skip
    return fig


def _edges(values, log: bool) -> np.ndarray:
    """Cell edges around sorted grid values, midway in log or linear space."""
    v = np.log10(values) if log else np.asarray(values, dtype=float)
    mid = (v[1:] + v[:-1]) / 2
    step = (v[-1] - v[0]) / max(len(v) - 1, 1) or 1.0
    e = np.concatenate([[v[0] - step / 2], mid, [v[-1] + step / 2]])
    return 10**e if log else e
