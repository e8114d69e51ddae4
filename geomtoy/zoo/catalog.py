"""The zoo's entries: each names the bundled sweep, scale and --set overrides that trains it,
and which of its models it keeps. Stated once here; `geomtoy.zoo.build` trains them and the
shipped provenance (`ZooModel.provenance`) repeats them with what the run measured."""

from __future__ import annotations

import dataclasses

ZOO_VERSION = 1
"""Raised whenever an entry's models change (a new recipe, a new geomtoy training result)."""


@dataclasses.dataclass(frozen=True)
class Entry:
    """A reference set of models: the best seed of each grid point of a sweep run, or of
    the points whose `where` axis values match.

    name: what `geomtoy.zoo.load` takes. sweep, scale, sets: the bundled sweep, its scale
    and the `--set` overrides of the run (`geomtoy run SWEEP --scale SCALE --set ...`).
    where: {axis key: value} keeping only those grid points (None: every point).
    section: where the paper shows this geometry. description: what the models are.
    """

    name: str
    sweep: str
    scale: str
    sets: tuple[str, ...] = ()
    where: dict | None = None
    section: str = ""
    description: str = ""

    @property
    def command(self) -> str:
        """The command line that trains the run this entry's models come from."""
        sets = "".join(f" --set '{s}'" for s in self.sets)
        return f"geomtoy run {self.sweep} --scale {self.scale}{sets}"


FEATURE_GEOMETRY_DENSITIES = (0.7, 0.4, 0.2)
"""1 - S of the n = 200, m = 20 entry: 1/(1-S) = 1.4, 2.5 and 5, across the paper's range of
polytopes (§5.1); the full 20-density recipe takes half an hour on a CPU."""

ENTRIES = (
    Entry(
        "pentagon",
        "pentagon",
        "default",
        section="§5.2 (check C9)",
        description="n=5, m=2, uniform importance, 1-S = 0.05: a regular pentagon "
        "(D_i = 2/5), the best of 20 seeds",
    ),
    Entry(
        "uniform_40x10",
        "uniform_40x10",
        "default",
        section="follow-up (the toy models of sae_uniform)",
        description="n=40, m=10, uniform importance, 6 densities 0.5 .. 0.04: the best "
        "seed of each, from 10 antipodal digons to mixtures of polytopes",
    ),
    Entry(
        "abs_3x6",
        "abs_3x6",
        "default",
        where={"data.feature_probability": 0.3},
        section="§9 (check C14)",
        description="abs model, n=3, m=6, 1-S = 0.3: a ReLU(x_i) and a ReLU(-x_i) "
        "neuron for every feature, the best of 4 seeds",
    ),
    Entry(
        "feature_geometry",
        "feature_geometry",
        "default",
        sets=(
            "grid.data.feature_probability="
            + "["
            + ", ".join(str(p) for p in FEATURE_GEOMETRY_DENSITIES)
            + "]",
        ),  # fmt: skip
        section="§5.1 (figure 5)",
        description="n=200, m=20, uniform importance, the notebook's recipe at "
        "1-S = 0.7, 0.4, 0.2: features of D_i ~ 0.7 (between triangles and tetrahedra), "
        "antipodal digons (D_i = 1/2), then pentagons beside digons (D_i ~ 2/5)",
    ),
)

BY_NAME = {e.name: e for e in ENTRIES}
