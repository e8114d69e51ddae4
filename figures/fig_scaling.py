"""Scaling laws from superposition (Liu, Liu and Gore 2025, arXiv 2505.10465), and
predictability and surprise (Ganguli et al. 2022, arXiv 2202.07785), from one sweep.

Sweep scaling_superposition: n features with power-law frequencies p_i ~ i^-(1+alpha),
widths m, weight decay from negative (strong superposition) to positive (weak).
fig_scaling: (a) loss against m on log axes per (alpha, weight decay) with the fitted
exponent; (b) the exponent against alpha beside the paper's predictions (weak: alpha, and
its finite-n value over these widths; strong: max(1, 2 alpha), their figure 6e); (c, d) the regime of every model read
from its geometry: share of represented features, and the mean squared overlap of the
represented features times m (1: overlaps ~ 1/m).
fig_scaling_surprise: the same sweep drawn twice: the loss falls smoothly with m (a), while
which features are represented switches abruptly with m (b: features by frequency rank
against m) and the geometry (represented share, D*, polytope composition) jumps (c), with
the transitions marked.
"""

import matplotlib.pyplot as plt
import numpy as np

from geomtoy import spec
from geomtoy.geometry import scaling
from geomtoy.sweep.grid import power_law
from geomtoy.viz import plot

SWEEPS = ["scaling_superposition"]
"""The sweeps this figure reads (the Makefile's rules come from this list)."""
FIGURE = "fig_scaling"  # the first image it writes: its Make target
P, WD, M = "data.feature_probability", "train.weight_decay", "model.n_hidden"


def _mean_square(res) -> float:
    """E[x^2] of a present feature for the sweep's data.magnitude."""
    default = spec.FIELDS["data.magnitude"].default
    return scaling.MEAN_SQUARE[res.meta["spec"]["data"].get("magnitude", default)]


def _table(res):
    """Per instance: alpha, weight decay, m, loss, n, represented share, m x mean overlap, regime."""
    W = res.params["W"]
    m = res.params["n_hidden"].astype(float)
    n = res.params["n_features"].astype(float)
    share = scaling.represented_share(W)
    overlap = np.array([scaling.mean_squared_overlap(w) for w in W])
    probs = res.params["feature_probability"]
    weighted = np.array([scaling.weighted_overlap(w, p) for w, p in zip(W, probs)])
    return {
        "seed": res.column("seed").astype(int),
        "alpha": scaling.power_law_alpha(res.column(P)),
        "wd": res.column(WD).astype(float),
        "m": m,
        "n": n,
        "loss": res.column("loss").astype(float),
        "share": share,
        "overlap_m": overlap * m,
        "weighted_m": weighted * m,
        "regime": scaling.regime(share * n, n, m),
        "dstar": res.column("dims_per_feature").astype(float),
        "unrep": np.array(
            [scaling.unrepresented_loss(w, p, _mean_square(res)) for w, p in zip(W, probs)]
        ),
    }


def _series(t):
    """(alpha, wd) -> the row indices of its first seed sorted by m (one model per width,
    for the lines and the per-model geometry), and the regime most of its models (all
    seeds) are in. The exponent fits use every seed."""
    out = {}
    for a, w in sorted({(a, w) for a, w in zip(t["alpha"], t["wd"])}):
        every = np.flatnonzero((t["alpha"] == a) & (t["wd"] == w))
        labels, counts = np.unique(t["regime"][every].astype(str), return_counts=True)
        rows = every[t["seed"][every] == t["seed"][every].min()]
        out[(a, w)] = (rows[np.argsort(t["m"][rows])], labels[np.argmax(counts)])
    return out


REGIME_COLOR = {"strong": "#c33", "weak": "#36c", "between": "#999"}


def figure_scaling(res, out):
    t = _table(res)
    series = _series(t)
    fits = scaling.exponent_table(t["m"], t["loss"], alpha=t["alpha"], wd=t["wd"])
    fig, axs = plt.subplots(2, 2, figsize=(10, 8), layout="constrained")
    alphas = sorted(set(t["alpha"]))
    cmap = plt.get_cmap("viridis")
    for k, ((a, w), (rows, reg)) in enumerate(series.items()):
        color = cmap(alphas.index(a) / max(len(alphas) - 1, 1))
        e = fits["exponent"][k]
        ls = "-" if w < 0 else "--"
        every = (t["alpha"] == a) & (t["wd"] == w)  # all seeds: dots, and their geometric mean
        axs[0, 0].plot(t["m"][every], t["loss"][every], ".", ms=2, color=color, alpha=0.4)
        mean = [np.exp(np.mean(np.log(t["loss"][every & (t["m"] == x)]))) for x in t["m"][rows]]
        axs[0, 0].plot(
            t["m"][rows],
            mean,
            ls,
            marker="o",
            ms=3,
            color=color,
            lw=1,
            label=f"a={a:g} wd={w:+.2g}: {e:.2f}" if len(series) <= 12 else None,
        )
        axs[1, 0].plot(t["m"][rows], t["share"][rows], ls, marker="o", ms=3, color=color, lw=1)
        axs[1, 1].plot(t["m"][rows], t["overlap_m"][rows], ls, marker="o", ms=3, color=color, lw=1)
        if reg == "weak":
            axs[0, 0].plot(t["m"][rows], t["unrep"][rows], "x", ms=5, color=color)
        if reg == "strong":
            axs[1, 1].plot(t["m"][rows], t["weighted_m"][rows], ":", marker="x", ms=3, color=color)
    ax = axs[0, 0]
    ax.set(
        xscale="log",
        yscale="log",
        xlabel="m",
        ylabel="loss",
        title="(a) loss vs m (dots: seeds, line: their geometric mean; legend: exponent);\n"
        "solid wd<0, dashed wd>=0; x: E[x^2]/n x mass of unrepresented features (weak)",
    )
    ax.legend(fontsize=6, ncol=2)

    ax = axs[0, 1]
    regimes = np.array([series[(a, w)][1] for a, w in zip(fits["alpha"], fits["wd"])])
    for reg, color in REGIME_COLOR.items():
        sel = regimes == reg
        if sel.any():
            ax.errorbar(
                fits["alpha"][sel],
                fits["exponent"][sel],
                fits["stderr"][sel],
                fmt="o",
                ms=4,
                color=color,
                label=f"{reg} superposition (geometry)",
            )
    grid = np.linspace(min(min(alphas), 0.0), max(alphas) * 1.05, 50)
    ax.plot(
        grid,
        scaling.paper_exponent(grid, "weak"),
        color=REGIME_COLOR["weak"],
        lw=0.8,
        label="weak, paper: alpha",
    )
    widths = np.unique(t["m"])
    n = int(t["n"].max())
    positive = grid[grid > 0]
    finite = [scaling.weak_exponent(power_law(n, a), widths) for a in positive]
    ax.plot(
        positive,
        finite,
        ":",
        color=REGIME_COLOR["weak"],
        lw=0.8,
        label=f"weak, unlearned mass at n={n}",
    )
    ax.plot(
        grid,
        scaling.paper_exponent(grid, "strong"),
        color=REGIME_COLOR["strong"],
        lw=0.8,
        label="strong, paper: max(1, 2 alpha)",
    )
    ax.axhline(
        scaling.strong_exponent(n, widths),
        color=REGIME_COLOR["strong"],
        lw=0.8,
        ls=":",
        label=f"strong, Welch bound at n={n}",
    )
    ax.set(
        xlabel="alpha (p_i ~ i^-(1+alpha))",
        ylabel="fitted exponent of loss vs m",
        title="(b) exponent vs alpha",
    )
    ax.legend(fontsize=7)
    widths_line = np.unique(t["m"])
    axs[1, 0].plot(widths_line, widths_line / t["n"].max(), "k:", lw=0.8, label="m / n")
    axs[1, 0].legend(fontsize=7)
    axs[1, 0].set(
        xscale="log",
        yscale="log",
        xlabel="m",
        ylabel="share of features with |W_i| > 1/2",
        title="(c) represented features",
    )
    axs[1, 1].axhline(1.0, color="k", lw=0.6)
    axs[1, 1].set(
        xscale="log",
        xlabel="m",
        ylabel="mean squared overlap x m",
        title="(d) mean squared overlap x m; dotted: frequency-weighted (strong)",
    )
    strong = regimes == "strong"
    weak = regimes == "weak"
    weak_rows = t["regime"] == "weak"
    off_strong = fits["exponent"][strong] - scaling.paper_exponent(fits["alpha"][strong], "strong")
    off_weak = fits["exponent"][weak] - scaling.paper_exponent(fits["alpha"][weak], "weak")
    numbers = (
        f"strong: exponents {_span(fits['exponent'][strong])} over alpha "
        f"{_span(fits['alpha'][strong])}, minus the paper's max(1, 2 alpha) "
        f"{_span(off_strong)}; weak: exponent - alpha {_span(off_weak)}; "
        f"weak loss / (E[x^2]/n x "
        f"unrepresented mass) {_span(t['loss'][weak_rows] / t['unrep'][weak_rows])}"
    )
    plot.save(
        fig,
        out,
        "fig_scaling",
        title="Scaling laws from superposition",
        section="Liu et al. 2025",
        caption="Loss vs m: ~1/m in strong superposition (~m^-2 alpha for steep frequencies, "
        "alpha > 1/2), ~m^-alpha in weak.",
        numbers=numbers,
        sweeps=SWEEPS,
    )
    return fits, regimes


def _span(a) -> str:
    a = np.asarray(a, float)
    return "none" if a.size == 0 else f"{np.nanmin(a):.2f} .. {np.nanmax(a):.2f}"


def figure_surprise(res, out):
    t = _table(res)
    series = _series(t)
    alphas = sorted(set(t["alpha"]))
    a = alphas[len(alphas) // 2]
    wds = sorted({w for (aa, w) in series if aa == a})
    fig, axs = plt.subplots(1, 3, figsize=(13, 4), layout="constrained")
    labels = plot.per_feature(res, "polytope")
    for w in (wds[0], wds[-1]):
        rows, reg = series[(a, w)]
        color = REGIME_COLOR[reg]
        axs[0].plot(t["m"][rows], t["loss"][rows], "o-", color=color, label=f"wd={w:+g} ({reg})")
        e, c, _ = scaling.fit_power_law(t["m"][rows], t["loss"][rows])
        axs[0].plot(t["m"][rows], np.exp(c) * t["m"][rows] ** -e, color=color, lw=0.5)
    axs[0].set(
        xscale="log",
        yscale="log",
        xlabel="m",
        ylabel="loss",
        title=f"(a) predictable: loss vs m, alpha={a:g}, power-law fits",
    )
    axs[0].legend(fontsize=7)

    rows, _ = series[(a, wds[-1])]  # the weak-regime series: features switch on one by one
    norms = scaling.feature_norms(res.params["W"][rows])
    m = t["m"][rows]
    rep = norms > scaling.REPRESENTED_NORM
    k = min(max(2 * int(np.flatnonzero(rep.any(axis=0)).max(initial=0)) + 2, 10), rep.shape[1])
    axs[1].imshow(
        rep[:, :k].T,
        aspect="auto",
        origin="lower",
        cmap="Greys",
        extent=(-0.5, len(m) - 0.5, 0.5, k + 0.5),
        interpolation="nearest",
    )
    axs[1].plot(np.arange(len(m)), m, "r--", lw=0.8, label="rank = m")
    axs[1].set_xticks(np.arange(len(m)), [f"{x:g}" for x in m])
    axs[1].set(
        xlabel="m",
        ylabel="feature rank (by frequency)",
        title=f"(b) surprising: represented features (black), wd={wds[-1]:+g}",
    )
    axs[1].legend(fontsize=7)

    ax = axs[2]  # the weak series' geometry: features per polytope kind, in whole steps
    counts = scaling.label_shares(
        np.repeat(np.arange(len(rows)), labels.shape[1]), labels[rows].reshape(-1), len(rows)
    )
    counts = {k: v * labels.shape[1] for k, v in counts.items() if k != "not_represented"}
    for name, c in sorted(counts.items(), key=lambda kv: -kv[1].max())[:6]:
        ax.step(m, c, where="mid", lw=1.2, label=f"{name}")
    ax.step(m, rep.sum(axis=1), where="mid", color="k", lw=0.8, ls="--", label="represented")
    marks = sorted({x for c in counts.values() for x in scaling.transitions(m, c, 0.5)})
    for x in marks:
        ax.axvline(x, color="#c33", lw=0.8, ls=":")
    ax.set(
        xscale="log",
        xlabel="m",
        ylabel="features",
        title=f"(c) wd={wds[-1]:+g}: features per polytope; dotted: changes",
    )
    ax.legend(fontsize=6)
    resid = {
        reg: max(
            (scaling.log_residual(t["m"][r], t["loss"][r]) for r, g in series.values() if g == reg),
            default=np.nan,
        )
        for reg in ("strong", "weak")
    }
    first = scaling.first_represented(m, rep)
    on = [int(x) for x in sorted(set(first[np.isfinite(first)]))]
    numbers = (
        f"largest |log loss - power-law fit|: strong series {resid['strong']:.3f}, weak "
        f"{resid['weak']:.3f}; weak series alpha={a:g}: features switch on for good at m = "
        f"{on}; its polytope composition changes at {len(marks)} of {len(m) - 1} steps in m"
    )
    plot.save(
        fig,
        out,
        "fig_scaling_surprise",
        title="Predictability and surprise",
        section="Ganguli et al. 2022",
        caption="Smooth loss vs m; abrupt changes of which features are represented.",
        numbers=numbers,
        sweeps=SWEEPS,
    )


def main():
    args = plot.figure_args(__doc__)
    res = plot.load(args.results, SWEEPS[0])
    fits, regimes = figure_scaling(res, args.out)
    figure_surprise(res, args.out)
    print("alpha  wd  regime  exponent  stderr")
    for k in range(len(fits["alpha"])):
        print(
            f"{fits['alpha'][k]:.3f} {fits['wd'][k]:+.3f} {regimes[k]:8s} "
            f"{fits['exponent'][k]:.3f} {fits['stderr'][k]:.3f}"
        )


if __name__ == "__main__":
    main()
