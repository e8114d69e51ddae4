"""Figures 4 and 5 (paper §5.1): uniform superposition.

Sweep uniform_superposition: uniform importance, n >> m, 1-S log-spaced. Figure 4 plots
the dimensions per feature D* = m / ||W||_F^2 of every seed against 1/(1-S) (log x): it
is sticky at 1 (dense) and at 1/2 (antipodal pairs). Figure 5 overlays every represented
feature's dimensionality D_i, coloured by its polytope label from geomtoy.geometry, with
lines at 3/4, 2/3, 1/2, 2/5 and 3/8 (D = d/k of the uniform polytopes).
"""

import matplotlib.pyplot as plt
import numpy as np

from geomtoy import plot

P = "data.feature_probability"


def main():
    args = plot.figure_args(__doc__)
    res = plot.load(args.results, "uniform_superposition")
    x = 1.0 / res.column(P)
    d_star = res.column("dims_per_feature")
    best = res.column("best").astype(bool)
    n = res.params["W"].shape[2]
    m = res.params["W"].shape[1]
    xs = np.unique(x)

    # Figure 4: D* against 1/(1-S)
    fig, ax = plt.subplots(figsize=(6.5, 4), layout="constrained")
    ax.scatter(x, d_star, s=8, color="#888", label="every seed")
    order = np.argsort(x[best])
    ax.plot(x[best][order], d_star[best][order], "k-", lw=1.2, label="best seed")
    for y in (1.0, 0.5):
        ax.axhline(y, color="#c33", lw=0.6, ls="--")
    ax.set_xscale("log")
    ax.set_xlabel("1 / (1 - S)")
    ax.set_ylabel("dimensions per feature  D* = m / ||W||_F^2")
    ax.set_title(f"Uniform superposition, n={n}, m={m}")
    ax.legend(fontsize=7)
    half = np.abs(d_star[best] - 0.5) < 0.03
    one = np.abs(d_star[best] - 1.0) < 0.03
    numbers = (
        f"best seed D* within 0.03 of 1 at {one.sum()} and of 1/2 at {half.sum()} "
        f"of {best.sum()} sparsities; D* from {d_star[best].max():.3f} to {d_star[best].min():.3f}"
    )
    plot.save(
        fig,
        args.out,
        "fig_dims_per_feature",
        title="Dimensions per feature",
        section="§5.1",
        caption="D* = m/||W||_F^2 against 1/(1-S): plateaus at 1 and 1/2.",
        numbers=numbers,
        sweeps=["uniform_superposition"],
    )

    # Figure 5: every feature's D_i, coloured by polytope label
    dim = plot.per_feature(res, "dimensionality")
    label = plot.per_feature(res, "polytope")
    fig, ax = plt.subplots(figsize=(7.5, 4.5), layout="constrained")
    ax.plot(x[best][order], d_star[best][order], "k-", lw=1, alpha=0.6, label="D* (best seed)")
    rng = np.random.default_rng(0)
    jitter = np.exp(rng.uniform(-0.04, 0.04, dim.shape))
    shown = {}
    for name, color in plot.POLYTOPE_COLORS.items():
        if name == "not_represented":
            continue
        sel = label == name
        if sel.any():
            xi = (x[:, None] * jitter)[sel]
            ax.scatter(
                xi, dim[sel], s=3, color=color, alpha=0.6, lw=0, label=name.replace("_", " ")
            )
            shown[name] = int(sel.sum())
    for name, y in plot.POLYTOPE_DIMENSIONALITY.items():
        ax.axhline(y, color=plot.POLYTOPE_COLORS[name], lw=0.6, ls="--")
        ax.text(
            xs.max() * 1.15,
            y,
            f"{name.replace('_', ' ')}",
            fontsize=6,
            va="center",
            color=plot.POLYTOPE_COLORS[name],
        )
    ax.set_xscale("log")
    ax.set_ylim(0, 1.05)
    ax.set_xlabel("1 / (1 - S)")
    ax.set_ylabel("feature dimensionality D_i")
    ax.set_title(f"Feature dimensionality of every represented feature, n={n}, m={m}")
    ax.legend(fontsize=7, markerscale=3, loc="upper right")
    numbers = ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in shown.items())
    plot.save(
        fig,
        args.out,
        "fig_feature_dimensionality",
        title="Feature dimensionality",
        section="§5.1",
        caption="Every represented feature's D_i (all seeds), coloured by its polytope "
        "label; dashed lines at 3/4, 2/3, 1/2, 2/5, 3/8.",
        numbers=f"labelled features: {numbers}",
        sweeps=["uniform_superposition"],
    )


if __name__ == "__main__":
    main()
