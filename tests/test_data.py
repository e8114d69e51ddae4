"""The sparse-feature sampler has the paper's distribution (paper §3.1; docs/paper.md check C1)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from geomtoy.engine import data, rng

N = 100_000
TOL = 1e-2  # on 10^5 samples: standard errors are <= 1.6e-3 for every statistic below


@pytest.mark.parametrize("sampler", data.SAMPLERS)
def test_marginals_per_feature(sampler):
    p = jnp.array([1.0, 0.5, 0.1, 0.03], jnp.float32)
    x = np.asarray(data.sample_sparse(jax.random.key(3), p, N, sampler=sampler))
    assert x.shape == (4, N)
    present = x != 0
    np.testing.assert_allclose(present.mean(axis=1), p, atol=TOL)
    for i in range(4):
        v = x[i][present[i]]
        assert v.min() >= 0.0 and v.max() < 1.0
        np.testing.assert_allclose(v.mean(), 0.5, atol=TOL * (1 / np.sqrt(p[i])))
        np.testing.assert_allclose(v.var(), 1 / 12, atol=TOL * (1 / np.sqrt(p[i])))
    # a histogram of the present values is flat
    hist, _ = np.histogram(x[0], bins=10, range=(0, 1))
    np.testing.assert_allclose(hist / N, 0.1, atol=TOL)


@pytest.mark.parametrize("sampler", data.SAMPLERS)
def test_signed_values_for_abs_task(sampler):
    p = jnp.array([0.5], jnp.float32)
    x = np.asarray(data.sample_sparse(jax.random.key(4), p, N, signed=True, sampler=sampler))[0]
    v = x[x != 0]
    np.testing.assert_allclose(len(v) / N, 0.5, atol=TOL)
    assert v.min() >= -1.0 and v.max() < 1.0
    np.testing.assert_allclose(v.mean(), 0.0, atol=TOL)
    np.testing.assert_allclose(v.var(), 1 / 3, atol=2 * TOL)


@pytest.mark.parametrize("sampler", data.SAMPLERS)
def test_independent_across_features_and_instances(sampler):
    p = jnp.full((3,), 0.3, jnp.float32)
    keys = [rng.step_key(rng.instance_key(0, i, 0), 0) for i in (0, 1)]
    x0, x1 = (np.asarray(data.sample_sparse(k, p, N, sampler=sampler)) for k in keys)
    on0, on1 = x0 != 0, x1 != 0
    # presence events: joint frequency = product of marginals, within features and across instances
    np.testing.assert_allclose((on0[0] & on0[1]).mean(), 0.09, atol=TOL)
    np.testing.assert_allclose((on0[0] & on1[0]).mean(), 0.09, atol=TOL)
    assert abs(np.corrcoef(x0[0], x0[2])[0, 1]) < TOL * 2
    assert abs(np.corrcoef(x0[1], x1[1])[0, 1]) < TOL * 2
    # the value given presence is independent of the other features' presence
    np.testing.assert_allclose(x0[0][on0[0] & on0[1]].mean(), 0.5, atol=2 * TOL)


def _lowbias32_np(x):
    x = x ^ (x >> 16)
    x = (x * 0x7FEB352D) & 0xFFFFFFFF
    x = x ^ (x >> 15)
    x = (x * 0x846CA68B) & 0xFFFFFFFF
    return x ^ (x >> 16)


def test_hash_uniform_matches_numpy_reference():
    key = rng.step_key(rng.instance_key(0, 7, 1), 42)
    k = np.asarray(jax.random.bits(key, (2,), jnp.uint32)).astype(np.uint64)
    c = np.arange(3 * 50, dtype=np.uint64)
    x = _lowbias32_np((c * 0x9E3779B9 + k[0]) & 0xFFFFFFFF)
    x = _lowbias32_np(x ^ k[1])
    want = (x >> 9).astype(np.float64) * 2.0**-23
    np.testing.assert_array_equal(np.asarray(data.hash_uniform(key, (3, 50))), want.reshape(3, 50))


def test_hash_streams_of_consecutive_steps_and_instances_are_uncorrelated():
    """Neighbouring keys (steps t, t+1; instances i, i+1) give uncorrelated uniforms, and
    consecutive counters within one stream are uncorrelated (lag-1 and lag-n)."""
    base = rng.instance_key(0, 3, 0)
    streams = [
        data.hash_uniform(k, (N,))
        for k in (
            rng.step_key(base, 5),
            rng.step_key(base, 6),
            rng.step_key(rng.instance_key(0, 4, 0), 5),
        )
    ]
    a, b, c = (np.asarray(s, np.float64) for s in streams)
    for other in (b, c):
        assert abs(np.corrcoef(a, other)[0, 1]) < TOL
    assert abs(np.corrcoef(a[:-1], a[1:])[0, 1]) < TOL
    assert abs(np.corrcoef(a[:-5], a[5:])[0, 1]) < TOL
    np.testing.assert_allclose(np.histogram(a, bins=16, range=(0, 1))[0] / N, 1 / 16, atol=TOL / 4)


def _set_batch(structure, p, set_size, n=4, signed=False):
    rows = data.uniform_rows(n, structure, set_size)
    U = data.uniform(jax.random.key(11), (rows, N))
    return np.asarray(
        data.features_from_uniform(U, jnp.full((n,), p, jnp.float32), structure, set_size, signed)
    )


def test_correlated_sets_switch_on_together_with_independent_values():
    x = _set_batch("correlated", 0.3, 2)
    on = x != 0
    np.testing.assert_array_equal(on[0], on[1])  # same set: on and off together
    np.testing.assert_array_equal(on[2], on[3])
    np.testing.assert_allclose(on.mean(axis=1), 0.3, atol=TOL)  # marginal p
    np.testing.assert_allclose((on[0] & on[2]).mean(), 0.09, atol=TOL)  # sets independent
    both = on[0]
    assert abs(np.corrcoef(x[0][both], x[1][both])[0, 1]) < 2 * TOL  # values independent
    np.testing.assert_allclose(x[0][both].mean(), 0.5, atol=TOL)


def test_anticorrelated_sets_have_one_active_member():
    x = _set_batch("anticorrelated", 0.4, 2)
    on = x != 0
    assert not np.any(on[0] & on[1]) and not np.any(on[2] & on[3])  # never together
    np.testing.assert_allclose((on[0] | on[1]).mean(), 0.4, atol=TOL)  # set active w.p. p
    np.testing.assert_allclose(on.mean(axis=1), 0.2, atol=TOL)  # each member p / 2
    np.testing.assert_allclose((on[0] & on[2]).mean(), 0.04, atol=TOL)  # sets independent
    v = x[0][on[0]]
    np.testing.assert_allclose([v.mean(), v.var()], [0.5, 1 / 12], atol=TOL)


def test_independent_structure_equals_the_plain_sampler():
    U = data.uniform(jax.random.key(2), (3, 1000))
    p = jnp.array([0.2, 0.5, 1.0], jnp.float32)
    np.testing.assert_array_equal(data.features_from_uniform(U, p), data.sparse_from_uniform(U, p))


def test_hierarchical_children_fire_only_with_their_parent_and_exclusively():
    """Sets of 3: a parent (p = 0.3) and two children with p = 0.4, 0.5 given the parent."""
    p = jnp.array([0.3, 0.4, 0.5, 0.3, 0.4, 0.5], jnp.float32)
    U = data.uniform(jax.random.key(12), (data.uniform_rows(6, "hierarchical", 3), N))
    x = np.asarray(data.features_from_uniform(U, p, "hierarchical", 3))
    on = x != 0
    for parent in (0, 3):
        kids = on[parent + 1 : parent + 3]
        assert not np.any(kids & ~on[parent])  # a child only with its parent
        assert not np.any(kids[0] & kids[1])  # siblings mutually exclusive
    np.testing.assert_allclose(on.mean(axis=1), [0.3, 0.12, 0.15] * 2, atol=TOL)  # marginals
    given = on[1:3, on[0]].mean(axis=1)
    np.testing.assert_allclose(given, [0.4, 0.5], atol=2 * TOL)  # p given the parent
    np.testing.assert_allclose((on[0] & on[3]).mean(), 0.09, atol=TOL)  # trees independent
    v = x[1][on[1]]
    np.testing.assert_allclose([v.mean(), v.var()], [0.5, 1 / 12], atol=TOL)
