"""The sparse-feature sampler has the paper's distribution (PAPER.md §1.1, A1)."""

import jax
import jax.numpy as jnp
import numpy as np

from geomtoy import data, rng

N = 100_000
TOL = 1e-2  # on 10^5 samples: standard errors are <= 1.6e-3 for every statistic below


def test_marginals_per_feature():
    p = jnp.array([1.0, 0.5, 0.1, 0.03], jnp.float32)
    x = np.asarray(data.sample_sparse(jax.random.key(3), p, N))
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


def test_signed_values_for_abs_task():
    p = jnp.array([0.5], jnp.float32)
    x = np.asarray(data.sample_sparse(jax.random.key(4), p, N, signed=True))[0]
    v = x[x != 0]
    np.testing.assert_allclose(len(v) / N, 0.5, atol=TOL)
    assert v.min() >= -1.0 and v.max() < 1.0
    np.testing.assert_allclose(v.mean(), 0.0, atol=TOL)
    np.testing.assert_allclose(v.var(), 1 / 3, atol=2 * TOL)


def test_independent_across_features_and_instances():
    p = jnp.full((3,), 0.3, jnp.float32)
    keys = [rng.step_key(rng.instance_key(0, i, 0), 0) for i in (0, 1)]
    x0, x1 = (np.asarray(data.sample_sparse(k, p, N)) for k in keys)
    on0, on1 = x0 != 0, x1 != 0
    # presence events: joint frequency = product of marginals, within features and across instances
    np.testing.assert_allclose((on0[0] & on0[1]).mean(), 0.09, atol=TOL)
    np.testing.assert_allclose((on0[0] & on1[0]).mean(), 0.09, atol=TOL)
    assert abs(np.corrcoef(x0[0], x0[2])[0, 1]) < TOL * 2
    assert abs(np.corrcoef(x0[1], x1[1])[0, 1]) < TOL * 2
    # the value given presence is independent of the other features' presence
    np.testing.assert_allclose(x0[0][on0[0] & on0[1]].mean(), 0.5, atol=2 * TOL)
