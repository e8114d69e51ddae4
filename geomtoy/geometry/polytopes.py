"""Tegum factors and polytope labels of trained toy models (paper §5.1; docs/paper.md checks C6, C12).

Uniform superposition organises features into uniform polytopes (§5.1): k features
spanning d dimensions with equal norms and the polytope's angles, each with feature
dimensionality D = d/k. Different polytopes sit in orthogonal subspaces (a tegum
product), so the graph that links features whose directions interfere falls apart
into one connected component per polytope: a *tegum factor*. A triangular bipyramid is
a triangle factor plus a digon factor (3 x 2/3 and 2 x 1/2, not 5 x 3/5), an
octahedron is three digons.

`analyze` labels every feature of every model:

1. represented: ``||W_i|| > REPRESENTED_NORM``; the others are `not_represented`;
2. tegum factors: connected components of the graph on represented features with an
   edge where ``|cos(W_i, W_j)| > LINK_COS``;
3. label of a factor of k features: the polytope of `POLYTOPES` with k vertices whose
   checks all pass, else `other`. The checks rest on the factor's own Gram matrix, not
   on D_i: equal norms (``max/min - 1 <= NORM_RTOL``), the spanned dimension (the
   number of singular values of the factor's columns above ``RANK_RTOL`` times the
   largest equals the polytope's d) and the polytope's angles up to permutation (each
   feature's sorted cosines to the other members within ``COS_TOL`` of the ideal
   polytope's). A lone represented feature is `dedicated`; D_i = d/k then follows.

The dense work (Gram matrix, D_i, the components) is written for one model in `jnp`
and vmapped over a block of models; the ragged per-factor checks are vectorised NumPy
over all factors of one size in the block, on Gram matrices formed from the factors'
own columns. Models are processed in blocks of at most `BLOCK_GRAM_ENTRIES` Gram
entries, so memory stays bounded for any I and n.

Speed, measured on the 2-core development CPU (JAX 0.10.2, float32, compilation
excluded, the machine shared with other jobs): 10,000 models with n=400, m=30 (copies
of three trained models) in 17.7 s wall and 17.5 s CPU at load average 4.5, 36-43 s
wall and 19-21 s CPU at load average 7-8; 100,000 models with n=5, m=2 in 1.2 s; 100
models with n=1000, m=30 in 2.1 s. About half of the time is the component search,
which runs on all n features although only the represented ones can link.

Calibration: the thresholds below were checked on models trained with `geomtoy.train`
(the notebook recipe of docs/paper.md, 10,000 steps). n=5, m=2, uniform importance, feature probability
0.05, 8 seeds: 7 pentagons (norm spread <= 1.1%, cosine error <= 0.009, D_i 0.400) and
one seed with 2 digons. n=5, m=2, importance 0.9^i, dense: 8/8 "2 dedicated" with the
other three not represented. n=200, m=20 and n=400, m=30 over 1/p = 1.4 ... 5.7:
"17 digon + 1 triangle", "19 digon", "29 digon", "1 pentagon + 8 digon + 1 other",
"6 pentagon + 18 digon", "6 triangle + 2 other"; the clean factors had norm spread <=
1.7%, cosine error <= 0.025 and extra singular values <= 0.09 x the largest. The
`other` factors there are genuine non-vocabulary structures, e.g. 11 antipodal pairs in
10 dimensions at |cos| = 0.1 (D = 5/11 = 0.45), or, at 1/p >= 4.8 (n=200, m=20) and
in the transition 1/p <= 1.6, one large component whose pairwise |cos| form a continuum
from 0.03 to 0.13 with no gap to cut at.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Mapping

import jax
import jax.numpy as jnp
import numpy as np

from geomtoy.geometry import dimensionality as dim

REPRESENTED_NORM = 0.5
"""A feature is represented iff ``||W_i|| > 0.5`` (docs/paper.md, checks).

Trained represented features have norms near 1 (pentagons 1.13, digons 1.0-1.04),
dropped ones decay towards 0 under weight decay (<= 0.02 in the dense 0.9^i model);
0.5 sits in the middle of that gap. In the dense uniform regime with n >> m no feature
passes it (the rank-m solution is spread over all n features, §5.1), so such models are
all `not_represented`, as intended."""

LINK_COS = 0.05
"""Two represented features interfere, i.e. share a tegum factor, iff ``|cos| > 0.05``.

Features in different tegum factors are ideally orthogonal; the checks of docs/paper.md call
``|cos| < 0.05`` orthogonal. In the trained models of the calibration, clean factors
(digons, triangles, pentagons) met each other at |cos| <= 0.035, while weakly
interfering structures sat at |cos| >= 0.073 (11 antipodal pairs in 10 dimensions at
|cos| = 0.1): the threshold lies in that gap. Inside every polytope of the vocabulary
each feature has neighbours at |cos| >= 0.31, so every polytope stays connected."""

NORM_RTOL = 0.1
"""Features of one polytope have equal norms: ``max/min - 1 <= 0.1``.

Trained polytopes had norm spreads <= 1.7% (pentagons 1.13 +- 0.01, docs/paper.md, calibration); a
factor whose norms differ by more than 10% is a deformed configuration (e.g. the
non-uniform pentagon of §5.2 on its way to two digons)."""

COS_TOL = 0.05
"""Each feature's sorted cosines to its factor-mates lie within 0.05 of the ideal's.

0.05 is about 3 degrees at right angles and 8 degrees at 144 degrees. Trained
polytopes had cosine errors <= 0.025 (pentagons' angle gaps 72.0 +- 0.3 degrees give
<= 0.01); a tilted trained triangle at 0.055 (with a third singular value 0.23 x the
largest) is rejected. The Coulomb (Thomson) optimal square antiprism, height 0.560,
differs from the tight-frame ideal, height 1/sqrt(3), by at most 0.038 in cosine, so
both count as square antiprisms."""

RANK_RTOL = 0.2
"""A factor spans the directions whose singular value exceeds 0.2 x the largest.

Every polytope of the vocabulary is a tight frame: its nonzero singular values are all
equal. In trained polytopes the extra singular values stayed <= 0.09 x the largest, so
the count is the polytope's dimension, while a lifted or tilted configuration (0.23
in the tilted triangle above) counts an extra dimension."""

DIM_TOL = 0.05
"""A factor keeps its polytope label only if every member's D_i is within 0.05 of d/k.

Norms, rank and angles are read inside the factor; D_i also counts the interference
from features outside it, those below REPRESENTED_NORM included. In the dense uniform
regime a lone feature of norm > 0.5 can share its direction with dozens of weak ones
(D_i ~ 0.25, seen at n=100, m=10, 1-S = 1): it is no dedicated dimension. Trained
polytopes sat within 0.004 (pentagons) and 0.02 (digons, docs/paper.md, calibration) of d/k."""

BLOCK_GRAM_ENTRIES = 2**24
"""Models per block are chosen so one block's Gram matrices hold at most 2**24 entries
(64 MiB in float32); this bounds memory for any number of models and features."""

NOT_REPRESENTED = "not_represented"
OTHER = "other"


@dataclasses.dataclass(frozen=True)
class Polytope:
    """A uniform polytope of the vocabulary: k unit vertices spanning d dimensions."""

    name: str
    vertices: np.ndarray  # (k, d), unit rows

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

    @functools.cached_property
    def row_cosines(self) -> np.ndarray:
        """Sorted cosines of one vertex to the k-1 others; the same for every vertex."""
        cos = self.vertices @ self.vertices.T
        rows = _off_diagonal_rows(cos[None])[0]
        rows.sort(axis=-1)
        if not np.allclose(rows, rows[:1], atol=1e-12):
            raise ValueError(f"{self.name} is not vertex-transitive")
        return rows[0]


def _ring(k: int, phase: float = 0.0) -> np.ndarray:
    angle = phase + 2 * np.pi * np.arange(k) / k
    return np.stack([np.cos(angle), np.sin(angle)], axis=1)


def _square_antiprism() -> np.ndarray:
    """Two squares at heights +-1/sqrt(3), twisted by 45 degrees.

    The height 1/sqrt(3) makes the 8 vertices a tight frame (sum v v^T = 8/3 I), the
    only proportions with D_i = 3/8 exactly, the line the paper observes (§5.1).
    """
    h = 1.0 / math.sqrt(3.0)
    r = math.sqrt(1.0 - h * h)
    top = np.concatenate([r * _ring(4), np.full((4, 1), h)], axis=1)
    bottom = np.concatenate([r * _ring(4, np.pi / 4), np.full((4, 1), -h)], axis=1)
    return np.concatenate([top, bottom])


def _tetrahedron() -> np.ndarray:
    vertices = np.array([[1, 1, 1], [1, -1, -1], [-1, 1, -1], [-1, -1, 1]], float)
    return vertices / math.sqrt(3.0)


POLYTOPES: Mapping[str, Polytope] = {
    p.name: p
    for p in (
        Polytope("dedicated", np.ones((1, 1))),
        Polytope("digon", np.array([[1.0], [-1.0]])),
        Polytope("triangle", _ring(3)),
        Polytope("tetrahedron", _tetrahedron()),
        Polytope("pentagon", _ring(5)),
        Polytope("square_antiprism", _square_antiprism()),
    )
}
"""The polytope vocabulary of docs/design.md with ideal unit vertices (§5.1)."""

LABELS = (
    "square_antiprism",
    "pentagon",
    "digon",
    "triangle",
    "tetrahedron",
    "dedicated",
    OTHER,
    NOT_REPRESENTED,
)
"""Every feature label, in the fixed order of summaries and `Geometry.factor_counts`:
polytopes by increasing D = d/k (most superposition first: 3/8, 2/5, 1/2, 2/3, 3/4, 1),
then `other`, then `not_represented`."""

FACTOR_LABELS = LABELS[:-1]
"""Labels a tegum factor can carry: the columns of `Geometry.factor_counts`."""

_LABEL_INDEX = {label: index for index, label in enumerate(LABELS)}


@dataclasses.dataclass(frozen=True)
class Geometry:
    """Geometry of I models with n features each; every field is a NumPy array.

    Fields (features table and instances table of docs/design.md):
        norm: (I, n) feature norms ``||W_i||``.
        dimensionality: (I, n) feature dimensionality D_i.
        interference: (I, n) ``sum_{j != i} (W^_i . W_j)^2``.
        factor: (I, n) int, tegum factor id inside its model, numbered 0, 1, ... in
            order of each factor's lowest feature index; -1 if not represented.
        polytope: (I, n) str, the label of the feature's factor (see `LABELS`).
        dims_per_feature: (I,) D* = m / ||W||_F^2 (inf for W = 0).
        n_represented: (I,) int, features with ``||W_i|| > REPRESENTED_NORM``.
        factor_counts: (I, len(FACTOR_LABELS)) int, tegum factors per label.
        summary: (I,) str, e.g. ``"pentagon"`` or ``"2 digon + 1 dedicated"``.

    The summary counts tegum factors (not features) per label in `LABELS` order, as
    ``"<count> <label>"`` joined by ``" + "``; a model that is one factor is just its
    label (``"pentagon"``). Features that are not represented are not listed (their
    number is ``n - n_represented``); a model with no represented feature is
    ``"none"``. Models with non-finite weights (diverged) get NaN metrics and no
    represented feature.
    """

    norm: np.ndarray
    dimensionality: np.ndarray
    interference: np.ndarray
    factor: np.ndarray
    polytope: np.ndarray
    dims_per_feature: np.ndarray
    n_represented: np.ndarray
    factor_counts: np.ndarray
    summary: np.ndarray

    def count(self, label: str) -> np.ndarray:
        """Number of tegum factors labelled `label` in each model, (I,) int.

        For `not_represented` (not a factor) it is the number of such features.
        """
        if label == NOT_REPRESENTED:
            return self.polytope.shape[1] - self.n_represented
        return self.factor_counts[:, FACTOR_LABELS.index(label)]


def analyze(W, *, block_size: int | None = None) -> Geometry:
    """Norms, D_i, interference, tegum factors and polytope labels of I models.

    Args:
        W: weights of shape (I, m, n), columns are features; NumPy or JAX array.
        block_size: models per compiled block; default: as many as fit in
            `BLOCK_GRAM_ENTRIES` Gram entries.

    Returns:
        A `Geometry` of NumPy arrays, one row per model.
    """
    if not hasattr(W, "ndim"):
        W = np.asarray(W)
    if W.ndim != 3:
        raise ValueError(f"W must have shape (I, m, n), got shape {tuple(W.shape)}")
    n_models, m, n = W.shape
    if block_size is None:
        block_size = BLOCK_GRAM_ENTRIES // max(n * n, 1)
    block_size = max(1, min(block_size, n_models))

    parts = []
    for start in range(0, max(n_models, 1), block_size):
        host_block = np.asarray(jax.device_get(W[start : start + block_size]))
        if not np.issubdtype(host_block.dtype, np.floating):
            host_block = host_block.astype(np.float32)
        size = host_block.shape[0]
        # Padded on the host to keep one compiled shape; device_put compiles nothing.
        padding = np.zeros((block_size - size, m, n), host_block.dtype)
        block = jax.device_put(np.concatenate([host_block, padding]))
        stats = jax.device_get(_stats_instances(block))
        stats = {name: value[:size] for name, value in stats.items()}
        parts.append(_label_block(host_block, stats))
    columns = {name: np.concatenate([p[name] for p in parts]) for name in parts[0]}
    return Geometry(summary=_summaries(columns["factor_counts"]), **columns)


def _stats_one(W: jax.Array) -> dict[str, jax.Array]:
    """Dense geometry of one model: metrics, represented mask and tegum components."""
    G = dim.gram(W)
    norm = dim.norms_from_gram(G)
    represented = (norm > REPRESENTED_NORM) & jnp.all(jnp.isfinite(W))
    return {
        "norm": norm,
        "dimensionality": dim.dimensionality_from_gram(G),
        "interference": dim.interference_from_gram(G),
        "dims_per_feature": dim.dims_per_feature(W),
        "represented": represented,
        "component": tegum_components(G, represented),
    }


_stats_instances = jax.jit(jax.vmap(_stats_one))


def tegum_components(G: jax.Array, represented: jax.Array) -> jax.Array:
    """Connected components of the interference graph of one model, (n,) int32.

    Nodes are the represented features; i and j are linked iff ``|cos| > LINK_COS``.
    Each feature gets the lowest feature index of its component (its own index when not
    represented). Min-label propagation with pointer jumping: every round takes the
    lowest label among a feature's neighbours, then the label of that label, so labels
    only decrease, stay inside the component, and stop changing exactly when each
    component carries its minimum index; rounds grow with the component diameter,
    which is small for polytopes.
    """
    n = G.shape[0]
    norm_sq = jnp.diagonal(G)
    # |cos_ij| > LINK_COS without square roots or divisions.
    linked = (G * G > LINK_COS**2 * norm_sq[:, None] * norm_sq[None, :]) & (
        represented[:, None] & represented[None, :]
    )
    linked = linked | jnp.eye(n, dtype=bool)
    # Float labels and an additive penalty instead of an integer select: the same
    # min, but XLA vectorises it about 4x faster on CPU. Exact for n < 2**24.
    label_dtype = jnp.promote_types(G.dtype, jnp.float32)
    penalty = jnp.where(linked, 0.0, float(n)).astype(label_dtype)
    index = jnp.arange(n, dtype=label_dtype)

    def round_(state):
        label, _ = state
        lowest = jnp.min(penalty + label[None, :], axis=1)
        lowest = lowest[lowest.astype(jnp.int32)]
        return lowest, jnp.any(lowest != label)

    label, _ = jax.lax.while_loop(lambda s: s[1], round_, (index, jnp.array(True)))
    return label.astype(jnp.int32)


def _label_block(W: np.ndarray, stats: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Host side, one block: group features into factors, label and count them.

    Only factors of a polytope's size need their Gram matrix, formed here from their
    own columns of W, so the dense n x n Gram never leaves the compiled block.
    """
    represented = stats["represented"]
    component = stats["component"].astype(np.int64)
    W_features = np.swapaxes(W, 1, 2)  # (I, n, m): row i is W_i
    n_models, n = represented.shape
    label = np.full((n_models, n), _LABEL_INDEX[NOT_REPRESENTED], np.int8)

    model, feature = np.nonzero(represented)
    key = model * n + component[model, feature]
    order = np.argsort(key, kind="stable")
    key_sorted = key[order]
    starts = np.flatnonzero(np.r_[True, key_sorted[1:] != key_sorted[:-1]])
    sizes = np.diff(np.r_[starts, key_sorted.size])
    member_size = np.repeat(sizes, sizes)
    label_sorted = np.full(key_sorted.size, _LABEL_INDEX[OTHER], np.int8)
    for polytope in POLYTOPES.values():
        k = polytope.n_vertices
        selected = member_size == k
        if not selected.any():
            continue
        members = order[selected].reshape(-1, k)  # factors of size k are contiguous
        columns = W_features[model[members], feature[members]].astype(np.float64)
        sub_gram = columns @ np.swapaxes(columns, 1, 2)  # (F, k, k)
        matches = matches_polytope(sub_gram, polytope)
        dims = stats["dimensionality"][model[members], feature[members]]
        matches &= np.all(np.abs(dims - polytope.dimensionality) <= DIM_TOL, axis=1)
        factor_label = np.where(matches, _LABEL_INDEX[polytope.name], _LABEL_INDEX[OTHER])
        label_sorted[selected] = np.repeat(factor_label, k)
    label[model[order], feature[order]] = label_sorted

    is_root = represented & (component == np.arange(n))
    root_rank = np.cumsum(is_root, axis=1) - 1
    factor = np.where(represented, np.take_along_axis(root_rank, component, 1), -1)
    root_model, root_feature = np.nonzero(is_root)
    factor_counts = np.zeros((n_models, len(FACTOR_LABELS)), np.int64)
    np.add.at(factor_counts, (root_model, label[root_model, root_feature]), 1)

    return {
        "norm": stats["norm"],
        "dimensionality": stats["dimensionality"],
        "interference": stats["interference"],
        "factor": factor,
        "polytope": np.asarray(LABELS)[label],
        "dims_per_feature": stats["dims_per_feature"],
        "n_represented": represented.sum(axis=1),
        "factor_counts": factor_counts,
    }


def matches_polytope(sub_gram: np.ndarray, polytope: Polytope) -> np.ndarray:
    """Whether each factor's Gram matrix (F, k, k) is the polytope's, up to permutation.

    Checks equal norms (`NORM_RTOL`), the spanned dimension (`RANK_RTOL`) and every
    member's sorted cosines to the others against the ideal's (`COS_TOL`). Returns (F,)
    bool.
    """
    sub_gram = np.asarray(sub_gram, dtype=np.float64)
    k = polytope.n_vertices
    if sub_gram.shape[1:] != (k, k):
        raise ValueError(f"{polytope.name} needs (F, {k}, {k}) Gram blocks")
    norm = np.sqrt(np.clip(np.diagonal(sub_gram, axis1=1, axis2=2), 0.0, None))
    equal_norms = norm.max(axis=1) <= (1.0 + NORM_RTOL) * norm.min(axis=1)
    if k == 1:
        return equal_norms & (norm[:, 0] > 0)

    singular = np.sqrt(np.clip(np.linalg.eigvalsh(sub_gram), 0.0, None))
    rank = np.sum(singular > RANK_RTOL * singular[:, -1:], axis=1)

    safe = np.where(norm > 0, norm, 1.0)
    cos = sub_gram / (safe[:, :, None] * safe[:, None, :])
    rows = np.sort(_off_diagonal_rows(cos), axis=-1)
    angles_match = np.all(np.abs(rows - polytope.row_cosines) <= COS_TOL, axis=(1, 2))
    return equal_norms & (rank == polytope.n_dims) & angles_match


def _off_diagonal_rows(matrix: np.ndarray) -> np.ndarray:
    """(F, k, k) -> (F, k, k-1): each row without its diagonal entry."""
    F, k, _ = matrix.shape
    return matrix[:, ~np.eye(k, dtype=bool)].reshape(F, k, k - 1)


def summary(counts) -> str:
    """Summary string of one model from its factor counts per `FACTOR_LABELS`."""
    terms = [(int(c), label) for c, label in zip(counts, FACTOR_LABELS) if c > 0]
    if not terms:
        return "none"
    if len(terms) == 1 and terms[0][0] == 1:
        return terms[0][1]
    return " + ".join(f"{c} {label}" for c, label in terms)


def _summaries(factor_counts: np.ndarray) -> np.ndarray:
    if factor_counts.shape[0] == 0:
        return np.zeros(0, dtype=str)
    unique, inverse = np.unique(factor_counts, axis=0, return_inverse=True)
    strings = np.array([summary(row) for row in unique])
    return strings[inverse.reshape(-1)]
