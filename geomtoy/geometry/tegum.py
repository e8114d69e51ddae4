"""Tegum factors at every scale: the single-linkage hierarchy of the interference graph.

Trained tegum products are only approximately orthogonal, so one weak link can join
clean polytopes into a component no polytope matches. `geomtoy.geometry.polytopes`
therefore reads each component at the scale where its structure is: a component that
fails every vocabulary check is split at its weakest links, recursively, and a piece
that passes is a factor. These pieces are the clusters of single linkage on the
squared cosines ``c_ij = cos^2(W_i, W_j)`` of the represented features.

`spanning_order` (one model, `jnp`, vmapped by the caller) builds a maximum spanning
tree with Prim's algorithm and returns the order in which it adds the features and the
weight of the link each one was added by. In that order every cluster is an interval,
and an interval ``[a, a + k)`` is a cluster exactly when the links inside it are all
stronger than the two at its ends (`dendrogram_nodes`); the strongest link from a
cluster to any feature outside it is the stronger of those two, its *leak*. Choosing
the coarsest clusters that pass a check is then a sort (`outermost`), with no recursion
on the host.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np


def squared_cosines(G: jax.Array) -> jax.Array:
    """``cos^2(W_i, W_j) = G_ij^2 / (G_ii G_jj)`` (n, n); 0 where a column is zero."""
    norm_sq = jnp.diagonal(G)
    denominator = norm_sq[:, None] * norm_sq[None, :]
    positive = denominator > 0
    return jnp.where(positive, G * G / jnp.where(positive, denominator, 1.0), 0.0)


def components(G: jax.Array, represented: jax.Array, link_cos: float) -> jax.Array:
    """Connected components of the interference graph of one model, (n,) int32.

    Nodes are the represented features; i and j are linked iff ``|cos| > link_cos``.
    Each feature gets the lowest feature index of its component (its own index when not
    represented); see `linked_components`.
    """
    norm_sq = jnp.diagonal(G)
    # |cos_ij| > link_cos without square roots or divisions.
    linked = G * G > link_cos**2 * norm_sq[:, None] * norm_sq[None, :]
    return linked_components(linked, represented)


def linked_components(linked: jax.Array, represented: jax.Array) -> jax.Array:
    """Connected components of the represented nodes of a boolean (n, n) graph, (n,).

    Min-label propagation with pointer jumping: every round takes the lowest label among
    a feature's neighbours, then the label of that label, so labels only decrease, stay
    inside the component, and stop changing exactly when each component carries its
    minimum index; rounds grow with the component diameter, which is small for polytopes.
    """
    n = linked.shape[0]
    linked = linked & represented[:, None] & represented[None, :] | jnp.eye(n, dtype=bool)
    # Float labels and an additive penalty instead of an integer select: the same
    # min, but XLA vectorises it about 4x faster on CPU. Exact for n < 2**24.
    penalty = jnp.where(linked, 0.0, float(n)).astype(jnp.float32)
    index = jnp.arange(n, dtype=jnp.float32)

    def round_(state):
        label, _ = state
        lowest = jnp.min(penalty + label[None, :], axis=1)
        lowest = lowest[lowest.astype(jnp.int32)]
        return lowest, jnp.any(lowest != label)

    label, _ = jax.lax.while_loop(lambda s: s[1], round_, (index, jnp.array(True)))
    return label.astype(jnp.int32)


def spanning_order(c: jax.Array, represented: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Prim's maximum spanning tree of the represented features of one model.

    Args:
        c: (n, n) link strengths (squared cosines).
        represented: (n,) bool.

    Returns:
        order (n,) int32: the represented features in the order Prim adds them (ties to
        the lowest index), then the others in index order; weight (n,): the strength of
        the link that added each position, -1 for the first feature and for every
        feature that is not represented.
    """
    n = c.shape[0]
    n_represented = jnp.sum(represented)

    def add(state):
        best, in_tree, step, order, weight = state
        score = jnp.where(in_tree | ~represented, -jnp.inf, best)
        j = jnp.argmax(score)
        order, weight = order.at[step].set(j), weight.at[step].set(score[j])
        return jnp.maximum(best, c[j]), in_tree.at[j].set(True), step + 1, order, weight

    start = (
        jnp.full(n, -1.0, c.dtype),
        jnp.zeros(n, bool),
        jnp.zeros((), jnp.int32),
        jnp.zeros(n, jnp.int32),
        jnp.full(n, -1.0, c.dtype),
    )
    # Only the represented features are added, so the loop runs as long as they last.
    _, _, _, order, weight = jax.lax.while_loop(lambda s: s[2] < n_represented, add, start)
    position = jnp.arange(n)
    rest = jnp.argsort(represented, stable=True)  # the others first, in index order
    rest = rest[jnp.clip(position - n_represented, 0, n - 1)]
    order = jnp.where(position < n_represented, order, rest)
    return order.astype(jnp.int32), jnp.where(position < n_represented, weight, -1.0)


def dendrogram_nodes(weight: np.ndarray, n_represented: np.ndarray, k: int, floor: float):
    """Clusters of k features: start positions ``(model, a)``, their leaks and their
    weakest internal links (squared cosines; inf for k = 1).

    ``[a, a + k)`` is a cluster iff it lies among the represented positions, every link
    inside it is stronger than `floor` (it is connected in the interference graph) and
    stronger than both end links ``weight[a]`` and ``weight[a + k]``. Every represented
    position is a cluster of size 1.
    """
    n_models, n = weight.shape
    if k > n:
        empty = np.zeros(0, np.int64)
        return empty, empty, np.zeros(0, weight.dtype), np.zeros(0, weight.dtype)
    padded = np.concatenate([weight, np.full((n_models, 1), -1.0, weight.dtype)], axis=1)
    starts = np.arange(n - k + 1)
    inside = starts[None, :] + k <= n_represented[:, None]
    left, right = padded[:, : n - k + 1], padded[:, k : n + 1]
    internal = np.full(inside.shape, np.inf, weight.dtype)
    if k > 1:
        windows = np.lib.stride_tricks.sliding_window_view(weight[:, 1:], k - 1, axis=1)
        internal = windows.min(axis=-1)
        inside &= (internal > floor) & (left < internal) & (right < internal)
    model, a = np.nonzero(inside)
    leak = np.maximum(np.maximum(left[model, a], right[model, a]), 0.0)
    return model, a, leak, internal[model, a]


def outermost(model: np.ndarray, start: np.ndarray, size: np.ndarray, n: int) -> np.ndarray:
    """Which of the given clusters lie inside no other given cluster, (F,) bool.

    Clusters are nested or disjoint, so after sorting by start (longest first at equal
    starts) a cluster is inside another exactly when it starts before the furthest end
    seen so far.
    """
    key = model.astype(np.int64) * (n + 1) + start
    order = np.lexsort((-size, key))
    end = np.maximum.accumulate((key + size)[order])
    inner = np.zeros(len(order), bool)
    inner[1:] = key[order][1:] < end[:-1]
    keep = np.empty(len(order), bool)
    keep[order] = ~inner
    return keep
