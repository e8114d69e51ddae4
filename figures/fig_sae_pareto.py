"""SAE feature recovery against L0: Pareto fronts across the L1 coefficient and across k.

Sweeps sae_pareto_l1 (ReLU+L1 over the L1 coefficient) and sae_pareto_k (TopK and
BatchTopK over k) train SAEs of width 40 on a synthetic dictionary of 40 unit directions
in 10 dimensions with feature probability 0.05 (about 2 active features per sample).
Left: mean max cosine (MMCS) of the true features to the decoder against the SAE's L0;
right: the share of features recovered above cosine 0.9. Points are seed means, joined
in order of L1 or k; the dotted line marks the true L0 (n p).
"""

import matplotlib.pyplot as plt
import numpy as np

from geomtoy.viz import plot

SWEEPS = ["sae_pareto_l1", "sae_pareto_k"]
"""The sweeps this figure reads (the Makefile's rules come from this list)."""
FIGURE = "fig_sae_pareto"  # the first image it writes: its Make target


SERIES = (  # (sweep, activation, axis key, label, colour)
    ("sae_pareto_l1", "relu", "sae.l1_coefficient", "ReLU + L1 (over L1)", "C0"),
    ("sae_pareto_k", "topk", "sae.k", "TopK (over k)", "C1"),
    ("sae_pareto_k", "batchtopk", "sae.k", "BatchTopK (over k)", "C2"),
)


def front(res, activation: str, key: str):
    """(axis values, mean L0, mean MMCS, mean share > 0.9) per grid value, in axis order."""
    act = res.column("sae.activation") if "sae.activation" in res.instances.column_names else None
    keep = np.ones(res.instances.num_rows, bool) if act is None else act == activation
    values = res.column(key)[keep]
    cols = {c: res.column(c)[keep] for c in ("l0", "mmcs", "recovered_0.9")}
    xs = np.unique(values)
    return xs, *(np.array([cols[c][values == x].mean() for x in xs]) for c in cols)


def main():
    args = plot.figure_args(__doc__)
    fig, axes = plt.subplots(1, 2, figsize=(8, 3.2), layout="constrained")
    numbers = []
    true_l0 = None
    for sweep, activation, key, label, colour in SERIES:
        res = plot.load(args.results, sweep)
        xs, l0, mmcs, share = front(res, activation, key)
        if not len(xs):
            continue
        p = res.meta["spec"]["source"].get("feature_probability", 0.05)
        true_l0 = np.mean(p) * res.params["W"].shape[2]
        for ax, y in zip(axes, (mmcs, share)):
            ax.plot(l0, y, "o-", color=colour, label=label, ms=4)
        best = int(np.argmax(mmcs))
        numbers.append(f"{label}: best MMCS {mmcs[best]:.3f} at L0 {l0[best]:.2f}")
    for ax, name in zip(axes, ("MMCS (mean max cosine)", "share of features with cosine > 0.9")):
        ax.set_xscale("log")
        ax.set_xlabel("L0 (active latents per sample)")
        ax.set_ylabel(name)
        ax.set_ylim(0, 1.02)
        if true_l0:
            ax.axvline(true_l0, color="0.5", ls=":", lw=1)
    axes[0].legend(fontsize=7)
    fig.suptitle("SAEs on a synthetic dictionary (40 directions in 10 dims, p = 0.05)", fontsize=9)
    plot.save(
        fig, args.out, "fig_sae_pareto", title="SAE feature recovery against L0",
        section="follow-up: SAEs on toy models",
        caption="Recovery of the true dictionary against L0 for ReLU+L1 SAEs across L1 and "
        "TopK / BatchTopK SAEs across k; dotted: the data's true L0.",
        numbers="; ".join(numbers), sweeps=SWEEPS,
    )  # fmt: skip


if __name__ == "__main__":
    main()
