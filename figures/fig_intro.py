"""Figure 1 (paper §1): five features in two dimensions, at rising sparsity.

Sweep intro_5x2: n=5, m=2, importance 0.9**i, 1-S = 20**-linspace(0, 1, 10). For each
sparsity the lowest-loss seed is drawn: the columns of W as vectors in the plane,
coloured by importance (yellow = most important). The paper's three panels (0%, 80% and
90% sparsity) show 2 dedicated features -> 2 antipodal pairs -> a pentagon.
"""

import matplotlib.pyplot as plt
import numpy as np

from geomtoy.viz import plot

SWEEPS = ["intro_5x2"]
"""The sweeps this figure reads (the Makefile's rules come from this list)."""
FIGURE = "fig_intro"  # the first image it writes: its Make target
AXIS = "data.feature_probability"


def main():
    args = plot.figure_args(__doc__)
    res = plot.load(args.results, SWEEPS[0])
    rows = plot.best_rows(res, [AXIS])
    ps = sorted(rows, reverse=True)
    W = res.params["W"]
    n = W.shape[2]
    colors = plt.cm.viridis(np.linspace(1.0, 0.15, n))
    geometry = res.column("geometry")

    fig = plt.figure(figsize=(10, 5.6), layout="constrained")
    top, bottom = fig.subfigures(2, 1, height_ratios=[2.6, 1])
    for ax, target in zip(top.subplots(1, 3), (1.0, 0.2, 0.1)):
        p = min(ps, key=lambda q: abs(np.log(q[0] / target)))
        plot.draw_features_2d(ax, W[rows[p]], colors)
        ax.set_title(f"{100 * (1 - p[0]):.0f}% sparsity (1-S = {p[0]:.3g})\n{geometry[rows[p]]}")
    sm = plt.cm.ScalarMappable(cmap="viridis", norm=plt.Normalize(0.15, 1.0))
    cb = top.colorbar(sm, ax=top.axes, shrink=0.6, ticks=[0.15, 1.0])
    cb.ax.set_yticklabels(["least", "most"])
    cb.set_label("importance (0.9^i)")
    for ax, p in zip(bottom.subplots(1, len(ps)), ps):
        plot.draw_features_2d(ax, W[rows[p]], colors)
        ax.set_title(f"{p[0]:.3g}\n{geometry[rows[p]]}", fontsize=6)
    bottom.suptitle("1 - S over the whole sweep (best seed each)", fontsize=8, y=0.08)

    summary = "; ".join(f"1-S={p[0]:.3g}: {geometry[rows[p]]}" for p in ps[::3])
    plot.save(
        fig,
        args.out,
        "fig_intro",
        title="Five features in two dimensions",
        section="§1 (introduction figure)",
        caption="Best seed per sparsity; columns of W in the hidden plane, coloured by "
        "importance. Dense: two dedicated features; sparser: antipodal pairs, then a pentagon.",
        numbers=summary,
        sweeps=SWEEPS,
    )


if __name__ == "__main__":
    main()
