"""Figure 6 (paper §5.2): non-uniform superposition, one feature's density varied.

Sweep nonuniform_pentagon: n=5, m=2, uniform importance, density 0.05 for four features
and a varied density for one (data.varied_feature_probability, log-spaced). Top: the
best seed at each relative density, rotated so the varied feature (black) points right:
the pentagon deforms smoothly, then snaps to two digons with the varied feature at zero
when it is ~2.5x sparser than the others. Bottom: the loss of every seed, split by
geometry (all five features represented vs the varied feature dropped): the two
geometries' loss curves cross at the phase change.
"""

import matplotlib.pyplot as plt
import numpy as np

from geomtoy.viz import plot

SWEEPS = ["nonuniform_pentagon"]
"""The sweeps this figure reads (the Makefile's rules come from this list)."""
FIGURE = "fig_nonuniform"  # the first image it writes: its Make target
V = "data.varied_feature_probability"


def canonical(W, k):
    """Rotate W (2, n) so feature k points along +x (or, if it is ~0, the largest feature)."""
    norms = np.linalg.norm(W, axis=0)
    ref = k if norms[k] > 0.3 else int(np.argmax(norms))
    angle = np.arctan2(W[1, ref], W[0, ref])
    c, s = np.cos(-angle), np.sin(-angle)
    Wr = np.array([[c, -s], [s, c]]) @ W
    nxt = (k + 1) % W.shape[1]
    if Wr[1, nxt] < 0:
        Wr[1] *= -1
    return Wr


def main():
    args = plot.figure_args(__doc__)
    res = plot.load(args.results, SWEEPS[0])
    n = res.params["W"].shape[2]
    k = int(res.meta["spec"]["data"].get("varied_feature", -1)) % n
    prob = plot.per_feature(res, "feature_probability")
    base = float(np.median(np.delete(prob, k, axis=1)))
    rel = res.column(V) / base
    loss = res.column("loss")
    norm_varied = plot.per_feature(res, "norm")[:, k]
    rows = plot.best_rows(res, [V])
    vs = sorted(rows)
    W = res.params["W"]

    fig = plt.figure(figsize=(11, 6), layout="constrained")
    top, bottom = fig.subfigures(2, 1, height_ratios=[1, 1.3])
    axes = top.subplots(1, len(vs))
    colors = ["#bbbbbb"] * n
    colors[k] = "k"
    for ax, v in zip(np.atleast_1d(axes), vs):
        i = rows[v]
        plot.draw_features_2d(ax, canonical(W[i], k), colors)
        ax.set_title(f"{v[0] / base:.2g}x\n{res.column('geometry')[i]}", fontsize=6)
    top.suptitle("best seed per relative density of the varied feature (black)", fontsize=8)

    ax = bottom.subplots()
    pent = norm_varied > 0.5
    ax.scatter(
        rel[pent],
        loss[pent],
        s=10,
        color="#9467bd",
        label="varied feature represented (pentagon-like)",
    )
    ax.scatter(
        rel[~pent], loss[~pent], s=10, color="#d62728", label="varied feature dropped (two digons)"
    )
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("relative density of the varied feature")
    ax.set_ylabel("loss (every seed)")
    ax.legend(fontsize=7)
    # crossover: the densest point at which the best seed has the varied feature dropped
    best = res.column("best").astype(bool)
    dropped = np.sort(rel[best & ~pent])
    kept = np.sort(rel[best & pent])
    snap = (
        f"best seed drops the varied feature at relative density <= {dropped.max():.2g}x "
        f"and keeps it from {kept.min():.2g}x"
        if len(dropped) and len(kept)
        else "no snap in the swept range"
    )
    ax.set_title(snap, fontsize=8)
    plot.save(
        fig,
        args.out,
        "fig_nonuniform",
        title="Non-uniform superposition",
        section="§5.2",
        caption="The pentagon deforms as one feature's density varies, then snaps to two "
        "digons; the two geometries' loss curves cross at the phase change.",
        numbers=snap + " (paper: ~2.5x sparser)",
        sweeps=SWEEPS,
    )


if __name__ == "__main__":
    main()
