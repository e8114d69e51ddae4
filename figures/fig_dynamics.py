"""Learning dynamics (paper §6): "energy level" jumps and geometric transformations.

fig_dynamics, phenomenon 1, discrete "energy level" jumps.

Sweep dynamics_digons: the uniform superposition setup (§5.1) at a density where the
features end as antipodal pairs, with the weights of every seed recorded at the end of
every chunk (train.snapshots; curves.npz snapshot_W). For one seed whose represented
features all end as digons, the top panel draws every feature's dimensionality D_i over
training (geomtoy.geometry.feature_dimensionality of each snapshot; log step axis), the
bottom panel the training loss of each chunk on the same axis, and the shaded spans
are the jumps found in the D_i curves (below), each annotated with the loss drop across
it. The right panel shows the loss of every seed, coloured by its final geometry.

A jump of one feature is a monotone run of its D_i curve (resampled at 40 points per
decade of steps; steps of less than 0.01 are flat, one flat point may interrupt a run)
that changes D_i by at least 0.15. Jumps of different features that overlap in time
form one event; the loss drop of an event is the mean loss in the 15% of steps (log)
before it minus the mean in the 15% after. The first event is the initial organisation
of the features; the paper's jumps are the later ones. Among the seeds whose features
all end as digons, the figure shows the one with the most events (ties: lowest loss).

fig_dynamics_correlated, phenomenon 2, learning as geometric transformations. Sweep
dynamics_correlated_6x3: n=6 features in m=3 dimensions as 2 sets of 3 correlated
features. The top row draws W^T W (red +1, blue -1; features in set order) at six
log-spaced snapshot steps of one seed; below, on a shared log step axis, the mean
cosine between features of the same set, the mean over features of the most negative
cosine to a feature of the other set, and the training loss. A seed ends as the paper's
"cross-set octahedron" when its 6 features form 3 antipodal pairs (cosine < -0.9,
norms > 0.5), each pair made of features from different sets, with features of one set
orthogonal (|cosine| < 0.1). The figure shows the lowest-loss such seed of the grid
point with the most of them.
"""

import matplotlib.pyplot as plt
import numpy as np

from geomtoy.geometry.dynamics import (
    all_digons,
    dimensionality_over_training,
    events,
    feature_jumps,
)
from geomtoy.geometry.sets import cosines, cross_set_octahedron, set_cosines
from geomtoy.viz import plot

SWEEPS = ["dynamics_digons", "dynamics_correlated_6x3"]
"""The sweeps this figure reads (the Makefile's rules come from this list)."""
FIGURE = "fig_dynamics"  # the first image it writes: its Make target
SWEEP, SWEEP_CORRELATED = SWEEPS


def describe(e: dict) -> str:
    moves = ", ".join(f"f{j['feature']} {j['before']:.2f}>{j['after']:.2f}" for j in e["jumps"][:4])
    more = f" +{len(e['jumps']) - 4}" if len(e["jumps"]) > 4 else ""
    return f"steps {e['start']:.0f}-{e['end']:.0f}: {moves}{more}; loss -{e['loss_drop']:.4f}"


def main():
    args = plot.figure_args(__doc__)
    digons_figure(args, plot.load(args.results, SWEEP))
    correlated_figure(args, plot.load(args.results, SWEEP_CORRELATED))


def digons_figure(args, res) -> None:
    curves = res.curves
    steps = curves["snapshot_step"].astype(np.float64)
    loss = curves["loss"].astype(np.float64)  # (I, S): chunk == snapshot
    geometry = res.column("geometry").astype(str)
    final_loss = res.column("loss")
    n_features, n_hidden = res.params["n_features"], res.params["n_hidden"]
    I = len(geometry)

    D, ev = [], []
    for i in range(I):
        n, m = int(n_features[i]), int(n_hidden[i])
        D.append(dimensionality_over_training(curves["snapshot_W"][i, :, :m, :n]))
        ev.append(events(feature_jumps(D[i], steps), loss[i], steps))

    digon = np.array([all_digons(g) for g in geometry])
    pool = np.flatnonzero(digon) if digon.any() else np.arange(I)
    pick = min(pool, key=lambda i: (-len(ev[i]), final_loss[i], i))
    Di, Li, Ei = D[pick], loss[pick], ev[pick]
    n, m = int(n_features[pick]), int(n_hidden[pick])
    norms = np.linalg.norm(curves["snapshot_W"][pick, -1, :m, :n], axis=0)
    tail = Li[steps >= steps[-1] * 0.8]
    noise = float(np.std(np.diff(tail)) / np.sqrt(2)) if len(tail) > 2 else float("nan")

    fig = plt.figure(figsize=(10, 5.6), layout="constrained")
    grid = fig.add_gridspec(2, 2, width_ratios=[2.3, 1], height_ratios=[1.6, 1])
    ax_d = fig.add_subplot(grid[0, 0])
    ax_l = fig.add_subplot(grid[1, 0], sharex=ax_d)
    ax_all = fig.add_subplot(grid[:, 1])

    jumped = {j["feature"] for e in Ei[1:] for j in e["jumps"]}
    represented = norms > 0.5
    palette = plt.cm.tab10([0, 1, 2, 3, 4, 5, 6, 8, 9])  # no grey: grey is "not represented"
    c = 0
    for i in np.argsort(~represented, kind="stable"):
        if represented[i] or i in jumped:
            color, lw, z = palette[c % len(palette)], 1.8 if i in jumped else 0.9, 3
            c += 1
        else:
            color, lw, z = "#cfcfcf", 0.6, 1
        ax_d.plot(steps, Di[:, i], color=color, lw=lw, zorder=z)
    for y, text in ((2 / 3, "2/3"), (0.5, "1/2"), (0.0, "0")):
        ax_d.axhline(y, color="k", lw=0.5, ls="--", alpha=0.5, zorder=0)
        ax_d.text(steps[-1] * 1.08, y, text, fontsize=7, va="center")
    ax_d.set_ylabel("feature dimensionality D_i")
    ax_d.set_xscale("log")
    ax_d.set_ylim(-0.03, max(0.8, float(Di.max()) + 0.05))
    ax_d.set_title(
        f"seed {int(res.column('seed')[pick])} (instance {pick}): n={n}, m={m}, "
        f"ends as {geometry[pick]}\ncolour: represented at the end or in a later jump "
        f"(thick), grey: not represented",
        fontsize=8,
    )

    ax_l.plot(steps, Li, color="k", lw=0.8)
    lo = float(np.min(Li))
    hi = float(np.max(Li[steps >= Ei[0]["start"]])) if Ei else float(np.max(Li))
    pad = 0.08 * max(hi - lo, 1e-6)
    ax_l.set_ylim(lo - pad, hi + pad)
    ax_l.set_ylabel("training loss (per chunk)")
    ax_l.set_xlabel("step")
    for k, e in enumerate(Ei):
        for ax in (ax_d, ax_l):
            ax.axvspan(
                e["start"], e["end"], color="#ffd27f" if k else "#e6e6e6", alpha=0.5, lw=0, zorder=0
            )
        mid = np.sqrt(e["start"] * e["end"])
        ax_d.text(mid, ax_d.get_ylim()[1] * 0.97, str(k + 1), ha="center", va="top", fontsize=8)
        ax_l.text(
            mid,
            ax_l.get_ylim()[1],
            f"-{e['loss_drop']:.4f}",
            ha="center",
            va="bottom",
            fontsize=6.5,
        )

    colors = {True: "#d62728", False: "#1f77b4"}
    for i in range(I):
        ax_all.plot(
            steps,
            loss[i],
            color=colors[bool(digon[i])],
            lw=1.4 if i == pick else 0.5,
            alpha=1.0 if i == pick else 0.6,
            zorder=3 if i == pick else 2,
        )
    ax_all.plot([], [], color=colors[True], label="ends all digons")
    ax_all.plot([], [], color=colors[False], label="other end state")
    ax_all.set_xscale("log")
    ax_all.set_ylim(*ax_l.get_ylim())
    ax_all.set_xlabel("step")
    ax_all.set_title(f"training loss, all {I} seeds\n(thick: the seed at left)", fontsize=8)
    ax_all.legend(fontsize=7, loc="upper right")

    late = [(i, e) for i in range(I) for e in ev[i][1:]]
    pairings = [
        e
        for _, e in late
        if any(j["before"] < 0.1 and abs(j["after"] - 0.5) < 0.05 for j in e["jumps"])
    ]
    drops = np.array([e["loss_drop"] for e in pairings])
    seeds_late = len({i for i, _ in late})
    numbers = (
        f"shown: instance {pick} ({geometry[pick]}, final loss {final_loss[pick]:.4f}); "
        + (
            f"{len(Ei)} events: " + " | ".join(f"{k + 1}) {describe(e)}" for k, e in enumerate(Ei))
            if Ei
            else "no jumps found"
        )
        + f"; chunk-loss noise sd {noise:.5f}. "
        f"All seeds: {int(digon.sum())} of {I} end all digons; "
        f"{len(late)} events after the initial one, in {seeds_late} of {I} seeds; {len(pairings)} "
        f"of them bring a dropped feature (D_i < 0.1) to 1/2"
        + (f", loss drops {drops.min():.4f}-{drops.max():.4f}" if len(drops) else "")
        + "; final loss all-digon "
        + (f"{np.median(final_loss[digon]):.4f}" if digon.any() else "-")
        + ", other "
        + (f"{np.median(final_loss[~digon]):.4f}" if (~digon).any() else "-")
        + " (medians)"
    )
    plot.save(
        fig,
        args.out,
        "fig_dynamics",
        title="Learning dynamics: energy-level jumps",
        section="§6",
        caption="D_i of every feature over training (top) and the training loss (bottom) "
        "for a seed whose features end as digons; shaded: jumps of D_i (grey: the "
        "initial organisation), each with the loss drop across it. Right: loss of "
        "every seed by final geometry.",
        numbers=numbers,
        sweeps=[SWEEP],
    )
    print(numbers)


def correlated_figure(args, res) -> None:
    curves = res.curves
    steps = curves["snapshot_step"].astype(np.float64)
    loss = curves["loss"].astype(np.float64)
    final_loss = res.column("loss")
    point = res.column("point")
    set_size = int(res.meta["spec"]["data"].get("set_size", 1))
    W = curves["snapshot_W"]
    I = len(final_loss)
    octa = np.array([cross_set_octahedron(W[i, -1], set_size) for i in range(I)])
    points = np.unique(point)
    per_point = {int(p): (int(octa[point == p].sum()), int((point == p).sum())) for p in points}
    best_point = max(points, key=lambda p: (per_point[int(p)][0], -int(p)))
    pool = np.flatnonzero((point == best_point) & octa)
    pool = pool if len(pool) else np.flatnonzero(point == best_point)
    pick = min(pool, key=lambda i: (final_loss[i], i))
    within, across = set_cosines(W[pick], set_size)
    shown = sorted(
        {
            int(np.argmin(np.abs(np.log(steps) - t)))
            for t in np.linspace(np.log(steps[0]), np.log(steps[-1]), 6)
        }
    )
    peak = int(np.argmax(within))
    formed = np.flatnonzero([cross_set_octahedron(W[pick, s], set_size) for s in range(len(steps))])
    formed_at = None
    if len(formed) and formed[-1] == len(steps) - 1:  # the first step from which it stays
        gaps = np.flatnonzero(np.diff(formed) > 1)
        formed_at = int(formed[gaps[-1] + 1] if len(gaps) else formed[0])

    fig = plt.figure(figsize=(10, 6.2), layout="constrained")
    grid = fig.add_gridspec(3, len(shown), height_ratios=[1.05, 1.2, 1])
    letters = "abcdefgh"
    for k, s in enumerate(shown):
        ax = fig.add_subplot(grid[0, k])
        plot.gram_panel(ax, W[pick, s])
        ax.set_title(f"({letters[k]}) step {int(steps[s])}", fontsize=8)
        for x in np.arange(set_size, W.shape[-1], set_size) - 0.5:
            ax.axhline(x, color="k", lw=0.6)
            ax.axvline(x, color="k", lw=0.6)
    ax_c = fig.add_subplot(grid[1, :])
    ax_l = fig.add_subplot(grid[2, :], sharex=ax_c)
    ax_c.plot(steps, within, color="#d62728", label="within a set: mean cosine")
    ax_c.plot(
        steps,
        across,
        color="#1f77b4",
        label="across sets: mean of each feature's most negative cosine",
    )
    ax_c.axhline(0, color="k", lw=0.5)
    ax_c.axhline(-1, color="k", lw=0.5, ls="--")
    ax_c.set_ylim(-1.08, 1.0)
    ax_c.set_ylabel("cosine")
    ax_c.legend(fontsize=7, loc="upper left", bbox_to_anchor=(0.0, 0.9))
    ax_l.plot(steps, loss[pick], color="k", lw=0.8)
    ax_l.set_yscale("log")
    ax_l.set_xscale("log")
    ax_l.set_xlabel("step")
    ax_l.set_ylabel("training loss (per chunk)")
    for k, s in enumerate(shown):
        for ax in (ax_c, ax_l):
            ax.axvline(steps[s], color="#999", lw=0.6, ls=":")
        ax_c.text(steps[s], 0.93, letters[k], ha="center", fontsize=7, color="#555")
    if formed_at is not None:
        for ax in (ax_c, ax_l):
            ax.axvline(steps[formed_at], color="#2ca02c", lw=1.0)
        ax_c.text(
            steps[formed_at] * 1.05, -0.85, "cross-set octahedron", fontsize=7, color="#2ca02c"
        )
    fp = res.column("feature_probability", "features").reshape(I, -1)[:, 0]
    fig.suptitle(
        f"n=6, m=3, 2 correlated sets of 3, 1-S = {fp[pick]:g}: instance {pick} "
        f"(seed {int(res.column('seed')[pick])}), sets = features 0-2 and 3-5",
        fontsize=9,
    )

    C = cosines(W[pick, -1])
    sets = np.arange(W.shape[-1]) // set_size
    partner = np.argmin(C, axis=1)
    others = (sets[:, None] != sets[None, :]) & (np.arange(len(sets))[None, :] != partner[:, None])
    tilt = float(np.abs(C[others]).max())
    dropped = np.array([np.any(np.linalg.norm(W[i, -1], axis=0) <= 0.5) for i in range(I)])
    counts = "; ".join(
        f"1-S = {fp[point == p][0]:g}: {a} of {b}" for p, (a, b) in per_point.items()
    )
    numbers = (
        f"cross-set octahedron at the end in {int(octa.sum())} of {I} seeds ({counts}); "
        f"{int(dropped.sum())} seeds end with a feature dropped (norm <= 0.5). "
        f"Shown: instance {pick}, loss {final_loss[pick]:.3g}; within-set cosine "
        f"{within[0]:+.2f} at step {int(steps[0])}, peak {within[peak]:+.2f} at step "
        f"{int(steps[peak])}, {within[-1]:+.2f} at the end; across-set {across[0]:+.2f} -> "
        f"{across[-1]:+.2f}; octahedron from step "
        + (f"{int(steps[formed_at])}" if formed_at is not None else "- (not formed)")
        + f", pairs at cosine {C[np.arange(len(sets)), partner].max():+.3f} or below, other "
        f"cross-set |cosine| up to {tilt:.2f}"
        f"; training loss {loss[pick, 0]:.3g} -> {loss[pick, -1]:.3g}"
    )
    plot.save(
        fig,
        args.out,
        "fig_dynamics_correlated",
        title="Learning dynamics: geometric transformations",
        section="§6",
        caption="n=6, m=3, two sets of 3 correlated features: W^T W at six steps of one "
        "seed, the within-set and across-set cosines and the loss over training.",
        numbers=numbers,
        sweeps=[SWEEP_CORRELATED],
    )
    print(numbers)


if __name__ == "__main__":
    main()
