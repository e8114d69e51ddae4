"""Tegum factors and polytope labels of trained toy models (paper §5.1; docs/paper.md checks C6, C12).

Uniform superposition organises features into uniform polytopes (§5.1): k features
spanning d dimensions with equal norms and the polytope's angles, each with feature
dimensionality D = d/k. Different polytopes sit in orthogonal subspaces (a tegum
product): a triangular bipyramid is a triangle factor plus a digon factor (3 x 2/3 and
2 x 1/2, not 5 x 3/5), an octahedron is three digons. Trained tegum products are only
approximately orthogonal, so factors are read at every scale of interference.

`analyze` labels every feature of every model:

1. represented: ``||W_i|| > REPRESENTED_NORM``; the others are `not_represented`;
2. candidate factors: the clusters of single linkage on ``|cos(W_i, W_j)|`` among the
   represented features (`geomtoy.geometry.tegum`), from the connected components of
   the graph with an edge where ``|cos| > LINK_COS`` down to single features;
3. a candidate of k features is a polytope of `vocabulary.POLYTOPES` with k vertices
   when its directions are the polytope's (`geomtoy.geometry.match`): the dimension it
   spans, then regular k-gons in 2-D by their angular gaps (``GAP_RTOL``) and every
   other polytope by its best-matched cosines (RMS ``COS_RMS_TOL``, worst
   ``COS_MAX_TOL``); norms are no check (each factor's norm spread is a column), and
   a lone feature is `dedicated` only if it barely shares its direction with weak
   features and all others (`INTERFERENCE_MAX`). A candidate whose
   strongest link to the rest, its leak ``l``, is weak next to its own weakest link
   (`SEPARATION`) may deviate by what that leak explains: the features of a polytope
   leaning by ``l`` towards an outside feature change their cosines by up to ``1.5
   l^2`` and gain a singular value of ``sqrt(2) l`` times the largest, so the
   tolerances grow by those amounts (with ``l`` capped at `LEAN_MAX`); no candidate
   with a leak above `LEAK_MAX` passes;
4. the factors are the coarsest passing candidates: a component that passes is kept
   whole, one that fails is split at its weakest links and its pieces are tried in
   turn. Represented features in no polytope are `other`; they form one `other` factor
   per connected component (``|cos| > LINK_COS``) among themselves.

Every factor gets its size k, the dimension d it spans, its fit error (RMS cosine error
to the ideal polytope after the best vertex matching, `geomtoy.geometry.fit`; NaN for
`other`), its norm spread (``max/min - 1`` of its members' norms) and its leak (the largest |cos| of a member to a represented feature outside
the factor; features that are not represented have no direction to speak of).

The dense work (Gram matrix, D_i, the spanning order, the `other` components and the
leaks) is written for one model in `jnp` and vmapped over a block of models; the ragged
per-candidate checks are vectorised NumPy over all candidates of one size in the block,
on Gram matrices formed from the candidates' own columns. Models are processed in
blocks of at most `BLOCK_GRAM_ENTRIES` Gram entries, so memory stays bounded.

Speed, measured on the 2-core development CPU while other jobs shared it (load 10-27,
float32, compilation excluded): 10,000 models with n=400, m=30 (copies of three models:
14 digons + 8 pentagons, 6 digons + 12 triangles, each polytope tilted by 16 degrees,
and a 150-feature tangle, padded with weak features) in 30.4-32.4 s of CPU (122-173 s
wall), where geometry v2 took 29.3-29.5 s of CPU (86-157 s wall) in the same run,
alternating: 1.07x the CPU time. The cosine matching runs only on candidates whose
sorted cosine rows already pass, k-gons need no matching to be named.

The thresholds and their calibration: `geomtoy.geometry.thresholds`.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np

from geomtoy.geometry import dimensionality as dim
from geomtoy.geometry import fit, tegum
from geomtoy.geometry.match import match, matches_polytope
from geomtoy.geometry.thresholds import (
    INTERFERENCE_MAX,
    LEAK_MAX,
    LINK_COS,
    RANK_RTOL,
    REPRESENTED_NORM,
    SEPARATION,
)
from geomtoy.geometry.vocabulary import (
    FACTOR_LABELS,
    LABELS,
    NOT_REPRESENTED,
    OTHER,
    POLYTOPES,
    summary,
)

__all__ = ["Geometry", "analyze", "matches_polytope", "summary", "tegum_components"]

BLOCK_GRAM_ENTRIES = 2**24
"""Models per block are chosen so one block's Gram matrices hold at most 2**24 entries
(64 MiB in float32); this bounds memory for any number of models and features."""

_LABEL_INDEX = {label: index for index, label in enumerate(LABELS)}
_SIZES = sorted({p.n_vertices for p in POLYTOPES.values()})


@dataclasses.dataclass(frozen=True)
class Geometry:
    """Geometry of I models with n features each; every field is a NumPy array.

    Fields (features table and instances table of the results directory):
        norm: (I, n) feature norms ``||W_i||``.
        dimensionality: (I, n) feature dimensionality D_i.
        interference: (I, n) ``sum_{j != i} (W^_i . W_j)^2``.
        factor: (I, n) int, tegum factor id inside its model, numbered 0, 1, ... in
            order of each factor's lowest feature index; -1 if not represented.
        polytope: (I, n) str, the label of the feature's factor (see `LABELS`).
        factor_size: (I, n) int, k: features in the feature's factor (0 if not
            represented).
        factor_dim: (I, n) int, d: dimensions the factor spans (0 if not represented).
        fit_error: (I, n) the factor's RMS cosine error to its polytope after the best
            vertex matching (`geomtoy.geometry.fit`); NaN for `other` and not represented.
        norm_spread: (I, n) the factor's ``max/min - 1`` of its members' norms (0 for
            a single feature); NaN if not represented.
        leak: (I, n) the factor's largest |cos| of a member to a represented feature
            outside it (0 when there is none); NaN if not represented.
        dims_per_feature: (I,) D* = m / ||W||_F^2 (inf for W = 0).
        n_represented: (I,) int, features with ``||W_i|| > REPRESENTED_NORM``.
        factor_counts: (I, len(FACTOR_LABELS)) int, tegum factors per label.
        summary: (I,) str, e.g. ``"pentagon"``, ``"2 digon + 1 dedicated"`` or
            ``"11 digon + 1 other (14 in 5-D)"``.

    The summary counts tegum factors (not features) per label in `LABELS` order, as
    ``"<count> <label>"`` joined by ``" + "``; `other` factors are described by their
    sizes and spanned dimensions, largest first; a model that is one factor is just its
    label. Features that are not represented are not listed (their number is ``n -
    n_represented``); a model with no represented feature is ``"none"``. Models with
    non-finite weights (diverged) get NaN metrics and no represented feature.
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
    factor_size: np.ndarray
    factor_dim: np.ndarray
    fit_error: np.ndarray
    leak: np.ndarray
    norm_spread: np.ndarray

    def count(self, label: str) -> np.ndarray:
        """Number of tegum factors labelled `label` in each model, (I,) int.

        For `not_represented` (not a factor) it is the number of such features.
        """
        if label == NOT_REPRESENTED:
            return self.polytope.shape[1] - self.n_represented
        return self.factor_counts[:, FACTOR_LABELS.index(label)]


def analyze(W: np.ndarray | jax.Array, *, block_size: int | None = None) -> Geometry:
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
        stats, c = _stats_instances(block)
        stats = {name: value[:size] for name, value in jax.device_get(stats).items()}
        polytopes = _polytope_factors(host_block, stats)
        group = np.full((block_size, n), -1, np.int32)
        group[:size] = polytopes["group"]
        represented = np.zeros((block_size, n), bool)
        represented[:size] = stats["represented"]
        final, leak = jax.device_get(_finish_instances(c, represented, group))
        parts.append(_tables(host_block, stats, polytopes, final[:size], leak[:size]))
    columns = {name: np.concatenate([p[name] for p in parts]) for name in parts[0]}
    return Geometry(**columns)


def _stats_one(W: jax.Array) -> tuple[dict[str, jax.Array], jax.Array]:
    """Dense geometry of one model: metrics, represented mask and spanning order, and
    the squared cosines (kept on the device for `_finish_one`)."""
    G = dim.gram(W)
    norm = dim.norms_from_gram(G)
    represented = (norm > REPRESENTED_NORM) & jnp.all(jnp.isfinite(W))
    c = tegum.squared_cosines(G)
    order, weight = tegum.spanning_order(c, represented)
    norm_sq = jnp.diagonal(G)
    weak = jnp.sum(jnp.where(represented[None, :], 0.0, G * G), axis=1)
    stats = {
        "weak_interference": weak / jnp.where(norm_sq > 0, norm_sq, 1.0) ** 2,
        "norm": norm,
        "dimensionality": dim.dimensionality_from_gram(G),
        "interference": dim.interference_from_gram(G),
        "dims_per_feature": dim.dims_per_feature(W),
        "represented": represented,
        "order": order,
        "weight": weight,
    }
    return stats, c


def _finish_one(c: jax.Array, represented: jax.Array, group: jax.Array):
    """Factor root of every feature and leak, given the squared cosines and the polytope
    factors (`group`: the lowest member index, -1 for features in none): the represented
    rest forms `other` factors, one per connected component among themselves."""
    n = c.shape[0]
    leftover = represented & (group < 0)
    rest = tegum.linked_components(c > LINK_COS**2, leftover)
    final = jnp.where(leftover, rest, jnp.where(represented, group, jnp.arange(n)))
    outside = represented[None, :] & (final[:, None] != final[None, :])
    leak_sq = jnp.max(jnp.where(outside, c, 0.0), axis=1)
    return final.astype(jnp.int32), jnp.sqrt(leak_sq)


_stats_instances = jax.jit(jax.vmap(_stats_one))
_finish_instances = jax.jit(jax.vmap(_finish_one))


def tegum_components(G: jax.Array, represented: jax.Array) -> jax.Array:
    """Connected components of the interference graph of one model, (n,) int32: the
    represented features linked at ``|cos| > LINK_COS`` (`tegum.components`)."""
    return tegum.components(G, represented, LINK_COS)


def _polytope_factors(W: np.ndarray, stats: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Host side, one block: the coarsest single-linkage clusters that pass a check.

    Only clusters of a polytope's size are checked, on Gram matrices formed from their
    own columns of W, so the dense n x n Gram never leaves the compiled block.
    """
    W_features = np.swapaxes(W, 1, 2)  # (I, n, m): row i is W_i
    n_models, n = stats["represented"].shape
    n_represented = stats["represented"].sum(axis=1)
    found = []
    for k in _SIZES:
        model, start, leak_sq, internal_sq = tegum.dendrogram_nodes(
            stats["weight"], n_represented, k, LINK_COS**2
        )
        leak = np.sqrt(leak_sq)
        lean = np.where(SEPARATION * leak <= np.sqrt(internal_sq), leak, 0.0)
        members = stats["order"][model[:, None], start[:, None] + np.arange(k)]
        columns = W_features[model[:, None], members].astype(np.float64)
        sub_gram = columns @ np.swapaxes(columns, 1, 2)
        quiet = leak <= LEAK_MAX
        if k == 1:  # no shape to check: a dedicated dimension is one barely shared
            D = stats["dimensionality"][model, members[:, 0]]
            quiet &= stats["weak_interference"][model, members[:, 0]] <= INTERFERENCE_MAX
            quiet &= D * (1.0 + INTERFERENCE_MAX) >= 1.0
        label, error = np.full(len(model), -1), np.full(len(model), np.nan)
        for polytope in (p for p in POLYTOPES.values() if p.n_vertices == k):
            todo = np.flatnonzero(quiet & (label < 0))
            ok, errors = match(sub_gram[todo], polytope, leak=lean[todo])
            label[todo[ok]] = _LABEL_INDEX[polytope.name]
            error[todo[ok]] = errors[ok]
        passed = label >= 0
        found.append((model[passed], start[passed], members[passed], label[passed], error[passed]))
    sizes = np.concatenate([np.full(len(f[0]), f[2].shape[1]) for f in found])
    keep = tegum.outermost(
        np.concatenate([f[0] for f in found]), np.concatenate([f[1] for f in found]), sizes, n
    )
    group = np.full((n_models, n), -1, np.int32)
    label = np.where(stats["represented"], _LABEL_INDEX[OTHER], _LABEL_INDEX[NOT_REPRESENTED])
    fit_error = np.full((n_models, n), np.nan)
    factor_dim = np.zeros((n_models, n), np.int64)
    offset = 0
    for model, _, members, labels, errors in found:
        kept = keep[offset : offset + len(model)]
        offset += len(model)
        for index in np.unique(labels[kept]):
            polytope = POLYTOPES[LABELS[index]]
            sel = np.flatnonzero(kept & (labels == index))
            rows, cols = model[sel, None], members[sel]
            group[rows, cols] = cols.min(axis=1, keepdims=True)
            label[rows, cols] = index
            factor_dim[rows, cols] = polytope.n_dims
            fit_error[rows, cols] = errors[sel, None]
    return {"group": group, "label": label, "fit_error": fit_error, "factor_dim": factor_dim}


def _tables(W, stats, polytopes, final, leak) -> dict[str, np.ndarray]:
    """Factor ids, sizes, dimensions, leaks, counts and summaries of one block."""
    represented = stats["represented"]
    n_models, n = represented.shape
    label = polytopes["label"]
    is_root = represented & (final == np.arange(n))
    root_rank = np.cumsum(is_root, axis=1) - 1
    factor = np.where(represented, np.take_along_axis(root_rank, final, 1), -1)

    key = (np.arange(n_models)[:, None] * n + final).reshape(-1)
    rep = represented.reshape(-1)
    size = np.bincount(key[rep], minlength=n_models * n)
    factor_leak = np.zeros(n_models * n)
    np.maximum.at(factor_leak, key[rep], leak.reshape(-1)[rep])
    norm = stats["norm"].reshape(-1)
    longest, shortest = np.zeros(n_models * n), np.full(n_models * n, np.inf)
    np.maximum.at(longest, key[rep], norm[rep])
    np.minimum.at(shortest, key[rep], norm[rep])
    spread = longest[key] / np.where(rep, shortest[key], 1.0) - 1.0
    factor_dim = polytopes["factor_dim"].copy()
    other = represented & (label == _LABEL_INDEX[OTHER])
    factor_dim[other] = fit.spanned_dims(W, key.reshape(n_models, n), other, RANK_RTOL)

    root_model, root_feature = np.nonzero(is_root)
    factor_counts = np.zeros((n_models, len(FACTOR_LABELS)), np.int64)
    np.add.at(factor_counts, (root_model, label[root_model, root_feature]), 1)
    others = [[] for _ in range(n_models)]
    other_root = is_root & other
    for i, j in zip(*np.nonzero(other_root)):
        others[i].append((int(size[i * n + j]), int(factor_dim[i, j])))

    return {
        "norm": stats["norm"],
        "dimensionality": stats["dimensionality"],
        "interference": stats["interference"],
        "factor": factor,
        "polytope": np.asarray(LABELS)[label],
        "dims_per_feature": stats["dims_per_feature"],
        "n_represented": represented.sum(axis=1),
        "factor_counts": factor_counts,
        "summary": _summaries(factor_counts, others),
        "factor_size": np.where(represented, size[key].reshape(n_models, n), 0),
        "factor_dim": np.where(represented, factor_dim, 0),
        "fit_error": polytopes["fit_error"],
        "leak": np.where(represented, factor_leak[key].reshape(n_models, n), np.nan),
        "norm_spread": np.where(represented, spread.reshape(n_models, n), np.nan),
    }


def _summaries(factor_counts: np.ndarray, others: list[list[tuple[int, int]]]) -> np.ndarray:
    """Summary strings of I models; each distinct structure is formatted once."""
    keys = [tuple(row) + tuple(sorted(o)) for row, o in zip(factor_counts.tolist(), others)]
    cache: dict[tuple, str] = {}
    out = np.empty(len(keys), dtype=object)
    for index, key in enumerate(keys):
        if key not in cache:
            cache[key] = summary(factor_counts[index], others[index])
        out[index] = cache[key]
    return out.astype(str) if len(keys) else np.zeros(0, dtype=str)
