"""Finite training sets: T samples drawn once per instance, stored densely or sparsely.

A finite dataset is the toy model's data (features independently present with probability
p_i, present values Uniform[0, 1)) drawn once, T samples, each rescaled to unit norm
(||x|| = 1; a sample with no present feature stays 0). The loss is the sum over features
and the mean over the T samples, L = (1/T) sum_X sum_i I_i (x_i - x_hat_i)^2, of the ReLU
output model x_hat = ReLU(W^T W x + b).

Sampling is sparse from the start, so a dataset never needs its dense T x n form: the
present features of a sample are found by thinning. Candidates are the positions of a
Bernoulli(q) sequence over the n features, q = max_i p_i, generated as cumulative sums of
geometric gaps; candidate i is kept with probability p_i / q. This is exact for any
per-feature p. A sample holds at most `capacity` candidates, chosen so that a sample has
more with probability below CAPACITY_TAIL (`capacity`); samples that would have more are
counted (`Dataset.truncated`), never silently dense.

Representations (one dataset, two layouts; `representation` picks one from memory):
  sparse  index, value: (T, K) int32 / float32, padding slots have value 0 (index 0).
          h = W x is a gather (m K T work). The output x_hat is still n-dimensional, and
          its ReLU makes sum_i I_i x_hat_i^2 a dense term: it is computed in blocks of
          samples (scan, rematerialised in the backward pass), so memory stays O(n block)
          but the work is m n T per step, as in the dense path; the cross term and
          sum_i I_i x_i^2 touch only the non-zeros. (1/T) sum of the three terms is the
          loss exactly.
  dense   x: (n, T) feature-major, as geomtoy.engine.models holds batches.
Both give the same loss and gradients to float32 rounding (tests/test_finite.py).
"""

from __future__ import annotations

import dataclasses
import math

import jax
import jax.numpy as jnp

from geomtoy.engine import data
from geomtoy.registry import REPRESENTATIONS

CAPACITY_TAIL = 1e-12
"""A sample has more than `capacity` candidate features with probability at most this."""

DENSE_BYTES = 1 << 22
"""`auto` stores a dataset densely when its (n, T) float32 array has at most 4 MiB: then
the dense input is cheap to hold and the gather of the sparse path buys nothing."""

LOSS_BLOCK_ENTRIES = 1 << 20
"""The sparse loss forms the (n, block) pre-activation for blocks of about 2**20 entries
(4 MiB: cache-sized on CPU); geomtoy.engine.fullbatch uses ACCELERATOR_BLOCK_ENTRIES on GPU/TPU,
where a long sequential loop of small blocks would idle the device."""

ACCELERATOR_BLOCK_ENTRIES = 1 << 26


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class Dataset:
    """T samples of one instance (leading instance axis when stacked), sparse layout."""

    index: jax.Array  # (T, K) int32: feature index of each slot (0 in padding)
    value: jax.Array  # (T, K) float32: the feature's value (0 in padding)
    truncated: jax.Array  # () int32: samples that had more than K candidates


MAX_SLOTS = 1 << 20
"""Slot counters use 20 bits (`uniforms`)."""


def capacity(n_features: int, max_probability: float, tail: float = CAPACITY_TAIL) -> int:
    """Smallest K with P(Binomial(n, q) > K) <= tail: slots per sample of a sparse dataset."""
    n, q = int(n_features), float(max_probability)
    if q >= 1.0:
        return n
    if q <= 0.0:
        return 1
    log_q, log_1q = math.log(q), math.log1p(-q)
    log_pmf = [
        math.lgamma(n + 1)
        - math.lgamma(k + 1)
        - math.lgamma(n - k + 1)
        + k * log_q
        + (n - k) * log_1q
        for k in range(n + 1)
    ]
    tail_mass = 0.0
    for k in range(n, 0, -1):  # tail_mass = P(X >= k)
        tail_mass += math.exp(log_pmf[k])
        if tail_mass > tail:
            return min(n, max(k, 1))
    return 1


UNIFORM_ROWS = 3
"""Uniforms per slot: the geometric gap, the thinning draw and the value."""


def uniforms(key: jax.Array, n_samples: int, slots: int) -> jax.Array:
    """Uniforms (3, T, K) for `from_uniform`; sample t, row r, slot k depends only on
    (key, t, r, k), not on T or K, so a dataset does not depend on the capacity it is
    stored with (the first K candidates of a sample are the same for every K)."""
    words = jax.vmap(lambda t: data.hash_key_bits(jax.random.fold_in(key, t)))(
        jnp.arange(n_samples, dtype=jnp.uint32)
    )  # (T, 2)
    row = jnp.arange(UNIFORM_ROWS, dtype=jnp.uint32)[:, None, None] << 20
    counter = row | jnp.arange(slots, dtype=jnp.uint32)[None, None, :]  # (3, 1, K)
    return data.hash_uniform_at((words[None, :, :1], words[None, :, 1:]), counter)


def from_uniform(u: jax.Array, feature_probability: jax.Array) -> Dataset:
    """A dataset from uniforms u (3, T, K) (`uniforms`) in [0, 1) and per-feature probabilities (n,)."""
    n = feature_probability.shape[0]
    q = jnp.max(feature_probability)
    log_1q = jnp.log1p(-jnp.minimum(q, 1.0))
    # Gap-1 ~ Geometric(q) failures; q = 1 gives log(.)/(-inf) = 0, every position a candidate.
    gaps = 1.0 + jnp.floor(jnp.log1p(-u[0]) / jnp.where(q < 1.0, log_1q, -jnp.inf))
    gaps = jnp.minimum(gaps, n + 1.0).astype(jnp.int32)
    position = jnp.cumsum(gaps, axis=-1) - 1  # (T, K) increasing candidate positions
    inside = position < n
    safe = jnp.where(inside, position, 0)
    keep = inside & (u[1] * q < feature_probability[safe])
    value = jnp.where(keep, u[2], 0.0)
    norm = jnp.sqrt(jnp.sum(value * value, axis=-1, keepdims=True))
    value = value / jnp.where(norm > 0, norm, 1.0)
    truncated = jnp.sum(inside[:, -1]).astype(jnp.int32)
    return Dataset(index=jnp.where(keep, safe, 0), value=value, truncated=truncated)


def sample(key: jax.Array, feature_probability: jax.Array, n_samples: int, slots: int) -> Dataset:
    """T = n_samples unit-norm samples with `slots` capacity, a pure function of `key`."""
    return from_uniform(uniforms(key, n_samples, slots), feature_probability)


def to_dense(dataset: Dataset, n_features: int) -> jax.Array:
    """The dense feature-major matrix x (n, T) of a dataset."""
    T, K = dataset.index.shape
    sample_ix = jnp.broadcast_to(jnp.arange(T)[:, None], (T, K))
    x = jnp.zeros((n_features, T), dataset.value.dtype)
    return x.at[dataset.index, sample_ix].add(dataset.value)


def representation(choice: str, n_features: int, n_samples: int) -> str:
    """`dense` or `sparse`: `auto` is dense iff x (n, T) fits in DENSE_BYTES."""
    if choice not in REPRESENTATIONS:
        raise ValueError(f"representation {choice!r} is not one of {REPRESENTATIONS}")
    if choice != "auto":
        return choice
    return "dense" if 4 * n_features * n_samples <= DENSE_BYTES else "sparse"


def hidden(W: jax.Array, dataset: Dataset) -> jax.Array:
    """Hidden vectors h = W x (m, T) of every sample: a gather over the non-zeros."""
    return jnp.einsum("tkm,tk->mt", W.T[dataset.index], dataset.value)


def loss_dense(W: jax.Array, b: jax.Array, x: jax.Array, importance: jax.Array) -> jax.Array:
    """(1/T) sum_X sum_i I_i (x_i - x_hat_i)^2 for dense x (n, T)."""
    x_hat = jax.nn.relu(W.T @ (W @ x) + b[:, None])
    return jnp.sum(importance[:, None] * (x - x_hat) ** 2) / x.shape[1]


def loss_sparse(
    W: jax.Array, b: jax.Array, dataset: Dataset, importance: jax.Array, entries: int | None = None
) -> jax.Array:
    """The same loss from the sparse layout (module docstring: three terms); the output
    term runs over blocks of samples whose (n, block) pre-activation holds about `entries`
    values (default LOSS_BLOCK_ENTRIES)."""
    T = dataset.index.shape[0]
    W_nz = W.T[dataset.index]  # (T, K, m): rows of W^T, contiguous
    h = jnp.einsum("tkm,tk->mt", W_nz, dataset.value)  # (m, T), as hidden()
    x_hat_nz = jax.nn.relu(jnp.einsum("tkm,mt->tk", W_nz, h) + b[dataset.index])
    I_nz = importance[dataset.index]
    cross = jnp.sum(I_nz * dataset.value * x_hat_nz)
    norm = jnp.sum(I_nz * dataset.value * dataset.value)
    return (_output_energy(W, b, h, importance, entries) - 2.0 * cross + norm) / T


def loss_block(n_features: int, n_samples: int, entries: int | None = None) -> int:
    """Samples per block of the output term: (n, block) holds about `entries` values."""
    entries = LOSS_BLOCK_ENTRIES if entries is None else entries
    return max(1, min(n_samples, entries // n_features))


def _output_energy(W, b, h, importance, entries=None) -> jax.Array:
    """sum_X sum_i I_i x_hat_i^2, in blocks of samples so that (n, block) stays small."""
    n, T = W.shape[1], h.shape[1]
    block = loss_block(n, T, entries)
    n_blocks = -(-T // block)
    pad = n_blocks * block - T
    mask = jnp.concatenate([jnp.ones((T,)), jnp.zeros((pad,))]).reshape(n_blocks, block)
    h_blocks = jnp.pad(h, ((0, 0), (0, pad))).reshape(h.shape[0], n_blocks, block)

    @jax.checkpoint
    def energy(h_b, mask_b):
        x_hat = jax.nn.relu(W.T @ h_b + b[:, None])
        return jnp.sum(importance[:, None] * x_hat * x_hat * mask_b[None, :])

    if n_blocks == 1:
        return energy(h_blocks[:, 0], mask[0])
    blocks = (jnp.moveaxis(h_blocks, 1, 0)[1:], mask[1:])
    first = energy(h_blocks[:, 0], mask[0])  # the carry's type follows the data (shard_map)
    total, _ = jax.lax.scan(lambda acc, hb: (acc + energy(*hb), None), first, blocks)
    return total
