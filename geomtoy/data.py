"""On-device sampling of synthetic sparse features (PAPER.md §1.1).

Each feature x_i is 0 with probability 1 - p_i and otherwise Uniform[0, 1] (Uniform[-1, 1]
for the abs task). One uniform u per element is enough: u < p marks the feature present,
and then u / p is Uniform[0, 1) and independent of the presence event. The notebook draws
two uniforms per element; this draws half the random bits for the same distribution.

Two samplers make the uniforms from an instance's step key:
  hash      (default) 64 key bits from threefry, then a keyed integer hash of the element's
            counter (two rounds of the `lowbias32` finaliser). Threefry on every element is
            the largest cost of a training step on CPU (DESIGN.md, performance principles:
            ~100 ms of a 160 ms step at I=1000, n=5, B=1024); the hash costs ~5 ms and fuses
            with its consumers. Values are multiples of 2^-23, as jax.random.uniform's are.
  threefry  jax.random.uniform on every element: the reference sampler.
Both are pure functions of the key, so the per-instance invariants hold for either.
"""

import jax
import jax.numpy as jnp


SAMPLERS = ("hash", "threefry")


def _lowbias32(x: jax.Array) -> jax.Array:
    """A 32-bit integer finaliser with strong avalanche (C. Wellons' `lowbias32`)."""
    x = x ^ (x >> 16)
    x = x * jnp.uint32(0x7FEB352D)
    x = x ^ (x >> 15)
    x = x * jnp.uint32(0x846CA68B)
    return x ^ (x >> 16)


def hash_uniform(key: jax.Array, shape: tuple[int, ...]) -> jax.Array:
    """Uniform[0, 1) float32 from a counter hash keyed by 64 threefry bits of `key`."""
    k = jax.random.bits(key, (2,), jnp.uint32)
    size = 1
    for d in shape:
        size *= d
    counter = jax.lax.iota(jnp.uint32, size).reshape(shape)
    x = _lowbias32(counter * jnp.uint32(0x9E3779B9) + k[0])
    x = _lowbias32(x ^ k[1])
    return (x >> 9).astype(jnp.float32) * jnp.float32(2.0**-23)


def uniform(key: jax.Array, shape: tuple[int, ...], sampler: str = "hash") -> jax.Array:
    """Uniform[0, 1) float32 of the given shape from the named sampler."""
    if sampler == "hash":
        return hash_uniform(key, shape)
    if sampler == "threefry":
        return jax.random.uniform(key, shape, jnp.float32)
    raise ValueError(f"sampler {sampler!r} is not one of {SAMPLERS}")


def sparse_from_uniform(u: jax.Array, feature_probability: jax.Array, signed: bool = False):
    """Turn uniforms u (n, B) into sparse features with per-feature probability (n,)."""
    p = feature_probability[:, None]
    value = u / p
    if signed:
        value = 2.0 * value - 1.0
    return jnp.where(u < p, value, 0.0)


def sample_sparse(
    key: jax.Array,
    feature_probability: jax.Array,
    batch_size: int,
    signed: bool = False,
    sampler: str = "hash",
) -> jax.Array:
    """A feature-major batch x (n, B) of independent sparse features."""
    n = feature_probability.shape[0]
    u = uniform(key, (n, batch_size), sampler)
    return sparse_from_uniform(u, feature_probability, signed)
