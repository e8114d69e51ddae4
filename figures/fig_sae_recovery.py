"""SAE feature recovery by the toy model's sparsity and by the polytope a feature sits in.

Sweep sae_uniform: TopK SAEs of width 80 read the best toy model (n = 40, m = 10) of each
density of sweep uniform_40x10. Left: the share of the toy model's represented features
that some decoder column matches above cosine 0.9, against 1 / (1 - S), one line per k.
Right: the same share for the features of each polytope label (all densities together):
are pentagon features harder to recover than digon features?
"""

import matplotlib.pyplot as plt
import matplotlib.ticker
import numpy as np

from geomtoy.viz import plot

SWEEPS = ["uniform_40x10", "sae_uniform"]
"""The sweeps this figure reads (the Makefile's rules come from this list)."""
FIGURE = "fig_sae_recovery"  # the first image it writes: its Make target


KEY = "toy.data.feature_probability"


def main():
    args = plot.figure_args(__doc__)
    res = plot.load(args.results, SWEEPS[1])
    k = res.column("sae.k")
    p = res.column(KEY)
    share = res.column("recovered_0.9")
    rec = plot.per_feature(res, "recovery")
    poly = plot.per_feature(res, "polytope").astype(str)
    fig, (left, right) = plt.subplots(1, 2, figsize=(8.5, 3.2), layout="constrained")
    ks = np.unique(k)
    for j, kk in enumerate(ks):
        rows = np.flatnonzero(k == kk)
        order = rows[np.argsort(p[rows])]
        left.plot(1 / p[order], share[order], "o-", ms=4, label=f"k = {kk}", color=f"C{j}")
    left.set_xscale("log")
    left.xaxis.set_major_formatter(matplotlib.ticker.ScalarFormatter())
    left.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    left.set_xlabel("1 / (1 - S) of the toy model")
    left.set_ylabel("share of features recovered (cos > 0.9)")
    left.set_ylim(0, 1.02)
    left.legend(fontsize=7)
    labels = [
        lab for lab in plot.POLYTOPE_COLORS if (poly == lab).any() and lab != "not_represented"
    ]
    width = 0.8 / max(len(ks), 1)
    numbers = []
    for j, kk in enumerate(ks):
        rows = k == kk
        for x, lab in enumerate(labels):
            mask = (poly == lab) & rows[:, None] & np.isfinite(rec)
            value = (rec[mask] > 0.9).mean() if mask.any() else np.nan
            right.bar(x + (j - (len(ks) - 1) / 2) * width, value, width,
                      color=plot.POLYTOPE_COLORS[lab], alpha=0.45 + 0.55 * j / max(len(ks) - 1, 1),
                      edgecolor="k", lw=0.4)  # fmt: skip
            if j == len(ks) - 1:
                numbers.append(f"{lab} {value:.2f} ({mask.sum()} features)")
    right.set_xticks(range(len(labels)), [lab.replace("_", " ") for lab in labels], fontsize=7)
    right.set_ylabel("share recovered (cos > 0.9)")
    right.set_ylim(0, 1.02)
    right.set_title(f"by polytope (bars: k = {', '.join(map(str, ks))})", fontsize=8)
    fig.suptitle("TopK SAEs (width 80) on n=40, m=10 toy models", fontsize=9)
    plot.save(
        fig, args.out, "fig_sae_recovery", title="SAE recovery by sparsity and by polytope",
        section="follow-up: SAEs on toy models",
        caption="Share of a toy model's represented features recovered by a TopK SAE, against "
        "the model's sparsity and by the polytope each feature belongs to.",
        numbers=f"largest k = {ks[-1]}: " + "; ".join(numbers),
        sweeps=SWEEPS,
    )  # fmt: skip


if __name__ == "__main__":
    main()
