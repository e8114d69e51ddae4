"""Dimensionality of training points and features from second moments (finite data).

For vectors v_1 ... v_N (columns of V, shape (m, N)) the dimensionality of v_X is
``D_X = ||v_X||^2 / sum_Y (v^_X . v_Y)^2``. Since ``sum_Y (v_X . v_Y)^2 = v_X^T M v_X``
with the m x m second moment ``M = V V^T``, ``D_X = ||v_X||^4 / (v_X^T M v_X)``: O(m^2 N)
work and no N x N Gram matrix, so it runs for T = 100,000 training points or n = 10,000
features. With V = W it is the feature dimensionality D_i of
geomtoy.geometry.dimensionality; with V = H, the hidden vectors h_X = W x_X of the
training set, it is the data-point dimensionality D_X of the finite-data experiments
(k points in a regular k-gon in 2-D each get 2/k). A zero vector gets 0, never NaN.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from geomtoy.geometry.dimensionality import feature_norms


def dimensionality(V: jax.Array) -> jax.Array:
    """``D_X = ||v_X||^4 / (v_X^T (V V^T) v_X)`` for every column of V (m, N)."""
    V = V.astype(jnp.float32)
    M = jnp.matmul(V, V.T, precision=jax.lax.Precision.HIGHEST)
    norm_sq = jnp.sum(V * V, axis=0)
    denominator = jnp.sum(V * jnp.matmul(M, V, precision=jax.lax.Precision.HIGHEST), axis=0)
    positive = denominator > 0
    return jnp.where(positive, norm_sq * norm_sq / jnp.where(positive, denominator, 1.0), 0.0)


def measures(W: jax.Array, H: jax.Array) -> dict[str, jax.Array]:
    """The finite-data measurements of one model with weights W (m, n) and training-set
    hidden vectors H = W X (m, T): per feature and per training point dimensionality
    and norm, and the Frobenius norms of W and H."""
    return {
        "feature_dimensionality": dimensionality(W),
        "feature_norm": feature_norms(W),
        "sample_dimensionality": dimensionality(H),
        "sample_norm": feature_norms(H),
        "weight_norm": jnp.sqrt(jnp.sum(W * W)),
        "hidden_norm": jnp.sqrt(jnp.sum(H * H)),
    }
