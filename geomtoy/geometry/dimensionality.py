"""Norms, interference and feature dimensionality of one toy model (paper §3.2, §5.1).

Every function takes the weights of ONE model, `W` of shape (m, n) whose columns `W_i`
are the feature embeddings (paper notation), and is pure `jnp`, so `jax.vmap` adds the
instance axis (`jax.vmap(feature_dimensionality)(W_Ixmxn)`) and `jax.jit` compiles it.

With `W^_i = W_i / ||W_i||` (taken as 0 for a zero column):

- feature norm ``||W_i||``: about 1 for a represented feature, about 0 otherwise;
- interference ``sum_{j != i} (W^_i . W_j)^2``: 0 when `W_i` is orthogonal to every
  other feature, >= 1 when some group of features can activate `W_i` as strongly as
  feature i itself (§3.2, the "superposition" colour of the paper's bar charts);
- feature dimensionality ``D_i = ||W_i||^2 / sum_j (W^_i . W_j)^2`` (the sum includes
  j = i; §5.1): the fraction of a dimension feature i gets. ``0 <= D_i <= 1``; 1 for a
  feature orthogonal to all others, 1/2 in an antipodal pair, d/k for k features forming
  a uniform polytope in d dimensions, and 0 for a zero column (never NaN);
- dimensions per feature ``D* = m / ||W||_F^2`` (§5.1), the basis-independent measure of
  how many hidden dimensions the model spends per embedded feature;
- the Gram matrix ``W^T W`` (n x n), the end-to-end matrix the paper draws.

The `*_from_gram` helpers compute the same quantities from a precomputed Gram matrix so
that `geomtoy.geometry.polytopes` forms `W^T W` once per model.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp


def gram(W: jax.Array) -> jax.Array:
    """The Gram matrix ``W^T W`` (n, n): entry (i, j) is ``W_i . W_j``.

    Full float32 precision: on GPUs and TPUs the default matmul precision (TF32 or
    bfloat16 passes) would cost D_i its third decimal.
    """
    return jnp.matmul(W.T, W, precision=jax.lax.Precision.HIGHEST)


def feature_norms(W: jax.Array) -> jax.Array:
    """Feature norms ``||W_i||`` (n,), the length of each column of `W` (m, n)."""
    return _safe_sqrt(jnp.sum(W * W, axis=0))


def overlaps(W: jax.Array) -> jax.Array:
    """Overlap matrix ``O_ij = W^_i . W_j`` (n, n); row i is 0 when `W_i` is zero."""
    return overlaps_from_gram(gram(W))


def interference(W: jax.Array) -> jax.Array:
    """Interference ``sum_{j != i} (W^_i . W_j)^2`` of each feature (n,); §3.2."""
    return interference_from_gram(gram(W))


def feature_dimensionality(W: jax.Array) -> jax.Array:
    """Feature dimensionality ``D_i = ||W_i||^2 / sum_j (W^_i . W_j)^2`` (n,); §5.1.

    The sum runs over all j, including j = i, so ``0 <= D_i <= 1``. A zero column gets
    ``D_i = 0`` (the paper's "features which are not learned"), never NaN.
    """
    return dimensionality_from_gram(gram(W))


def dims_per_feature(W: jax.Array) -> jax.Array:
    """Dimensions per feature ``D* = m / ||W||_F^2`` (scalar); §5.1.

    `W = 0` embeds no feature at all and gives ``+inf`` (m dimensions for zero
    features), which stays distinguishable from every finite model and is not NaN.
    """
    m = W.shape[0]
    frobenius_sq = jnp.sum(W * W)
    positive = frobenius_sq > 0
    return jnp.where(positive, m / jnp.where(positive, frobenius_sq, 1.0), jnp.inf)


def features_per_dim(W: jax.Array) -> jax.Array:
    """Features per dimension ``||W||_F^2 / m = 1 / D*`` (scalar); §5.1."""
    return jnp.sum(W * W) / W.shape[0]


def norms_from_gram(G: jax.Array) -> jax.Array:
    """Feature norms from the Gram matrix: ``sqrt(G_ii)``."""
    return _safe_sqrt(jnp.diagonal(G))


def overlaps_from_gram(G: jax.Array) -> jax.Array:
    """``O_ij = G_ij / ||W_i||`` with rows of zero-norm features set to 0."""
    norm = norms_from_gram(G)
    nonzero = norm > 0
    inverse = jnp.where(nonzero, 1.0 / jnp.where(nonzero, norm, 1.0), 0.0)
    return G * inverse[:, None]


def interference_from_gram(G: jax.Array) -> jax.Array:
    """``sum_{j != i} O_ij^2 = sum_{j != i} G_ij^2 / G_ii`` from the Gram matrix.

    The diagonal is masked rather than subtracted, so a feature orthogonal to all
    others gets exactly 0 and small interferences keep their relative precision.
    """
    norm_sq = jnp.diagonal(G)
    off = _off_diagonal_sum_sq(G)
    positive = norm_sq > 0
    return jnp.where(positive, off / jnp.where(positive, norm_sq, 1.0), 0.0)


def dimensionality_from_gram(G: jax.Array) -> jax.Array:
    """``D_i = ||W_i||^2 / sum_j O_ij^2 = G_ii^2 / (G_ii^2 + sum_{j != i} G_ij^2)``.

    0 for a zero column. In this form one masked pass over G serves both D_i and the
    interference, with no n x n division. A column so short that ``||W_i||^4``
    underflows (below about 1e-10 in float32) counts as zero.
    """
    norm_sq = jnp.diagonal(G)
    total = norm_sq * norm_sq + _off_diagonal_sum_sq(G)
    positive = total > 0
    return jnp.where(positive, norm_sq * norm_sq / jnp.where(positive, total, 1.0), 0.0)


def _off_diagonal_sum_sq(G: jax.Array) -> jax.Array:
    """``sum_{j != i} G_ij^2`` for each row i."""
    off_diagonal = ~jnp.eye(G.shape[0], dtype=bool)
    return jnp.sum(jnp.where(off_diagonal, G * G, 0.0), axis=1)


def _safe_sqrt(x: jax.Array) -> jax.Array:
    """``sqrt(x)`` with a finite gradient at 0, so the metrics can be differentiated."""
    positive = x > 0
    return jnp.where(positive, jnp.sqrt(jnp.where(positive, x, 1.0)), 0.0)
