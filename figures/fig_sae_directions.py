"""SAE decoder directions over the pentagon's features (m = 2), as ARENA draws them.

Sweep sae_pentagon: SAEs of two widths and an L1 grid read the hidden activations h = W x
of the best trained pentagon. Each panel draws the toy model's five features (coloured
arrows) and the SAE's unit decoder columns (black; grey dotted: dead latents) for the
first seed; the title gives the smallest feature recovery (best decoder cosine) and L0.
"""

import matplotlib.pyplot as plt
import numpy as np

from geomtoy.viz import plot

SWEEPS = ["pentagon", "sae_pentagon"]
"""The sweeps this figure reads (the Makefile's rules come from this list)."""
FIGURE = "fig_sae_directions"  # the first image it writes: its Make target


def main():
    args = plot.figure_args(__doc__)
    res = plot.load(args.results, SWEEPS[1])
    P = res.params
    widths = sorted(set(res.column("sae.width")))
    l1s = sorted(set(res.column("sae.l1_coefficient")))
    width, l1, seed = res.column("sae.width"), res.column("sae.l1_coefficient"), res.column("seed")
    rec = plot.per_feature(res, "recovery")
    l0, dead = res.column("l0"), res.column("dead")
    fig, axes = plt.subplots(
        len(widths), len(l1s), figsize=(1.7 * len(l1s), 1.9 * len(widths)),
        layout="constrained", squeeze=False,
    )  # fmt: skip
    colors = plt.cm.tab10(np.arange(P["W"].shape[2]))
    best = {}
    for r, w in enumerate(widths):
        for c, a in enumerate(l1s):
            ax = axes[r, c]
            rows = np.flatnonzero((width == w) & (l1 == a))
            i = rows[np.argmin(seed[rows])]
            W = P["W"][i]
            lim = 1.15 * max(1.0, np.linalg.norm(W, axis=0).max())
            plot.draw_features_2d(ax, W, colors, lim=lim)
            D = P["W_dec"][i][:, : int(P["width"][i])]
            for j in range(D.shape[1]):
                live = P["frequency"][i, j] > 0
                style = dict(color="k", lw=0.8) if live else dict(color="0.6", lw=0.8, ls=":")
                ax.plot([0, D[0, j]], [0, D[1, j]], **style)
            ax.set_title(f"width {w}, L1 {a:.3g}\nmin cos {np.nanmin(rec[i]):.3f}, L0 {l0[i]:.2f}",
                         fontsize=6)  # fmt: skip
            best[(w, a)] = np.nanmin(rec[rows], axis=1).max()
    good = [k for k, v in best.items() if v > 0.99]
    numbers = (
        f"all five features above cos 0.99 (best of {seed.max() + 1} seeds) at "
        + (", ".join(f"width {w} L1 {a:.3g}" for w, a in good) if good else "no grid point")
        + f"; dead latents per SAE {dead.min()}-{dead.max()}"
    )
    fig.suptitle("Pentagon (n=5, m=2): toy features (colour) and SAE decoder columns (black)",
                 fontsize=8)  # fmt: skip
    plot.save(
        fig, args.out, "fig_sae_directions", title="SAE decoder directions on the pentagon",
        section="follow-up: SAEs on toy models",
        caption="Decoder columns of ReLU+L1 SAEs trained on the pentagon's hidden activations, "
        "drawn over its five features; rows: width, columns: L1 coefficient.",
        numbers=numbers, sweeps=SWEEPS,
    )  # fmt: skip


if __name__ == "__main__":
    main()
