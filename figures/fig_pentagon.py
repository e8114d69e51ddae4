"""The uniform pentagon (paper §5.2 baseline; docs/paper.md check C9): n=5, m=2, importance 1, 1-S = 0.05.

Sweep pentagon: every seed's W drawn in the plane with its geometry label. The paper
(and the notebook recipe's calibration in docs/paper.md) finds a regular pentagon in most
seeds: 72-degree gaps, equal norms ~1.13 > 1, negative biases ~ -0.25, D_i = 2/5.
"""

import matplotlib.pyplot as plt
import numpy as np

from geomtoy.viz import plot

SWEEPS = ["pentagon"]
"""The sweeps this figure reads (the Makefile's rules come from this list)."""
FIGURE = "fig_pentagon"  # the first image it writes: its Make target


def main():
    args = plot.figure_args(__doc__)
    res = plot.load(args.results, SWEEPS[0])
    W, b = res.params["W"], res.params["b"]
    geometry = res.column("geometry")
    loss = res.column("loss")
    dim = plot.per_feature(res, "dimensionality")
    order = np.argsort(loss)
    cols = min(len(order), 8)
    rows = int(np.ceil(len(order) / cols))
    fig, axes = plt.subplots(
        rows, cols, figsize=(1.6 * cols, 1.9 * rows), layout="constrained", squeeze=False
    )
    colors = plt.cm.tab10(np.arange(W.shape[2]))
    for ax, i in zip(axes.ravel(), order):
        plot.draw_features_2d(ax, W[i], colors)
        ax.set_title(f"{geometry[i]}\nloss {loss[i]:.3g}", fontsize=6)
    for ax in axes.ravel()[len(order) :]:
        ax.axis("off")
    pent = geometry == "pentagon"
    if pent.any():
        d = dim[pent]
        norms = np.linalg.norm(W[pent], axis=1)
        numbers = (
            f"pentagon in {pent.sum()} of {len(pent)} seeds at 1-S = 0.05, D_i = "
            f"{d.mean():.3f} +- {d.std():.3f}, ||W_i|| = {norms.mean():.3f} +- {norms.std():.3f}, "
            f"b_i = {b[pent].mean():.3f} +- {b[pent].std():.3f}; best seed: {geometry[order[0]]}"
        )
    else:
        numbers = f"no pentagon in {len(pent)} seeds; best seed: {geometry[order[0]]}"
    fig.suptitle(
        "n=5, m=2, uniform importance, 1-S = 0.05: every seed, lowest loss first", fontsize=8
    )
    plot.save(
        fig,
        args.out,
        "fig_pentagon",
        title="The uniform pentagon",
        section="§5.2, check C9",
        caption="Every seed of the pentagon sweep, sorted by loss; labels from the geometry module.",
        numbers=numbers,
        sweeps=SWEEPS,
    )


if __name__ == "__main__":
    main()
