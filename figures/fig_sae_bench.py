"""SAE architectures compared at matched L0 on a SynthSAEBench-like source.

Sweep sae_bench: ReLU+L1, TopK, BatchTopK, JumpReLU and Matryoshka-BatchTopK SAEs read a
synthbench source (Zipfian firing, low-rank correlation, a hierarchy of mutually exclusive
children, geomtoy.sae.source). `sae.target_l0` sets k or steers the sparsity coefficient,
so the architectures land at the same L0. Left: F1 (each latent as a detector of its best
true feature, mean over latents); right: MCC (Hungarian one-to-one matching of latents to
true features, mean |cosine|). The x axis is the measured L0 over the source's true L0
(its mean number of active true features, read from the results), so that sources of
different sizes share one axis: SynthSAEBench-16k's published values at L0 = 25 on a
source of true L0 34 (Chanin and Garriga-Alonso 2026; stars) sit at 25 / 34 = 0.74, where
the sweep's middle target lies. Points are seed means, bars the spread over seeds (one
standard deviation).
"""

import matplotlib.pyplot as plt
import numpy as np

from geomtoy.viz import plot

SWEEPS = ["sae_bench"]
"""The sweeps this figure reads (the Makefile's rules come from this list)."""
FIGURE = "fig_sae_bench"  # the first image it writes: its Make target

ARCHITECTURES = (  # (sae.activation, label, colour, published F1, published MCC)
    ("relu", "ReLU + L1", "C0", 0.556, 0.604),
    ("topk", "TopK", "C1", None, None),
    ("batchtopk", "BatchTopK", "C2", 0.732, 0.757),
    ("jumprelu", "JumpReLU", "C3", 0.732, 0.753),
    ("matryoshka_batchtopk", "Matryoshka-BatchTopK", "C4", 0.879, 0.793),
)
PUBLISHED_L0, PUBLISHED_TRUE_L0 = 25.0, 34.0
STAR_SPREAD = 0.006
"""Stars are spread this far apart along x around 25 / 34, so that equal published values
(BatchTopK's and JumpReLU's F1, 0.732) stay visible."""


def points(res, activation: str, score: str):
    """(L0 / true L0 mean, score mean, score std, L0 mean, dead mean) per target L0, in
    target order."""
    act = res.column("sae.activation")
    target = res.column("sae.target_l0") if "sae.target_l0" in res.instances.column_names else None
    keep = act == activation
    targets = np.unique(target[keep]) if target is not None else [None]
    out = []
    for t in targets:
        rows = keep if t is None else keep & (target == t)
        l0, y = res.column("l0")[rows], res.column(score)[rows]
        x = l0 / res.column("true_l0")[rows]
        spread = y.std(ddof=1) if len(y) > 1 else 0.0
        out.append((x.mean(), y.mean(), spread, l0.mean(), res.column("dead")[rows].mean()))
    return np.array(out).reshape(-1, 5)


def main():
    args = plot.figure_args(__doc__)
    res = plot.load(args.results, SWEEPS[0])
    true_l0 = float(np.mean(res.column("true_l0")))
    matched = PUBLISHED_L0 / PUBLISHED_TRUE_L0
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.4), layout="constrained")
    numbers = []
    for i, (activation, label, colour, f1_pub, mcc_pub) in enumerate(ARCHITECTURES):
        star = matched + STAR_SPREAD * (i - (len(ARCHITECTURES) - 1) / 2)
        for ax, score, pub in zip(axes, ("f1", "mcc"), (f1_pub, mcc_pub)):
            p = points(res, activation, score)
            if not len(p):
                continue
            ax.errorbar(p[:, 0], p[:, 1], yerr=p[:, 2], fmt="o-", ms=4, color=colour,
                        label=label, capsize=2)  # fmt: skip
            if pub is not None:
                ax.plot([star], [pub], "*", ms=11, color=colour, mec="k", mew=0.5)
        f1, mcc = points(res, activation, "f1"), points(res, activation, "mcc")
        if not len(f1):
            continue
        near = int(np.argmin(np.abs(f1[:, 0] - matched)))
        numbers.append(f"{label}: F1 {f1[near, 1]:.3f} MCC {mcc[near, 1]:.3f} at L0 "
                       f"{f1[near, 3]:.2f} ({f1[near, 0]:.2f} of true L0), dead "
                       f"{f1[near, 4]:.1f}")  # fmt: skip
    for ax, name in zip(axes, ("F1 (latents as feature detectors)", "MCC (one-to-one |cos|)")):
        ax.set_xlabel("L0 / true L0 of the source (latents per active true feature)")
        ax.set_ylabel(name)
        ax.set_ylim(0, 1.02)
        ax.axvline(matched, color="0.5", ls=":", lw=1)
    axes[0].legend(fontsize=7, loc="lower right")
    n, m = res.params["W"].shape[2], res.params["W"].shape[1]
    width = int(res.params["width"][0])
    fig.suptitle(f"SAEs of width {width} on a SynthSAEBench-like source ({n} features in "
                 f"{m} dims, true L0 {true_l0:.2f}); stars: published SynthSAEBench-16k "
                 f"at L0 25 of 34 (dotted)", fontsize=8)  # fmt: skip
    plot.save(
        fig, args.out, FIGURE, title="SAE architectures at matched L0 (SynthSAEBench-like)",
        section="follow-up: SAEs on toy models",
        caption="F1 and MCC against L0 over the source's true L0 for ReLU+L1, TopK, "
        "BatchTopK, JumpReLU and Matryoshka-BatchTopK SAEs at matched L0; stars mark "
        "SynthSAEBench-16k's published values at the same L0 / true L0 (25 / 34).",
        numbers="; ".join(numbers), sweeps=SWEEPS,
    )  # fmt: skip


if __name__ == "__main__":
    main()
