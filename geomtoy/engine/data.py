"""On-device sampling of synthetic sparse features (paper §3.1).

Each feature x_i is 0 with probability 1 - p_i and otherwise Uniform[0, 1] (Uniform[-1, 1]
for the abs task). One uniform u per element is enough: u < p marks the feature present,
and then u / p is Uniform[0, 1) and independent of the presence event. The notebook draws
two uniforms per element; this draws half the random bits for the same distribution.

Two samplers make the uniforms from an instance's step key:
  hash      (default) 64 key bits from threefry, then a keyed integer hash of the element's
            counter (two rounds of the `lowbias32` finaliser). Threefry on every element is
            the largest cost of a training step on CPU (docs/design.md, performance principles:
            ~100 ms of a 160 ms step at I=1000, n=5, B=1024); the hash costs ~5 ms and fuses
            with its consumers. Values are multiples of 2^-23, as jax.random.uniform's are.
  threefry  jax.random.uniform on every element: the reference sampler.
Both are pure functions of the key, so the per-instance invariants hold for either.
"""

import math

import jax
import jax.numpy as jnp
from jax.scipy.special import erfinv

from geomtoy import registry

SAMPLERS = registry.SAMPLERS
STRUCTURES = registry.STRUCTURES

_BELOW_ONE = 1.0 - 2.0**-24  # the largest float32 below 1: keeps erfinv finite


def _normal_quantile(w: jax.Array) -> jax.Array:
    """sqrt(2) erfinv(w): |N(0, 1)| from w ~ Uniform[0, 1), N(0, 1) from Uniform[-1, 1)."""
    return math.sqrt(2.0) * erfinv(jnp.clip(w, -_BELOW_ONE, _BELOW_ONE))


MAGNITUDES = {
    "uniform": lambda w: w,
    "half_normal": _normal_quantile,
    "uniform_2": lambda w: 2.0 * w,
}
"""The value of a present feature as a function of its uniform w (in [0, 1), or [-1, 1)
for signed inputs): uniform as in the paper, the half-normal |N(0, 1)| (N(0, 1) signed),
by inverse transform of the same uniform, so no extra random bits are drawn, or uniform
on [0, 2) as Liu, Liu and Gore 2025 draw it ([-2, 2) signed)."""
registry.check_math("geomtoy.engine.data.MAGNITUDES", registry.MAGNITUDES, MAGNITUDES)


def feature_values(w: jax.Array, signed: bool = False, magnitude: str = "uniform"):
    """Values of present features from their Uniform[0, 1) draws w (see MAGNITUDES)."""
    if signed:
        w = 2.0 * w - 1.0
    return MAGNITUDES[magnitude](w)


def _lowbias32(x: jax.Array) -> jax.Array:
    """A 32-bit integer finaliser with strong avalanche (C. Wellons' `lowbias32`)."""
    x = x ^ (x >> 16)
    x = x * jnp.uint32(0x7FEB352D)
    x = x ^ (x >> 15)
    x = x * jnp.uint32(0x846CA68B)
    return x ^ (x >> 16)


def hash_key_bits(key: jax.Array) -> jax.Array:
    """The 64 key bits (2 uint32 words) the hash sampler draws from a key with threefry."""
    return jax.random.bits(key, (2,), jnp.uint32)


def hash_uniform_from_bits(k: jax.Array, shape: tuple[int, ...]) -> jax.Array:
    """Uniform[0, 1) float32 from a counter hash keyed by the two words k (hash_key_bits)."""
    size = 1
    for d in shape:
        size *= d
    return hash_uniform_at(k, jax.lax.iota(jnp.uint32, size).reshape(shape))


def hash_uniform_at(k: jax.Array, counter: jax.Array) -> jax.Array:
    """The hash sampler's Uniform[0, 1) value at each uint32 counter, keyed by words k."""
    x = _lowbias32(counter * jnp.uint32(0x9E3779B9) + k[0])
    x = _lowbias32(x ^ k[1])
    return (x >> 9).astype(jnp.float32) * jnp.float32(2.0**-23)


def hash_uniform(key: jax.Array, shape: tuple[int, ...]) -> jax.Array:
    """Uniform[0, 1) float32 from a counter hash keyed by 64 threefry bits of `key`."""
    return hash_uniform_from_bits(hash_key_bits(key), shape)


def stream(key: jax.Array, sampler: str = "hash"):
    """What `sampler` needs from a key to draw a batch: the key itself (threefry) or its
    two hash words (hash). Training derives the streams of a whole chunk of steps at once,
    outside the step loop, so the loop body holds no threefry call (bench/RESULTS.md)."""
    if sampler == "hash":
        return hash_key_bits(key)
    if sampler == "threefry":
        return key
    raise ValueError(f"sampler {sampler!r} is not one of {SAMPLERS}")


def uniform_from_stream(s, shape: tuple[int, ...], sampler: str = "hash") -> jax.Array:
    """uniform(key, shape, sampler) given s = stream(key, sampler); the same values."""
    if sampler == "hash":
        return hash_uniform_from_bits(s, shape)
    if sampler == "threefry":
        return jax.random.uniform(s, shape, jnp.float32)
    raise ValueError(f"sampler {sampler!r} is not one of {SAMPLERS}")


def uniform(key: jax.Array, shape: tuple[int, ...], sampler: str = "hash") -> jax.Array:
    """Uniform[0, 1) float32 of the given shape from the named sampler."""
    return uniform_from_stream(stream(key, sampler), shape, sampler)


def sparse_from_uniform(
    u: jax.Array, feature_probability: jax.Array, signed: bool = False, magnitude="uniform"
):
    """Turn uniforms u (n, B) into sparse features with per-feature probability (n,)."""
    p = feature_probability[:, None]
    return jnp.where(u < p, feature_values(u / p, signed, magnitude), 0.0)


def sample_sparse(
    key: jax.Array,
    feature_probability: jax.Array,
    batch_size: int,
    signed: bool = False,
    sampler: str = "hash",
) -> jax.Array:
    """A feature-major batch x (n, B) of independent sparse features."""
    return sample_sparse_from_stream(
        stream(key, sampler), feature_probability, batch_size, signed, sampler
    )


def sample_sparse_from_stream(
    s,
    feature_probability: jax.Array,
    batch_size: int,
    signed: bool = False,
    sampler: str = "hash",
    structure: str = "independent",
    set_size: int = 1,
    magnitude: str = "uniform",
) -> jax.Array:
    """sample_sparse(key, ...) given s = stream(key, sampler); the same batch. Feature sets
    (structure, set_size: see features_from_uniform) draw extra rows of uniforms."""
    n = feature_probability.shape[0]
    u = uniform_from_stream(s, (uniform_rows(n, structure, set_size), batch_size), sampler)
    return features_from_uniform(u, feature_probability, structure, set_size, signed, magnitude)


# --- feature sets (paper §5.2) ------------------------------------------------------


def uniform_rows(n_features: int, structure: str = "independent", set_size: int = 1) -> int:
    """Rows of uniforms one batch column needs: n for the values, plus, for feature sets,
    one presence draw per set (and one member choice per set when anticorrelated)."""
    if structure == "independent":
        return n_features
    n_sets = n_features // set_size
    return n_features + n_sets * (1 if structure == "correlated" else 2)


def features_from_uniform(
    U: jax.Array,
    feature_probability: jax.Array,
    structure: str = "independent",
    set_size: int = 1,
    signed: bool = False,
    magnitude: str = "uniform",
) -> jax.Array:
    """Sparse features x (n, B) from uniforms U (uniform_rows(n, ...), B).

    independent     x_i present with probability p_i (one uniform per element, see above).
    correlated      consecutive features form sets of `set_size`; one presence draw v per
                    set: feature i is present iff v < p_i (all together when the p_i are
                    equal), values independent Uniform[0, 1).
    anticorrelated  the set is active iff v < p_i, then exactly one member, chosen
                    uniformly, is non-zero ("entirely zero with probability S, then only one
                    randomly selected feature ... uniformly sampled", paper §5.2): each
                    feature's marginal probability is p / set_size.
    hierarchical    each set is a tree: its first feature is the parent, present iff v < p
                    of the parent; the others are its children, mutually exclusive, and
                    child j fires only with its parent, with probability p_j given it (one
                    draw c per set picks the child: c in [sum_{l<j} p_l, sum_{l<=j} p_l)).
                    A child's marginal probability is p_parent * p_j; the children's p of
                    one set must sum to at most 1 (as in SynthSAEBench's hierarchies).
    """
    n = feature_probability.shape[0]
    if structure == "independent":
        return sparse_from_uniform(U[:n], feature_probability, signed, magnitude)
    if structure not in STRUCTURES:
        raise ValueError(f"structure {structure!r} is not one of {STRUCTURES}")
    n_sets = n // set_size
    value = feature_values(U[:n], signed, magnitude)
    if structure == "hierarchical":
        return jnp.where(_hierarchical_presence(U, feature_probability, set_size), value, 0.0)
    presence = jnp.repeat(U[n : n + n_sets], set_size, axis=0)  # (n, B): the set's draw
    present = presence < feature_probability[:, None]
    if structure == "anticorrelated":
        choice = jnp.floor(U[n + n_sets : n + 2 * n_sets] * set_size).astype(jnp.int32)
        member = jnp.tile(jnp.arange(set_size, dtype=jnp.int32), n_sets)[:, None]
        present = present & (jnp.repeat(choice, set_size, axis=0) == member)
    return jnp.where(present, value, 0.0)


def _hierarchical_presence(U: jax.Array, feature_probability: jax.Array, set_size: int):
    """(n, B) bool presence of parent/children sets (see features_from_uniform)."""
    n, B = feature_probability.shape[0], U.shape[1]
    n_sets = n // set_size
    p = feature_probability.reshape(n_sets, set_size)
    parent = U[n : n + n_sets] < p[:, :1]  # (n_sets, B)
    choice = U[n + n_sets : n + 2 * n_sets][:, None, :]  # (n_sets, 1, B)
    hi = jnp.cumsum(p[:, 1:], axis=1)[:, :, None]  # (n_sets, set_size - 1, 1)
    lo = hi - p[:, 1:, None]
    child = parent[:, None, :] & (choice >= lo) & (choice < hi)
    return jnp.concatenate([parent[:, None, :], child], axis=1).reshape(n, B)
