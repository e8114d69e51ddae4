"""Figure 11 (paper §7): superposition and adversarial vulnerability.

Sweep uniform_superposition (the §5.1 models). For the best seed at each sparsity, the
analytic optimal L2 attack per feature (delta_i = lambda (W^T W)_i / ||(W^T W)_i||,
lambda = 0.1 x the mean input norm) is applied to a shared batch of sparse inputs and
the worst feature's loss increase is divided by that of the model without superposition
(top-m features dedicated, the others' mean as bias; geomtoy.geometry.adversarial).
Beside it, the features per dimension ||W||_F^2 / m: vulnerability tracks it.
"""

import matplotlib.pyplot as plt
import numpy as np

from geomtoy.geometry import adversarial
from geomtoy.viz import plot

SWEEPS = ["uniform_superposition"]
"""The sweeps this figure reads (the Makefile's rules come from this list)."""
FIGURE = "fig_adversarial"  # the first image it writes: its Make target
P = "data.feature_probability"


def main():
    args = plot.figure_args(__doc__)
    res = plot.load(args.results, SWEEPS[0])
    rows = plot.best_rows(res, [P])
    ps = sorted(rows, reverse=True)
    importance = plot.per_feature(res, "importance")
    W, b = res.params["W"], res.params["b"]
    rel, fpd = [], []
    for p in ps:
        i = rows[p]
        probs = np.full(W.shape[2], p[0])
        rel.append(adversarial.vulnerability(W[i], b[i], importance[i], probs, n_samples=4000)[2])
        fpd.append(adversarial.features_per_dimension(W[i]))
    x = 1.0 / np.array([p[0] for p in ps])
    rel, fpd = np.array(rel), np.array(fpd)

    fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 3.8), layout="constrained")
    a1.plot(x, rel, "o-", color="#c33", label="vulnerability (relative to no superposition)")
    a1.set_xscale("log")
    a1.set_xlabel("1 / (1 - S)")
    a1.set_ylabel("relative vulnerability", color="#c33")
    twin = a1.twinx()
    twin.plot(x, fpd, "s--", color="#36c", label="features per dimension")
    twin.set_ylabel("features per dimension ||W||_F^2 / m", color="#36c")
    a1.set_title("worst single-feature L2 attack, norm 0.1 x mean ||x||")
    a2.scatter(fpd, rel, c=np.log(x), cmap="viridis")
    a2.set_xlabel("features per dimension ||W||_F^2 / m")
    a2.set_ylabel("relative vulnerability")
    corr = float(np.corrcoef(fpd, rel)[0, 1]) if len(rel) > 2 else float("nan")
    a2.set_title(f"correlation {corr:.2f}")
    numbers = (
        f"relative vulnerability {rel.min():.2f} .. {rel.max():.2f} "
        f"(x{rel.max() / max(rel.min(), 1e-12):.1f}); features per dimension "
        f"{fpd.min():.2f} .. {fpd.max():.2f}; correlation {corr:.2f}"
    )
    plot.save(
        fig,
        args.out,
        "fig_adversarial",
        title="Superposition and adversarial vulnerability",
        section="§7",
        caption="Vulnerability to the analytic optimal L2 attack (relative to a "
        "model without superposition) rises with sparsity and tracks features per dimension.",
        numbers=numbers,
        sweeps=SWEEPS,
    )


if __name__ == "__main__":
    main()
