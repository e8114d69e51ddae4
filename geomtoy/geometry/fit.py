"""Fit error of a tegum factor to its polytope: cosine error after the best vertex matching.

The factor's Gram matrix is normalised to cosines (unit norms: the norm spread is its own
column) and compared with the ideal unit Gram matrix ``V V^T`` of the polytope, with the
factor's features assigned to the ideal vertices. The fit error is the root mean square
of the k(k-1) off-diagonal cosine errors, so it reads as a typical cosine error: 0 for
the ideal polytope in any rotation, scale, norms and order of features. `cosine_errors`
also gives the worst of them (the labelling's second bound, `thresholds.COS_MAX_TOL`).

Matching: a polytope whose Gram matrix no permutation changes (a simplex, the digon)
needs none. For the others the factor's features are embedded in d dimensions (top
eigenvectors of its cosine matrix), aligned onto the ideal vertices by orthogonal
Procrustes from d anchor features (tried against every ordered d-tuple of ideal
vertices starting at vertex 0, which vertex-transitivity makes enough), and assigned by
`scipy.optimize.linear_sum_assignment` on the aligned squared distances. This is the
best matching whenever the factor is close to its polytope, which is when it has the
label.
"""

from __future__ import annotations

import functools
import itertools

import numpy as np

from geomtoy.geometry.vocabulary import POLYTOPES, Polytope


def cosine_matrix(sub_gram: np.ndarray) -> np.ndarray:
    """Cosines (F, k, k) of Gram blocks (F, k, k); a zero column gets cosines 0."""
    sub_gram = np.asarray(sub_gram, np.float64)
    norm = np.sqrt(np.clip(np.diagonal(sub_gram, axis1=1, axis2=2), 0.0, None))
    safe = np.where(norm > 0, norm, 1.0)
    return sub_gram / (safe[:, :, None] * safe[:, None, :])


def fit_error(sub_gram: np.ndarray, polytope: Polytope) -> np.ndarray:
    """RMS off-diagonal cosine error of each factor (F, k, k) after matching, (F,)."""
    return cosine_errors(sub_gram, polytope)[0]


def cosine_errors(sub_gram: np.ndarray, polytope: Polytope) -> tuple[np.ndarray, np.ndarray]:
    """(RMS, worst) off-diagonal cosine error of each factor (F, k, k) to the polytope
    after the best vertex matching, each (F,); 0 for k = 1."""
    C = cosine_matrix(sub_gram)
    F, k = len(C), polytope.n_vertices
    if F == 0 or k == 1:
        return np.zeros(F), np.zeros(F)
    ideal = polytope.gram
    if _needs_no_matching(polytope.name):
        diff = C - ideal
    else:
        perm = _matching(C, polytope)
        diff = C - ideal[perm[:, :, None], perm[:, None, :]]
    off = diff[:, ~np.eye(k, dtype=bool)]
    return np.sqrt(np.mean(off * off, axis=1)), np.max(np.abs(off), axis=1)


@functools.cache
def _needs_no_matching(name: str) -> bool:
    ideal = POLYTOPES[name].gram
    off = ideal[~np.eye(len(ideal), dtype=bool)]
    return off.size == 0 or np.ptp(off) < 1e-9


@functools.cache
def _anchor_tuples(name: str) -> np.ndarray:
    """Ordered d-tuples of ideal vertices starting at vertex 0 that span R^d, (T, d)."""
    V = POLYTOPES[name].vertices
    k, d = V.shape
    tuples = [
        (0, *rest)
        for rest in itertools.permutations(range(1, k), d - 1)
        if np.linalg.svd(V[[0, *rest]], compute_uv=False)[-1] > 0.3
    ]
    return np.asarray(tuples, np.int64).reshape(-1, d)


def _matching(G: np.ndarray, polytope: Polytope) -> np.ndarray:
    """Ideal vertex of each feature of each factor, (F, k) int."""
    F, k, _ = G.shape
    V = polytope.vertices
    d = polytope.n_dims
    values, vectors = np.linalg.eigh(G)
    X = vectors[:, :, -d:] * np.sqrt(np.clip(values[:, None, -d:], 0.0, None))  # (F, k, d)
    anchors = _anchors(X)  # (F, d)
    A = np.take_along_axis(X, anchors[:, :, None], axis=1)  # (F, d, d)
    B = V[_anchor_tuples(polytope.name)]  # (T, d, d)
    U, _, Vt = np.linalg.svd(np.einsum("fai,taj->ftij", A, B))
    R = U @ Vt  # (F, T, d, d): orthogonal maps of the anchors onto each tuple
    Y = np.einsum("fki,ftij->ftkj", X, R)
    cost = np.sum((Y[:, :, :, None, :] - V[None, None, None]) ** 2, axis=-1)  # (F, T, k, k)
    best = np.argmin(cost.min(axis=-1).sum(axis=-1), axis=1)
    cost = cost[np.arange(F), best]  # (F, k, k)
    perm = np.argmin(cost, axis=-1)
    clashes = np.flatnonzero(np.any(np.sort(perm, axis=1) != np.arange(k), axis=1))
    if len(clashes):
        # Imported here: scipy.optimize takes ~0.8 s to import, and a nearest-vertex
        # assignment that is already a permutation (the usual case) never needs it.
        from scipy.optimize import linear_sum_assignment

        for f in clashes.tolist():
            perm[f] = linear_sum_assignment(cost[f])[1]
    return perm


def _anchors(X: np.ndarray) -> np.ndarray:
    """d features per factor spanning its embedding: feature 0, then greedily the one
    farthest from the span of those chosen (pivoted Gram-Schmidt), (F, d) int."""
    F, k, d = X.shape
    residual = X.copy()
    chosen = np.zeros((F, d), np.int64)
    rows = np.arange(F)
    for step in range(d):
        if step:
            chosen[:, step] = np.argmax(np.sum(residual**2, axis=-1), axis=1)
        u = residual[rows, chosen[:, step]]
        u = u / np.maximum(np.linalg.norm(u, axis=-1, keepdims=True), 1e-12)
        residual = residual - np.einsum("fk,fi->fki", np.einsum("fki,fi->fk", residual, u), u)
    return chosen


def spanned_dims(W: np.ndarray, key: np.ndarray, members: np.ndarray, rank_rtol: float):
    """Dimension spanned by the factor (same `key`) of each selected feature of W (I, m, n):
    singular values of the factor's columns above `rank_rtol` x the largest, in
    np.nonzero order of `members` (I, n)."""
    model, feature = np.nonzero(members)
    keys = key[model, feature]
    order = np.argsort(keys, kind="stable")
    starts = np.flatnonzero(np.r_[True, keys[order][1:] != keys[order][:-1]])
    sizes = np.diff(np.r_[starts, len(order)])
    dims_sorted = np.zeros(len(order), np.int64)
    for k in np.unique(sizes):
        first = starts[sizes == k]
        rows = order[first[:, None] + np.arange(k)]  # (F, k) positions in the nonzero list
        columns = W[model[rows[:, :1]], :, feature[rows]]  # (F, k, m)
        singular = np.linalg.svd(columns.astype(np.float64), compute_uv=False)
        rank = np.sum(singular > rank_rtol * singular[:, :1], axis=1)
        dims_sorted[(first[:, None] + np.arange(k)).reshape(-1)] = np.repeat(rank, k)
    dims = np.empty(len(order), np.int64)
    dims[order] = dims_sorted
    return dims
