"""Figures 9 and 10 (paper §8, §9): superposition in a privileged basis.

Sweeps privileged_basis (ReLU hidden layer, n=10, m=5, importance 0.75**i; best of many
seeds per sparsity), abs_3x6 and abs_100x40 (abs model, target |x|). Each column of a
stack plot is a neuron; its input weights are rectangles coloured by feature (yellow =
most important), positive up, negative down; abs models are rescaled per neuron so the
largest input weight is 1 (footnote 15). Titles give the measured neuron counts:
monosemantic neurons read one feature, polysemantic ones two or more
(geomtoy.geometry.neurons: |W_hi| > 0.1 max_j |W_hj|).
"""

import matplotlib.pyplot as plt
import numpy as np

from geomtoy.geometry import neurons
from geomtoy.viz import plot

SWEEPS = ["privileged_basis", "abs_3x6", "abs_100x40"]
"""The sweeps this figure reads (the Makefile's rules come from this list)."""
FIGURE = "fig_privileged_basis"  # the first image it writes: its Make target
P = "data.feature_probability"


def stacks(res, title, max_cols=10):
    rows = plot.best_rows(res, [P])
    ps = sorted(rows, reverse=True)[:max_cols]
    W = res.params["W"]
    W2 = res.params.get("W2")
    importance = plot.per_feature(res, "importance")
    n = W.shape[2]
    fig, axes = plt.subplots(
        1, len(ps), figsize=(max(2.0 * len(ps), 6), 3.2), layout="constrained", squeeze=False
    )
    lines = []
    for ax, p in zip(axes[0], ps):
        i = rows[p]
        stacks = neurons.stacks(W[i], importance[i], None if W2 is None else W2[i])
        plot.stack_plot(ax, stacks)
        mono, poly = int(np.sum(stacks.count == 1)), int(np.sum(stacks.count >= 2))
        ax.set_title(f"1-S = {p[0]:.3g}\n{mono} mono, {poly} poly", fontsize=7)
        lines.append(f"1-S={p[0]:.3g}: {mono} mono/{poly} poly")
        if W2 is not None and n <= 10:
            pairs = neurons.sign_pairs(W[i], W2[i])
            ax.set_xlabel(f"+/- pairs: {int(pairs.sum())}/{n}", fontsize=7)
            lines[-1] += f", {int(pairs.sum())}/{n} features with +/- pair"
    fig.suptitle(title, fontsize=9)
    return fig, "; ".join(lines)


def main():
    args = plot.figure_args(__doc__)
    res = plot.load(args.results, SWEEPS[0])
    seeds = int(np.max(res.column("seed"))) + 1
    fig, numbers = stacks(
        res, f"ReLU hidden layer, n=10, m=5, importance 0.75^i (best of {seeds} seeds)"
    )
    plot.save(
        fig,
        args.out,
        "fig_privileged_basis",
        title="Superposition in a privileged basis",
        section="§8",
        caption="Neuron stack plots of the best seed per sparsity: monosemantic "
        "neurons when dense, polysemantic codes as sparsity grows.",
        numbers=numbers,
        sweeps=SWEEPS[:1],
    )
    for sweep, stem, title in (
        (SWEEPS[1], "fig_abs_3x6", "abs model, n=3, m=6 (rescaled W1)"),
        (SWEEPS[2], "fig_abs_100x40", "abs model, n=100, m=40, importance 0.8^i (rescaled W1)"),
    ):
        fig, numbers = stacks(plot.load(args.results, sweep), title)
        plot.save(
            fig,
            args.out,
            stem,
            title=f"Computation in superposition: {title}",
            section="§9",
            caption="Neuron stack plots of W1 (best seed per sparsity): each "
            "feature computed by a ReLU(x) and a ReLU(-x) neuron, polysemantic when sparse.",
            numbers=numbers,
            sweeps=[sweep],
        )


if __name__ == "__main__":
    main()
