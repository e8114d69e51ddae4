"""Figure 7 (paper §5.2): correlated and anticorrelated features.

Sweeps correlated_pairs (n=4, m=2, two sets of two; correlated: a set switches on as a
whole; anticorrelated: at most one member on) and correlated_collapse (n=6, m=2, three
correlated pairs, density swept). Features of one set share a hue. Top: the best seed of
each structure: correlated members orthogonal, anticorrelated members antipodal. Bottom:
as density rises the correlated pairs collapse one by one onto their principal component
(a set is counted collapsed when its two members point within 25 degrees of each other).
"""

import matplotlib.pyplot as plt
import numpy as np

from geomtoy.geometry.sets import cosines
from geomtoy.viz import plot

P, S = "data.feature_probability", "data.structure"
SWEEPS = ["correlated_pairs", "correlated_collapse"]
"""The sweeps this figure reads (the Makefile's rules come from this list)."""
FIGURE = "fig_correlated"  # the first image it writes: its Make target
SET_COLORS = [("#1f4e9c", "#6f9fe0"), ("#b22222", "#f08080"), ("#2e7d32", "#81c784")]
COLLAPSE_COS = np.cos(np.radians(25))


def colors_for(n):
    return [SET_COLORS[i // 2][i % 2] for i in range(n)]


def collapsed_sets(W):
    cos = cosines(W)
    norms = np.linalg.norm(W, axis=0)
    return sum(
        1
        for k in range(0, W.shape[1], 2)
        if norms[k] > 0.3 and norms[k + 1] > 0.3 and cos[k, k + 1] > COLLAPSE_COS
    )


def main():
    args = plot.figure_args(__doc__)
    pairs = plot.load(args.results, SWEEPS[0])
    coll = plot.load(args.results, SWEEPS[1])
    fig = plt.figure(figsize=(11, 6.2), layout="constrained")
    top, bottom = fig.subfigures(2, 1, height_ratios=[1.1, 1])

    rows = plot.best_rows(pairs, [S, P])
    keys = sorted(rows)
    axes = top.subplots(1, len(keys))
    numbers = []
    for ax, key in zip(np.atleast_1d(axes), keys):
        W = pairs.params["W"][rows[key]]
        plot.draw_features_2d(ax, W, colors_for(W.shape[1]))
        cos = cosines(W)
        ax.set_title(
            f"{key[0]}, 1-S = {key[1]:.3g}\ncos within sets: {cos[0, 1]:.2f}, {cos[2, 3]:.2f}",
            fontsize=7,
        )
        numbers.append(
            f"{key[0]} 1-S={key[1]:.3g}: cos within sets {cos[0, 1]:.2f}/{cos[2, 3]:.2f}"
        )
    top.suptitle("two sets of two features (shades of one hue = one set), best seed", fontsize=8)

    rows = plot.best_rows(coll, [P])
    ps = sorted(rows)
    axes = bottom.subplots(1, len(ps))
    counts = []
    for ax, p in zip(np.atleast_1d(axes), ps):
        W = coll.params["W"][rows[p]]
        plot.draw_features_2d(ax, W, colors_for(W.shape[1]))
        c = collapsed_sets(W)
        counts.append(c)
        ax.set_title(f"1-S = {p[0]:.3g}\n{c} collapsed", fontsize=7)
    bottom.suptitle("three correlated pairs in 2-D as density rises (best seed)", fontsize=8)
    numbers.append(
        "collapsed sets by density: " + ", ".join(f"{p[0]:.3g}: {c}" for p, c in zip(ps, counts))
    )
    plot.save(
        fig,
        args.out,
        "fig_correlated",
        title="Correlated and anticorrelated features",
        section="§5.2",
        caption="Correlated features orthogonal, anticorrelated antipodal; "
        "correlated pairs side by side when sparse, collapsing to principal components when dense.",
        numbers="; ".join(numbers),
        sweeps=SWEEPS,
    )


if __name__ == "__main__":
    main()
