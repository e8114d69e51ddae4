"""Matplotlib helpers shared by the figure scripts: style, saving, the paper's panels.

Plotting reads results only; nothing here imports the training engine, so figures
rebuild on a machine without accelerators. Every figure is written as PNG and PDF with
fixed metadata, so rebuilding from unchanged results gives identical files, plus a small
JSON caption that figures/index.py turns into the gallery page.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from geomtoy import store, style  # noqa: E402

# Colours of the polytope labels (docs/design.md vocabulary), used by every figure.
POLYTOPE_COLORS = style.POLYTOPE_COLORS
# D = d / k of each uniform polytope (paper §5.1): the reference lines of the D_i figure.
POLYTOPE_DIMENSIONALITY = {
    "tetrahedron": 3 / 4,
    "triangle": 2 / 3,
    "digon": 1 / 2,
    "pentagon": 2 / 5,
    "square_antiprism": 3 / 8,
}

plt.rcParams.update(
    {
        "figure.dpi": 110,
        "savefig.dpi": 130,
        "font.size": 9,
        "axes.titlesize": 9,
        "axes.spines.top": False,
        "axes.spines.right": False,
    }
)


def figure_args(description: str) -> argparse.Namespace:
    """The command line every figure script takes: --results DIR --out DIR."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--results", default="results/default", help="folder of sweep results")
    parser.add_argument("--out", default="figures/out", help="folder for PNG, PDF and caption")
    return parser.parse_args()


def load(results_root: str | Path, sweep: str) -> store.Results:
    """One sweep's complete results directory."""
    return store.open_results(Path(results_root) / sweep)


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


def best_rows(res: store.Results, axes: list[str]) -> dict[tuple, int]:
    """For each grid point (values of `axes`), the row index of its best (lowest loss) seed."""
    best = res.column("best").astype(bool)
    cols = [res.column(a) for a in axes]
    return {tuple(c[i] for c in cols): i for i in np.flatnonzero(best)}


def per_feature(res: store.Results, name: str) -> np.ndarray:
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


def gram_panel(ax, W: np.ndarray, b: np.ndarray | None = None) -> None:
    """W^T W (red +1 ... blue -1) with the bias as an extra column, as in the paper's §3.2."""
    G = W.T @ W
    if b is not None:
        G = np.concatenate([G, np.full((G.shape[0], 1), np.nan), b[:, None]], axis=1)
    ax.imshow(G, cmap="RdBu_r", vmin=-1, vmax=1, interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])


def norm_bars(ax, W: np.ndarray, interference: np.ndarray) -> None:
    """Horizontal bars of ||W_i||, coloured by the feature's interference (0 dark .. 1 yellow)."""
    norms = np.linalg.norm(W, axis=0)
    colors = plt.cm.viridis(np.clip(interference, 0, 1))
    ax.barh(np.arange(len(norms)), norms, color=colors, height=0.8)
    ax.set_ylim(len(norms) - 0.5, -0.5)
    ax.set_xlim(0, max(1.2, float(norms.max()) * 1.05))
    ax.set_yticks([])
    ax.tick_params(labelsize=7)


def stack_plot(ax, W: np.ndarray, colors, order=None) -> None:
    """The paper's neuron stack plot (§8): one column per neuron (row of W, (m, n)); each
    weight a rectangle coloured by its feature, positive weights stacked up from 0 and
    negative ones down, largest first."""
    m = W.shape[0]
    order = np.arange(m) if order is None else order
    for x, h in enumerate(order):
        row = W[h]
        up = down = 0.0
        for i in np.argsort(-np.abs(row), kind="stable"):
            w = row[i]
            if abs(w) < 1e-3:
                continue
            if w > 0:
                ax.bar(x, w, bottom=up, color=colors[i], width=0.85, edgecolor="white", lw=0.3)
                up += w
            else:
                ax.bar(x, w, bottom=down, color=colors[i], width=0.85, edgecolor="white", lw=0.3)
                down += w
    ax.axhline(0, color="k", lw=0.5)
    ax.set_xticks([])
    ax.set_xlim(-0.6, m - 0.4)


def neuron_order(W: np.ndarray, importance: np.ndarray) -> np.ndarray:
    """Neurons sorted by the importance of their largest feature (the paper's ordering)."""
    top = np.argmax(np.abs(W), axis=1)
    return np.argsort(-importance[top], kind="stable")
