"""Figures 4 and 5 (paper §5.1): uniform superposition.

Sweep uniform_superposition (figure 4): uniform importance, n >> m, 1-S log-spaced. Figure 4 plots
the dimensions per feature D* = m / ||W||_F^2 of every seed against 1/(1-S) (log x): it
is sticky at 1 (dense) and at 1/2 (antipodal pairs). Figure 5 (sweep feature_geometry,
the notebook's recipe) overlays every represented feature's dimensionality D_i, coloured
by its tegum factor's polytope label from geomtoy.geometry, with lines at the d/k of the
vocabulary (5/6, 4/5, 3/4, 2/3, 1/2, 2/5, 3/8, 2/6, 2/7, 2/8 = 3/12, 3/20).
"""

import matplotlib.pyplot as plt
import numpy as np

from geomtoy.geometry import vocabulary
from geomtoy.viz import plot

SWEEPS = ["uniform_superposition", "feature_geometry"]
"""The sweeps this figure reads (the Makefile's rules come from this list)."""
FIGURE = "fig_dims_per_feature"  # the first image it writes: its Make target
P = "data.feature_probability"


def main():
    args = plot.figure_args(__doc__)
    res = plot.load(args.results, SWEEPS[0])
    x = 1.0 / res.column(P)
    d_star = res.column("dims_per_feature")
    best = res.column("best").astype(bool)
    n = res.params["W"].shape[2]
    m = res.params["W"].shape[1]

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
        sweeps=SWEEPS[:1],
    )

    feature_dimensionality(args)


BAND = 0.03
"""A feature lies on a reference line when its D_i is within 0.03 of it (nearest line)."""


def density_table(x, label) -> list[str]:
    """One line per density: represented features, `other` among them, factor labels."""
    lines = []
    for xi, row in zip(x, label):
        rep = row[row != vocabulary.NOT_REPRESENTED]
        names, counts = np.unique(rep, return_counts=True)
        parts = ", ".join(f"{c} {n}" for n, c in sorted(zip(names, counts), key=lambda t: -t[1]))
        other = int(np.sum(rep == vocabulary.OTHER))
        lines.append(f"{xi:.2f}: {len(rep)} repr, {other} other ({parts or 'none'})")
    return lines


def band_shares(dim, label) -> list[str]:
    """Per reference line d/k: features on it and the share of them with a polytope label."""
    lines = vocabulary.reference_lines()
    ys = np.array(list(lines))
    rep = label != vocabulary.NOT_REPRESENTED
    nearest = np.argmin(np.abs(dim[..., None] - ys), axis=-1)
    on = rep & (np.abs(dim - ys[nearest]) <= BAND)
    out = []
    for i, y in enumerate(ys):
        sel = on & (nearest == i)
        if sel.any():
            share = np.mean(label[sel] != vocabulary.OTHER)
            names = "/".join(vocabulary.POLYTOPES[n].fraction for n in lines[y][:1])
            out.append(f"D={names}: {int(sel.sum())} features, {100 * share:.0f}% labelled")
    return out


def feature_dimensionality(args):
    """Figure 5: the best seed's D_i of every represented feature per density, coloured
    by its tegum factor's label, with the vocabulary's d/k as reference lines."""
    res = plot.load(args.results, SWEEPS[1])
    x_all = 1.0 / res.column(P)
    best = np.flatnonzero(res.column("best").astype(bool))
    best = best[np.argsort(x_all[best])]
    x, d_star = x_all[best], res.column("dims_per_feature")[best]
    dim = plot.per_feature(res, "dimensionality")[best]
    label = plot.per_feature(res, "polytope")[best].astype(str)
    m, n = res.params["W"].shape[1:]
    fig, ax = plt.subplots(figsize=(8, 5), layout="constrained")
    ax.plot(x, d_star, "k-", lw=1, alpha=0.6, label="D* (best seed)")
    jitter = np.exp(np.random.default_rng(0).uniform(-0.04, 0.04, dim.shape))
    for name, color in plot.POLYTOPE_COLORS.items():
        sel = label == name
        if name != vocabulary.NOT_REPRESENTED and sel.any():
            ax.scatter(
                (x[:, None] * jitter)[sel],
                dim[sel],
                s=5,
                color=color,
                alpha=0.7,
                lw=0,
                label=f"{vocabulary.SHORT[name]} ({int(sel.sum())})",
            )
    for y, names in vocabulary.reference_lines().items():
        polytope = vocabulary.POLYTOPES[names[0]]
        ax.axhline(y, color=polytope.color, lw=0.5, ls="--", alpha=0.8)
        text = f"{polytope.fraction} " + ", ".join(vocabulary.SHORT[nm] for nm in names)
        ax.text(x.max() * 1.12, y, text, fontsize=5.5, va="center", color=polytope.color)
    ax.set_xscale("log")
    ax.set_ylim(0, 1.05)
    ax.set_xlim(x.min() / 1.1, x.max() * 2.2)
    ax.set_xlabel("1 / (1 - S)")
    ax.set_ylabel("feature dimensionality D_i")
    ax.set_title(f"Feature dimensionality of every represented feature (best seed), n={n}, m={m}")
    ax.legend(fontsize=6, markerscale=2.5, loc="lower left", ncol=2)
    table = density_table(x, label)
    plot.save(
        fig,
        args.out,
        "fig_feature_dimensionality",
        title="Feature dimensionality",
        section="§5.1",
        caption="The best seed's D_i of every represented feature at each density, coloured "
        "by the label of its tegum factor; dashed lines at the vocabulary's d/k. Per "
        f"reference line (|D_i - d/k| <= {BAND}), the share of features with a polytope "
        "label: " + "; ".join(band_shares(dim, label)) + ".",
        numbers="per 1/(1-S): " + "; ".join(table),
        sweeps=SWEEPS[1:],
    )


if __name__ == "__main__":
    main()
