"""Figure 3 (paper §4): superposition as a phase change, trained beside theory.

Sweeps phase_2x1 (n=2, m=1) and phase_3x2 (n=3, m=2): the extra (last) feature's
relative importance r (data.varied_importance, log 0.1 .. 10) against the density
1-S of all features (log 1 .. 0.01). As in the paper, each point trains several seeds,
discards the highest-loss one and averages the rest; the colour is the extra feature's
superposition (blue: interference 0, red: >= 1) with saturation from its norm ||W_extra||
(light grey: 0, full colour: >= 1). Beside it, the theoretical diagram of
geomtoy.geometry.theory: the cheapest of the fixed candidate solutions, with its boundaries
p = 4r/(2+5r) and 4/(5+2r) (n=3, m=2: 4/7 for r > 1) and the triple point (1, 4/7).
"""

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.colors import ListedColormap, to_rgb

from geomtoy.geometry import theory
from geomtoy.viz import plot

R, P = "data.varied_importance", "data.feature_probability"
BLUE, RED, GREY = (
    np.array(to_rgb("#2255bb")),
    np.array(to_rgb("#dd4444")),
    np.array(to_rgb("#dddddd")),
)
SWEEPS = ["phase_2x1", "phase_3x2"]
"""The sweeps this figure reads (the Makefile's rules come from this list)."""
FIGURE = "fig_phase"  # the first image it writes: its Make target
THEORY_COLORS = {
    "not_represented": "#dddddd",
    "dedicated": "#2255bb",
    "superposition": "#dd4444",
    "extra_antipodal": "#dd4444",
    "others_antipodal": "#aa44aa",
}


def empirical(res):
    """(rs, ps, rgb image) from the seeds of each grid point, worst dropped (vectorised:
    the 10^5-point sweep draws in a second)."""
    r, p, loss = res.column(R), res.column(P), res.column("loss")
    norm = plot.per_feature(res, "norm")[:, -1]
    interference = plot.per_feature(res, "interference")[:, -1]
    rs, r_at = np.unique(r, return_inverse=True)
    ps, p_at = np.unique(p, return_inverse=True)
    point = (len(ps) - 1 - p_at) * len(rs) + r_at  # rows: density from high to low
    order = np.lexsort((loss, point))  # by point, then loss (NaN last)
    seeds = np.bincount(point, minlength=len(ps) * len(rs))
    last = np.r_[point[order][1:] != point[order][:-1], True]  # highest loss of its point
    keep = np.ones(len(r), bool)
    keep[order[last & (seeds[point[order]] > 1)]] = False

    def mean(values):
        total = np.bincount(point[keep], values[keep], minlength=len(seeds))
        return total / np.maximum(np.bincount(point[keep], minlength=len(seeds)), 1)

    s = np.clip(mean(interference), 0, 1)[:, None]
    w = np.clip(mean(norm), 0, 1)[:, None]
    image = w * ((1 - s) * BLUE + s * RED) + (1 - w) * GREY
    return rs, ps[::-1], image.reshape(len(ps), len(rs), 3)


def edges(values):
    """Cell edges on a log axis around sorted values."""
    logs = np.log10(values)
    mid = (logs[1:] + logs[:-1]) / 2 if len(logs) > 1 else logs
    step = (logs[-1] - logs[0]) / max(len(logs) - 1, 1) or 1.0
    return 10 ** np.concatenate([[logs[0] - step / 2], mid, [logs[-1] + step / 2]])


def draw_boundary(ax, boundary):
    r = np.logspace(-1, 1, 400)
    ax.plot(r, boundary(r), color="k", lw=0.8, ls="--")
    ax.plot(*theory.TRIPLE_POINT, "ko", ms=3)


def setup(ax, title):
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlim(0.1, 10)
    ax.set_ylim(0.01, 1.0)
    ax.set_xlabel("relative importance of the extra feature")
    ax.set_ylabel("feature density 1 - S")
    ax.set_title(title)


# The extra feature's state in each theoretical phase.
EXTRA_STATE = {
    "not_represented": "not_represented",
    "dedicated": "dedicated",
    "superposition": "superposed",
    "extra_antipodal": "superposed",
    "others_antipodal": "dedicated",
}


def agreement(res, phase, boundary):
    """Grid points, farther than x2 in density from the boundary (docs/paper.md, checks), where the
    best seed's extra feature is in the state the theory's phase predicts."""
    r, p = res.column(R), res.column(P)
    best = res.column("best").astype(bool)
    interference = plot.per_feature(res, "interference")[:, -1]
    norm = plot.per_feature(res, "norm")[:, -1]
    agree = total = 0
    for i in np.flatnonzero(best):
        if 0.5 < p[i] / boundary(r[i]) < 2 or 0.5 < r[i] < 2:
            continue
        total += 1
        if norm[i] < 0.5:
            state = "not_represented"
        else:
            state = "superposed" if interference[i] > 0.5 else "dedicated"
        agree += state == EXTRA_STATE[str(phase(r[i], p[i]))]
    return agree, total


def main():
    args = plot.figure_args(__doc__)
    fig, axes = plt.subplots(2, 2, figsize=(9, 8), layout="constrained")
    numbers = []
    for row, (sweep, n, m, phase, phase_index, phases, boundary) in enumerate(
        (
            (
                SWEEPS[0],
                2,
                1,
                theory.phase_n2m1,
                theory.phase_index_n2m1,
                theory.PHASES_N2M1,
                theory.boundary_n2m1,
            ),
            (
                SWEEPS[1],
                3,
                2,
                theory.phase_n3m2,
                theory.phase_index_n3m2,
                theory.PHASES_N3M2,
                theory.boundary_n3m2,
            ),
        )
    ):
        res = plot.load(args.results, sweep)
        rs, ps, image = empirical(res)
        ax = axes[row, 0]
        ax.pcolormesh(edges(rs), edges(ps[::-1]), image[::-1], shading="flat")
        draw_boundary(ax, boundary)
        setup(ax, f"trained, n={n}, m={m} ({len(rs)}x{len(ps)} points, worst seed dropped)")
        rt, pt = np.logspace(-1, 1, 300), np.logspace(0, -2, 300)
        index = phase_index(rt[None, :], pt[:, None])
        cmap = ListedColormap([THEORY_COLORS[name] for name in phases])
        ax = axes[row, 1]
        ax.pcolormesh(rt, pt, index, cmap=cmap, vmin=-0.5, vmax=len(phases) - 0.5, shading="auto")
        draw_boundary(ax, boundary)
        setup(ax, f"theory, n={n}, m={m}: cheapest candidate")
        for name in phases:
            ax.plot([], [], "s", color=THEORY_COLORS[name], label=name.replace("_", " "))
        ax.legend(loc="lower left", fontsize=7, frameon=True)
        agree, total = agreement(res, phase, boundary)
        numbers.append(
            f"n={n},m={m}: the best seed's extra feature is in the theory's state "
            f"at {agree}/{total} points farther than x2 from the boundaries"
        )
    plot.save(
        fig,
        args.out,
        "fig_phase",
        title="Superposition as a phase change",
        section="§4",
        caption="Left: trained models, colour = superposition (blue 0 .. red 1) of the extra "
        "feature, saturation = its norm. Right: theory (closed-form losses of the "
        "candidate solutions). Dashed: p = 4r/(2+5r), 4/(5+2r) (n=3: 4/7); dot: triple point.",
        numbers="; ".join(numbers),
        sweeps=SWEEPS,
    )


if __name__ == "__main__":
    main()
