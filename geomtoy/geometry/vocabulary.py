"""The polytope vocabulary: the one registry of the labels a tegum factor can carry.

Each entry is a uniform polytope of k unit vertices spanning d dimensions, every vertex
with feature dimensionality D = d/k (paper §5.1), with the colour and short label that figures
and the explorer show. Every other list of labels (figure reference lines, legends, the
gallery's tables, the explorer's payload) is derived from `POLYTOPES` and `LABELS`.

The entries are the reference lines of the paper's notebook: regular polygons in 2-D
(digon 1/2 is the 1-D case; triangle 2/3, pentagon 2/5, hexagon 2/6, heptagon 2/7,
octagon 2/8), regular simplices (tetrahedron 3/4, 4-simplex 4/5, 5-simplex 5/6) and 3-D
polytopes (square antiprism and cube 3/8, icosahedron 3/12, dodecahedron 3/20). Every
one is a tight frame (``V^T V = (k/d) I``). Configurations with orthogonal parts are
tegum products, not entries: a square in 2-D is two digons, an octahedron three digons,
a triangular bipyramid a triangle plus a digon.

NumPy only, so plotting and the explorer read it without starting JAX.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Mapping

import numpy as np

NOT_REPRESENTED = "not_represented"
OTHER = "other"


@dataclasses.dataclass(frozen=True, eq=False)
class Polytope:
    """A uniform polytope of the vocabulary: k unit vertices spanning d dimensions."""

    name: str
    vertices: np.ndarray  # (k, d), unit rows
    color: str = "#8c8c8c"
    short: str = ""  # label on crowded plots; the name when empty

    @property
    def n_vertices(self) -> int:
        return self.vertices.shape[0]

    @property
    def n_dims(self) -> int:
        return self.vertices.shape[1]

    @property
    def dimensionality(self) -> float:
        """D_i of each vertex, d/k (§5.1)."""
        return self.n_dims / self.n_vertices

    @property
    def fraction(self) -> str:
        """D as the notebook writes it, d/k unreduced (``"3/12"``)."""
        return f"{self.n_dims}/{self.n_vertices}"

    @functools.cached_property
    def gram(self) -> np.ndarray:
        """The ideal unit Gram matrix ``V V^T`` (k, k)."""
        return self.vertices @ self.vertices.T

    @functools.cached_property
    def row_cosines(self) -> np.ndarray:
        """Sorted cosines of one vertex to the k-1 others; the same for every vertex."""
        k = self.n_vertices
        rows = self.gram[~np.eye(k, dtype=bool)].reshape(k, k - 1)
        rows = np.sort(rows, axis=-1)
        if not np.allclose(rows, rows[:1], atol=1e-12):
            raise ValueError(f"{self.name} is not vertex-transitive")
        return rows[0]


def ring(k: int, phase: float = 0.0) -> np.ndarray:
    """k unit vectors at equal angles in the plane (k, 2): the regular k-gon."""
    angle = phase + 2 * np.pi * np.arange(k) / k
    return np.stack([np.cos(angle), np.sin(angle)], axis=1)


def simplex(k: int) -> np.ndarray:
    """The regular simplex of k unit vertices in k-1 dimensions (k, k-1), cos = -1/(k-1)."""
    centred = np.eye(k) - 1.0 / k
    basis = np.linalg.svd(centred)[2][: k - 1]  # orthonormal basis of the sum-zero plane
    vertices = centred @ basis.T
    return vertices / np.linalg.norm(vertices, axis=1, keepdims=True)


def square_antiprism() -> np.ndarray:
    """Two squares at heights +-1/sqrt(3), twisted by 45 degrees.

    The height 1/sqrt(3) makes the 8 vertices a tight frame (sum v v^T = 8/3 I), the
    only proportions with D_i = 3/8 exactly, the line the paper observes (§5.1).
    """
    h = 1.0 / math.sqrt(3.0)
    r = math.sqrt(1.0 - h * h)
    top = np.concatenate([r * ring(4), np.full((4, 1), h)], axis=1)
    bottom = np.concatenate([r * ring(4, np.pi / 4), np.full((4, 1), -h)], axis=1)
    return np.concatenate([top, bottom])


def _unit_rows(vertices) -> np.ndarray:
    vertices = np.asarray(vertices, float)
    return vertices / np.linalg.norm(vertices, axis=1, keepdims=True)


def _cyclic(triples) -> list:
    """Every cyclic permutation of the coordinates of each triple."""
    return [np.roll(t, s) for t in triples for s in range(3)]


def tetrahedron() -> np.ndarray:
    return _unit_rows([[1, 1, 1], [1, -1, -1], [-1, 1, -1], [-1, -1, 1]])


def cube() -> np.ndarray:
    return _unit_rows([[x, y, z] for x in (1, -1) for y in (1, -1) for z in (1, -1)])


def icosahedron() -> np.ndarray:
    phi = (1 + math.sqrt(5.0)) / 2
    return _unit_rows(_cyclic([[0, a, b * phi] for a in (1, -1) for b in (1, -1)]))


def dodecahedron() -> np.ndarray:
    phi = (1 + math.sqrt(5.0)) / 2
    corners = [[x, y, z] for x in (1, -1) for y in (1, -1) for z in (1, -1)]
    faces = _cyclic([[0, a / phi, b * phi] for a in (1, -1) for b in (1, -1)])
    return _unit_rows(corners + faces)


POLYTOPES: Mapping[str, Polytope] = {
    p.name: p
    for p in (
        Polytope("dedicated", np.ones((1, 1)), "#1f77b4", "dedicated"),
        Polytope("digon", np.array([[1.0], [-1.0]]), "#d62728", "digon"),
        Polytope("triangle", ring(3), "#2ca02c", "triangle"),
        Polytope("tetrahedron", tetrahedron(), "#17becf", "tetrahedron"),
        Polytope("pentagon", ring(5), "#9467bd", "pentagon"),
        Polytope("square_antiprism", square_antiprism(), "#e377c2", "sq. antiprism"),
        Polytope("hexagon", ring(6), "#d95f02", "hexagon"),
        Polytope("heptagon", ring(7), "#e6ab02", "heptagon"),
        Polytope("octagon", ring(8), "#a6761d", "octagon"),
        Polytope("simplex_4", simplex(5), "#08519c", "4-simplex"),
        Polytope("simplex_5", simplex(6), "#041f4a", "5-simplex"),
        Polytope("cube", cube(), "#ae017e", "cube"),
        Polytope("icosahedron", icosahedron(), "#7570b3", "icosahedron"),
        Polytope("dodecahedron", dodecahedron(), "#1b9e77", "dodecahedron"),
    )
}
"""The vocabulary, in the order pages list it; names are public and never change meaning."""

_NON_POLYTOPE = {OTHER: ("#8c8c8c", "other"), NOT_REPRESENTED: ("#d9d9d9", "not repr.")}

LABELS: tuple[str, ...] = (
    *sorted(POLYTOPES, key=lambda name: POLYTOPES[name].dimensionality),
    OTHER,
    NOT_REPRESENTED,
)
"""Every feature label, in the fixed order of summaries, `Geometry.factor_counts` and
tables: polytopes by increasing D = d/k (most superposition first; ties keep registry
order), then `other`, then `not_represented`."""

FACTOR_LABELS = LABELS[:-1]
"""Labels a tegum factor can carry: the columns of `Geometry.factor_counts`."""

COLORS: Mapping[str, str] = {
    label: POLYTOPES[label].color if label in POLYTOPES else _NON_POLYTOPE[label][0]
    for label in LABELS
}
"""Colour of every label, in `LABELS` order."""

SHORT: Mapping[str, str] = {
    label: (POLYTOPES[label].short or label) if label in POLYTOPES else _NON_POLYTOPE[label][1]
    for label in LABELS
}
"""Short label of every label, for crowded plots."""


def reference_lines() -> dict[float, list[str]]:
    """Distinct D = d/k of the vocabulary (the figure's reference lines) -> polytope names."""
    lines: dict[float, list[str]] = {}
    for p in POLYTOPES.values():
        lines.setdefault(round(p.dimensionality, 12), []).append(p.name)
    return dict(sorted(lines.items()))


def summary(counts, others=()) -> str:
    """Summary string of one model from its factor counts per `FACTOR_LABELS` and the
    (size, spanned dimension) of each of its `other` factors."""
    terms = []
    for count, label in zip(counts, FACTOR_LABELS):
        if count > 0 and label == OTHER and len(others):
            shapes = sorted(others, reverse=True)
            label = f"other ({', '.join(f'{k} in {d}-D' for k, d in shapes)})"
        if count > 0:
            terms.append((int(count), label))
    if not terms:
        return "none"
    if len(terms) == 1 and terms[0][0] == 1:
        return terms[0][1]
    return " + ".join(f"{c} {label}" for c, label in terms)
