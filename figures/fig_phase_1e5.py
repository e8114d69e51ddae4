"""Figure 3 at 10^5 models (paper §4): the n=2, m=1 phase diagram on a 1,000 x 100 grid.

Sweep phase_2x1_1e5: one model per point, the extra feature's relative importance r
(100 values, log 0.1 .. 10) against the density 1-S (1,000 values, log 1 .. 0.01).
Colours as in fig_phase (blue: the extra feature dedicated, red: in superposition, grey:
not represented), the theory's boundaries p = 4r/(2+5r) and 4/(5+2r) dashed; at this
resolution the boundary of the trained diagram can be read against the theory's.
"""

import sys
from pathlib import Path

import matplotlib.pyplot as plt

from geomtoy.geometry import theory
from geomtoy.viz import plot

sys.path.insert(0, str(Path(__file__).resolve().parent))  # fig_phase, beside this script
from fig_phase import agreement, draw_boundary, edges, empirical, setup  # noqa: E402

SWEEPS = ["phase_2x1_1e5"]
"""The sweeps this figure reads (the Makefile's rules come from this list)."""
FIGURE = "fig_phase_1e5"  # the first image it writes: its Make target
IN_GALLERY = False  # its own target, `make phase-1e5` (10^5 models)
(SWEEP,) = SWEEPS


def main():
    args = plot.figure_args(__doc__)
    res = plot.load(args.results, SWEEP)
    rs, ps, image = empirical(res)
    fig, ax = plt.subplots(figsize=(6, 5.5), layout="constrained")
    ax.pcolormesh(edges(rs), edges(ps[::-1]), image[::-1], shading="flat", rasterized=True)
    draw_boundary(ax, theory.boundary_n2m1)
    setup(ax, f"trained, n=2, m=1: {len(res.column('loss')):,} models ({len(rs)}x{len(ps)})")
    agree, total = agreement(res, theory.phase_n2m1, theory.boundary_n2m1)
    steps = res.meta["spec"]["train"]["steps"]
    plot.save(
        fig,
        args.out,
        "fig_phase_1e5",
        title="Superposition as a phase change, 10^5 models",
        section="§4",
        caption="The n=2, m=1 phase diagram at 1,000 densities x 100 relative importances, "
        f"one model each ({steps:,} steps): colour = superposition of the extra feature (blue "
        "0 .. red 1), saturation = its norm; dashed: the theory's boundaries.",
        numbers=f"the extra feature is in the theory's state at {agree:,}/{total:,} points "
        "farther than x2 from the boundaries",
        sweeps=[SWEEP],
    )


if __name__ == "__main__":
    main()
