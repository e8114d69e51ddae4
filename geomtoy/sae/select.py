"""Selecting SAE latents: TopK's and BatchTopK's masks, the count of entries >= a threshold
they rest on, a radix select, and BatchTopK's search for the threshold of the k largest
entries of a whole batch, started from a guess (the last batch's threshold) so that a few
counting passes suffice."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp


def count_at_least(pre: jax.Array, t: jax.Array, axis: int | None) -> jax.Array:
    """Entries of pre >= t (of each column for axis=0, of all for None), as float32 (exact
    below 2**24). The whole-batch count sums rows of 128 first: a reduction over the major
    axis, which vectorises on CPU."""
    ones = jnp.where(pre >= (t if axis is None else t[None, :]), 1.0, 0.0)
    if axis is None:
        return jnp.sum(jnp.sum(ones.reshape(-1, 128) if ones.size % 128 == 0 else ones, axis=0))
    return jnp.sum(ones, axis=axis)


BATCH_TOPK_SLOPE = 2.0
"""BatchTopK's search: the first step from the guess assumes the batch's count of entries
>= t falls as t**-BATCH_TOPK_SLOPE near the k-th largest; a shallow slope oversteps, so
one probe usually brackets the threshold."""

_ULPS_PER_LOG = 2**23 / math.log(2.0)  # float32 bit patterns per unit of log(t)


def _probe(lo, hi, c_lo, c_hi, k, step, up, gallop, bisect):
    """The next bit pattern the batch search counts at, strictly inside (lo, hi): a step
    away from the guess while only it bounds the threshold (gallop), the bit midpoint
    when the last probe did not halve the bracket (bisect), else the point where log
    count, linear in the bit pattern (about log t) between the bounds, reaches k + 1/2."""
    half = (hi - lo) // 2
    u = jnp.where(up, lo + jnp.minimum(step, half), hi - jnp.minimum(step, half))
    slope = jnp.log(c_lo) - jnp.log(jnp.maximum(c_hi, 0.5))
    frac = jnp.clip((jnp.log(c_lo) - jnp.log(k + 0.5)) / slope, 0.0, 1.0)
    inner = lo + jnp.clip(((hi - lo).astype(jnp.float32) * frac).astype(jnp.uint32), 1, hi - lo - 1)
    return jnp.where(gallop, u, jnp.where(bisect, lo + half, inner))


def batch_kth_threshold(pre: jax.Array, k, guess) -> jax.Array:
    """A threshold t >= 0 with pre >= t true at exactly the entries of the whole batch
    >= its k-th largest, among the entries >= 0 (t = 0 when fewer than k are): the same
    entries as kth_largest_positive(pre, k, None) selects, found from a guess of t.

    A bracketed search on the bit pattern u of t (a non-negative float32 orders as its
    bits) over [lo, hi), with count(lo) >= k unless lo = 0 and count(hi) < k unless
    hi = 2**31. It stops once exactly k entries are >= lo (later probes select the same
    entries) or hi = lo + 1 (then lo is the largest t with count >= k, or 0). The first
    count is at the guess; the next probe steps away from it by the count's error (then
    4x further each time) until the other bound is found; then `_probe` interpolates,
    bisecting whenever an interpolation did not halve the bracket (so at most two passes
    per halving of the 2**31 patterns, after the at most 16 steps away from the guess).
    From the last batch's threshold a few passes suffice; any guess gives the same
    answer."""
    k = jnp.asarray(k, jnp.float32)
    top = jnp.uint32(1 << 31)
    g = jnp.where(guess > 0, guess, 0.0).astype(jnp.float32)  # NaN, -0.0, negative: 0
    g = jax.lax.bitcast_convert_type(g, jnp.uint32) | jnp.zeros_like(pre[0, 0], jnp.uint32)
    c = count_at_least(pre, jax.lax.bitcast_convert_type(g, jnp.float32), None)
    up = c >= k  # the guess is a lower bound: step up from it (else down)
    lo, hi = jnp.where(up, g, 0), jnp.where(up, top, g)
    c_lo, c_hi = jnp.where(up, c, float(pre.size)), jnp.where(up, 0.0, c)
    miss = jnp.abs(jnp.log(jnp.maximum(c, 0.5)) - jnp.log(k)) / BATCH_TOPK_SLOPE
    step = jnp.clip(miss * _ULPS_PER_LOG, 1.0, 2.0**30).astype(jnp.uint32)

    def unfinished(carry):
        lo, hi, *_, done = carry
        return (hi - lo > 1) & ~done

    def search(carry):
        lo, hi, c_lo, c_hi, step, gallop, bisect, _ = carry
        u = _probe(lo, hi, c_lo, c_hi, k, step, up, gallop, bisect)
        count = count_at_least(pre, jax.lax.bitcast_convert_type(u, jnp.float32), None)
        keep = count >= k
        width = hi - lo
        lo, c_lo = jnp.where(keep, u, lo), jnp.where(keep, count, c_lo)
        hi, c_hi = jnp.where(keep, hi, u), jnp.where(keep, c_hi, count)
        halved = (hi - lo) <= (width + 1) // 2
        step = jnp.minimum(step, top // 8) * 4
        return lo, hi, c_lo, c_hi, step, gallop & (keep == up), ~halved, keep & (count == k)

    start = (lo, hi, c_lo, c_hi, step, g > 0, jnp.zeros_like(up), c == k)
    return jax.lax.bitcast_convert_type(
        jax.lax.while_loop(unfinished, search, start)[0], jnp.float32
    )


def kth_largest_positive(pre: jax.Array, k, axis: int | None, found=None) -> jax.Array:
    """A threshold t >= 0 (per column for axis=0, one for None) with pre >= t true at
    exactly the entries >= the k-th largest, among the entries >= 0: those a ReLU keeps.

    Radix select on the bit pattern of t (a non-negative float32 orders as its bits), from
    the top bit down: each pass keeps a bit when at least k entries are >= the candidate,
    and the search stops once exactly k are (every later candidate selects the same
    entries). No sort: on CPU a sort of the (width, B) pre-activations cost 10x more than
    the SAE's matmuls. Fewer than k entries >= 0 give t = 0. Columns already `found`
    (bool, per column) are not searched (their t is meaningless)."""
    k = jnp.asarray(k, jnp.float32)
    start = jnp.zeros_like(pre[0] if axis == 0 else pre[0, 0], jnp.uint32)  # pre's sharding
    found = start > 0 if found is None else found

    def unfinished(carry):
        b, _, done = carry
        return (b < 31) & ~jnp.all(done)

    def bit(carry):
        b, prefix, done = carry
        candidate = prefix | (jnp.uint32(1) << (30 - b).astype(jnp.uint32))
        count = count_at_least(pre, jax.lax.bitcast_convert_type(candidate, jnp.float32), axis)
        keep = (count >= k) & ~done
        return b + 1, jnp.where(keep, candidate, prefix), done | (count == k)

    _, prefix, _ = jax.lax.while_loop(unfinished, bit, (0, start, found))
    return jax.lax.bitcast_convert_type(prefix, jnp.float32)


TOPK_DESCENT_STEPS = 8
"""TopK: distinct values of a column walked down before the radix select takes over."""


def _descend(pre: jax.Array, k) -> tuple[jax.Array, jax.Array]:
    """(t, found) per column of pre (width, B): walk down its distinct values, largest
    first, for at most TOPK_DESCENT_STEPS of them, two column reductions each; found
    where the k-th largest (t, its value) or a value <= 0 (t = 0) was reached. For a
    small k (the usual per-sample L0) this replaces the radix select's 31 passes."""
    k = jnp.asarray(k, jnp.float32)
    t = jnp.full_like(pre[0], jnp.inf)

    def unfinished(carry):
        i, _, found = carry
        return (i < TOPK_DESCENT_STEPS) & ~jnp.all(found)

    def down(carry):
        i, t, found = carry
        below = jnp.max(jnp.where(pre < t[None, :], pre, -jnp.inf), axis=0)
        now = (count_at_least(pre, below, 0) >= k) | (below <= 0)
        return i + 1, jnp.where(found, t, below), found | now

    _, t, found = jax.lax.while_loop(unfinished, down, (0, t, t < 0))
    return jnp.maximum(t, 0.0), found


def topk_mask(pre: jax.Array, k) -> jax.Array:
    """True at the k largest entries of each column of pre (width, B) that are >= 0 (all
    a ReLU keeps; a negative entry's latent is 0 either way); k may be traced. Exactly k
    per column unless values tie or fewer than k are >= 0."""
    t, found = _descend(pre, k)
    t = jnp.where(found, t, kth_largest_positive(pre, k, 0, found))
    return pre >= t[None, :]


def batch_topk_mask(pre: jax.Array, k, guess=0.0) -> jax.Array:
    """True at the k * B largest entries >= 0 of the whole batch pre (width, B). `guess`
    (BatchTopK's running threshold) only speeds the search up: any guess, NaN and
    negative included, gives the same mask."""
    return pre >= batch_kth_threshold(pre, k * pre.shape[1], guess)
