"""On-device sampling of synthetic sparse features (PAPER.md §1.1).

Each feature x_i is 0 with probability 1 - p_i and otherwise Uniform[0, 1] (Uniform[-1, 1]
for the abs task). One uniform u per element is enough: u < p marks the feature present,
and then u / p is Uniform[0, 1) and independent of the presence event. The notebook draws
two uniforms per element; this draws half the random bits for the same distribution.
"""

import jax
import jax.numpy as jnp


def sparse_from_uniform(u: jax.Array, feature_probability: jax.Array, signed: bool = False):
    """Turn uniforms u (n, B) into sparse features with per-feature probability (n,)."""
    p = feature_probability[:, None]
    value = u / p
    if signed:
        value = 2.0 * value - 1.0
    return jnp.where(u < p, value, 0.0)


def sample_sparse(
    key: jax.Array, feature_probability: jax.Array, batch_size: int, signed: bool = False
) -> jax.Array:
    """A feature-major batch x (n, B) of independent sparse features."""
    n = feature_probability.shape[0]
    u = jax.random.uniform(key, (n, batch_size), jnp.float32)
    return sparse_from_uniform(u, feature_probability, signed)
