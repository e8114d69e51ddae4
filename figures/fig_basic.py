"""Figure 2 (paper §3.2): linear vs ReLU output models across sparsity.

Sweeps basic_20x5 (n=20, m=5, importance 0.7**i) and basic_80x20 (n=80, m=20, importance
0.9**i), each with model.kind in {linear, relu_output} at 1-S in {1, 0.3, 0.1, 0.03,
0.01, 0.003, 0.001}. Each panel shows W^T W with the bias b as the last column (red +1,
blue -1) above the bars of ||W_i|| coloured by interference sum_{j!=i} (W^_i . W_j)^2
(dark 0, yellow >= 1). The linear model keeps the top m features at every sparsity;
the ReLU model puts more and more features in superposition, first as antipodal pairs.
"""

import matplotlib.pyplot as plt

from geomtoy.viz import plot

SWEEPS = ["basic_20x5", "basic_80x20"]
"""The sweeps this figure reads (the Makefile's rules come from this list)."""
FIGURE = "fig_basic_20x5"  # the first image it writes: its Make target
AXIS = "data.feature_probability"


def panels(res, title):
    rows = plot.best_rows(res, ["model.kind", AXIS])
    ps = sorted({p for _, p in rows}, reverse=True)
    interference = plot.per_feature(res, "interference")
    W, b = res.params["W"], res.params["b"]
    n_rep = res.column("n_represented")
    cols = [("linear", ps[-1])] + [("relu_output", p) for p in ps]
    fig, axes = plt.subplots(
        2, len(cols), figsize=(1.45 * len(cols), 4.4), height_ratios=[1, 1], layout="constrained"
    )
    for j, key in enumerate(cols):
        i = rows[key]
        plot.gram_panel(axes[0, j], W[i], b[i])
        kind = "Linear" if key[0] == "linear" else "ReLU"
        axes[0, j].set_title(f"{kind}\n1-S = {key[1]:.3g}")
        plot.norm_bars(axes[1, j], W[i], interference[i])
        axes[1, j].set_xlabel(f"||W_i||  ({n_rep[i]} repr.)", fontsize=7)
    fig.suptitle(title)
    return fig, {
        key: (int(n_rep[rows[key]]), str(res.column("geometry")[rows[key]])) for key in cols
    }


def main():
    args = plot.figure_args(__doc__)
    numbers = []
    for sweep, stem, title in (
        (SWEEPS[0], "fig_basic_20x5", "n=20 features in m=5 dimensions, importance 0.7^i"),
        (SWEEPS[1], "fig_basic_80x20", "n=80 features in m=20 dimensions, importance 0.9^i"),
    ):
        res = plot.load(args.results, sweep)
        fig, counts = panels(res, title)
        line = "; ".join(f"{k[0]} 1-S={k[1]:.3g}: {c[0]} represented" for k, c in counts.items())
        plot.save(
            fig,
            args.out,
            stem,
            title=f"Basic results: {title}",
            section="§3.2",
            caption="W^T W and b (best seed), bars of ||W_i|| coloured by interference. "
            "Linear: top-m features at any sparsity; ReLU: superposition grows with sparsity.",
            numbers=line,
            sweeps=[sweep],
        )
        numbers.append(line)


if __name__ == "__main__":
    main()
