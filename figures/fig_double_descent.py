"""Superposition, memorization and double descent: finite training sets of T samples.

Sweep double_descent (the ReLU output model trained full batch on T samples, T x m grid).
Four figures: the test loss against T for each m (the double-descent bump); data-point
and feature dimensionality against T at m = 2 (the crossover from storing data points
to storing features); the 2-D hidden vectors of the training points and the feature
directions at small, middle and large T (m = 2); the test loss over the (T, m) map.
The finite-data paper reports, at m = 2, T-gons of training points for small T, five
features in a pentagon for large T, and weight and hidden-vector norms peaking near
T = 30 with the test-loss bump at the transition, moving to larger T as m grows.
"""

import matplotlib.pyplot as plt
import numpy as np

from geomtoy.viz import plot

SWEEPS = ["double_descent"]
"""The sweeps this figure reads (the Makefile's rules come from this list)."""
FIGURE = "fig_double_descent"  # the first image it writes: its Make target
(SWEEP,) = SWEEPS


def _grid(res, column):
    """{m: (T values, per-seed values (len(T), seeds))} of an instance column."""
    T, m, v = (res.column(c) for c in ("n_samples", "model.n_hidden", column))
    out = {}
    for mi in np.unique(m):
        Ts = np.unique(T[m == mi])
        out[int(mi)] = (Ts, [v[(m == mi) & (T == t)] for t in Ts])
    return out


def bump(Ts, loss) -> float | None:
    """T at the highest interior local maximum of the median test loss, or None."""
    med = np.asarray([np.median(x) for x in loss])
    peaks = [i for i in range(1, len(med) - 1) if med[i] > med[i - 1] and med[i] > med[i + 1]]
    return float(Ts[max(peaks, key=lambda i: med[i])]) if peaks else None


def crossover(Ts, samples, features) -> float | None:
    """First T (log-interpolated) where the median largest feature dimensionality
    exceeds the median largest data-point dimensionality."""
    d = np.log(np.asarray([np.median(f) for f in features]))
    d -= np.log(np.asarray([np.median(s) for s in samples]))
    for i in range(1, len(d)):
        if d[i - 1] < 0 <= d[i]:
            a, b = np.log(Ts[i - 1]), np.log(Ts[i])
            return float(np.exp(a + (b - a) * (-d[i - 1]) / (d[i] - d[i - 1])))
    return None


def _fmt(t) -> str:
    return "none" if t is None else f"{t:.0f}"


def loss_figure(res, args) -> dict:
    test, train = _grid(res, "test_loss"), _grid(res, "train_loss")
    fig, ax = plt.subplots(figsize=(5.2, 3.4), layout="constrained")
    colors = plt.cm.viridis(np.linspace(0, 0.85, len(test)))
    bumps = {}
    for c, (m, (Ts, loss)) in zip(colors, test.items()):
        ax.plot(Ts, [np.median(x) for x in loss], "-o", color=c, ms=3, label=f"test, m = {m}")
        ax.plot(Ts, [np.median(x) for x in train[m][1]], ":", color=c, lw=1)
        for t, x in zip(Ts, loss):
            ax.scatter(np.full(len(x), t), x, color=c, s=4, alpha=0.4)
        bumps[m] = bump(Ts, loss)
        if bumps[m] is not None:
            ax.axvline(bumps[m], color=c, lw=0.6, ls="--")
    ax.set_xscale("log")
    ax.set_xlabel("training set size T")
    ax.set_ylabel("loss per sample (test solid, train dotted)")
    ax.legend(fontsize=6)
    ax.set_title("Double descent in the training set size", fontsize=8)
    numbers = "T at the test-loss bump: " + ", ".join(f"m={m}: {_fmt(t)}" for m, t in bumps.items())
    plot.save(
        fig,
        args.out,
        "fig_double_descent",
        title="Double descent: test loss against T",
        section="finite training sets",
        caption="Median test loss (solid, seeds as dots) and final full-batch training loss "
        "(dotted) against the training set size T for each hidden width m; dashed lines mark "
        "the bump (the highest interior local maximum of the median test loss).",
        numbers=numbers + "; paper: the bump sits at the memorization-to-features transition "
        "(norms peak near T = 30 at m = 2) and moves to larger T as m grows",
        sweeps=[SWEEP],
    )
    return bumps


def _at_m(res, table, m: int):
    """Rows of the samples or features table belonging to instances with n_hidden = m."""
    inst = res.column("instance")[res.column("model.n_hidden") == m]
    T = dict(zip(res.column("instance"), res.column("n_samples")))
    ids = res.column("instance", table)
    keep = np.isin(ids, inst)
    return np.asarray([T[i] for i in ids[keep]]), res.column("dimensionality", table)[keep]


def dimensionality_figure(res, args, m: int = 2):
    samples, features = _grid(res, "sample_dim_max"), _grid(res, "feature_dim_max")
    Ts = samples[m][0]
    fig, ax = plt.subplots(figsize=(5.2, 3.4), layout="constrained")
    rng = np.random.default_rng(0)
    for table, color in (("samples", "C3"), ("features", "C0")):
        T, d = _at_m(res, table, m)
        ok = d > 1e-4
        jitter = np.exp(rng.uniform(-0.08, 0.08, ok.sum()))
        ax.scatter(T[ok] * jitter, d[ok], s=2, color=color, alpha=0.15, lw=0)
    ax.plot(
        Ts,
        [np.median(x) for x in samples[m][1]],
        "-o",
        color="C3",
        ms=3,
        label="largest D_X (training points)",
    )
    ax.plot(
        Ts,
        [np.median(x) for x in features[m][1]],
        "-o",
        color="C0",
        ms=3,
        label="largest D_i (features)",
    )
    ax.plot(Ts, m / Ts, ":", color="C3", lw=0.8, label="m / T (a T-gon)")
    ax.axhline(2 / 5, color="0.6", lw=0.6, ls="--")
    t_cross = crossover(Ts, samples[m][1], features[m][1])
    if t_cross is not None:
        ax.axvline(t_cross, color="k", lw=0.6, ls="--")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_ylim(1e-4, 1.2)
    ax.set_xlabel("training set size T")
    ax.set_ylabel("dimensionality")
    ax.legend(fontsize=6, loc="lower left")
    ax.set_title(f"m = {m}: from storing data points to storing features", fontsize=8)
    plot.save(
        fig,
        args.out,
        "fig_dd_dimensionality",
        title="Data-point and feature dimensionality against T",
        section="finite training sets",
        caption="Every training point's D_X (red dots) and feature's D_i (blue dots) at "
        f"m = {m}, with the medians over seeds of the largest of each (lines); the dashed "
        "line marks the crossover, the grey line 2/5.",
        numbers=f"crossover at T = {_fmt(t_cross)} (m = {m}); paper: the same crossover, "
        "with the norms' peak near T = 30",
        sweeps=[SWEEP],
    )
    return t_cross


def _best(res, m: int, T: int) -> int:
    """The lowest-test-loss instance at (m, T)."""
    sel = (res.column("model.n_hidden") == m) & (res.column("n_samples") == T)
    ids = res.column("instance")[sel]
    return int(ids[np.argmin(res.column("test_loss")[sel])])


def names_per_T(res, m: int = 2) -> str:
    """What the geometry module names at every T (lowest-test-loss seed, width m): the
    features' summary and the training points' ("-" where T is too large to label)."""
    Ts = np.unique(res.column("n_samples")[res.column("model.n_hidden") == m])
    terms = []
    for T in Ts:
        i = _best(res, m, T)
        points = res.column("sample_geometry")[i] or "-"
        terms.append(f"T = {T}: features {res.column('geometry')[i]}, points {points}")
    return "; ".join(terms)


def hidden_figure(res, args, m: int = 2):
    Ts = np.unique(res.column("n_samples")[res.column("model.n_hidden") == m])
    chosen = sorted({Ts[0], Ts[min(1, len(Ts) - 1)], Ts[len(Ts) // 2], Ts[-1]})
    fig, axes = plt.subplots(
        2, len(chosen), figsize=(2 * len(chosen), 4.2), layout="constrained", squeeze=False
    )
    ids = res.column("instance", "samples")
    for col, T in enumerate(chosen):
        i = _best(res, m, T)
        W = res.params["W"][i, :m]
        W = W[:, np.isfinite(W).all(axis=0)]
        norm = np.linalg.norm(W, axis=0)
        strong = np.argsort(norm)[::-1][: min(len(norm), 40)]
        lim = 1.2 * max(norm.max(), 1e-6)
        plot.draw_features_2d(axes[0, col], W[:, strong], ["C0"] * len(strong), lim=lim)
        geometry = res.column("geometry")[i]
        axes[0, col].set_title(f"T = {T}: features\n{geometry}", fontsize=7)
        rows = ids == i
        H = np.stack([res.column(f"hidden_{j}", "samples")[rows] for j in range(m)])
        lim = 1.2 * max(np.linalg.norm(H, axis=0).max(), 1e-6)
        ax = axes[1, col]
        if H.shape[1] <= 40:
            plot.draw_features_2d(ax, H, ["C3"] * H.shape[1], lim=lim)
        else:
            plot.draw_features_2d(ax, H[:, :0], [], lim=lim)
            ax.scatter(H[0], H[1], s=2, color="C3", alpha=0.4, lw=0)
        label = res.column("sample_geometry")[i] or "not labelled"
        ax.set_title(f"training points h = W x\n{label}", fontsize=7)
    fig.suptitle(f"m = {m}: hidden vectors of the training set and feature directions", fontsize=8)
    plot.save(
        fig,
        args.out,
        "fig_dd_hidden",
        title="Hidden vectors of training points and features (m = 2)",
        section="finite training sets",
        caption="Lowest-test-loss seed at two small, a middle and a large T: the 40 longest "
        "feature directions W_i (top) and the training points' hidden vectors W x (bottom), "
        "with the geometry module's labels (polytopes read from directions; training points "
        "shorter than half the longest are left out).",
        numbers="named per T (best seed): " + names_per_T(res, m) + "; paper: T-gons of "
        "training points at small T, a pentagon of features at large T",
        sweeps=[SWEEP],
    )


def map_figure(res, args, bumps: dict):
    test = _grid(res, "test_loss")
    ms = sorted(test)
    Ts = np.unique(res.column("n_samples"))
    grid = np.full((len(ms), len(Ts)), np.nan)
    for r, m in enumerate(ms):
        for t, x in zip(*test[m]):
            grid[r, np.searchsorted(Ts, t)] = np.median(x)
    fig, ax = plt.subplots(figsize=(5.2, 2.8), layout="constrained")
    mesh = ax.pcolormesh(np.arange(len(Ts) + 1), np.arange(len(ms) + 1), grid, cmap="magma")
    fig.colorbar(mesh, ax=ax, label="median test loss")
    for r, m in enumerate(ms):
        if bumps.get(m) is not None:
            ax.scatter(np.searchsorted(Ts, bumps[m]) + 0.5, r + 0.5, marker="x", color="cyan")
    ax.set_xticks(np.arange(len(Ts)) + 0.5, [str(t) for t in Ts], fontsize=6, rotation=45)
    ax.set_yticks(np.arange(len(ms)) + 0.5, [str(m) for m in ms], fontsize=6)
    ax.set_xlabel("training set size T")
    ax.set_ylabel("hidden dimensions m")
    plot.save(
        fig,
        args.out,
        "fig_dd_map",
        title="Test loss over training set size and width",
        section="finite training sets",
        caption="Median test loss over seeds for every (T, m); crosses mark each m's bump.",
        numbers="bump T per m: "
        + ", ".join(f"{m}: {_fmt(bumps.get(m))}" for m in ms)
        + "; paper: the spike moves to larger T as m grows",
        sweeps=[SWEEP],
    )


def main():
    args = plot.figure_args(__doc__)
    res = plot.load(args.results, SWEEP)
    bumps = loss_figure(res, args)
    if 2 in bumps:
        dimensionality_figure(res, args)
        hidden_figure(res, args)
    map_figure(res, args, bumps)


if __name__ == "__main__":
    main()
