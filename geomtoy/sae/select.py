"""Counting selections of SAE pre-activations: the count of entries >= a threshold, and
BatchTopK's search for the threshold of the k largest entries of a whole batch, started
from a guess (the last batch's threshold) so that a few counting passes suffice."""

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
    entries as model._kth_largest_positive(pre, k, None) selects, found from a guess of t.

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
