"""Finite datasets, their sparse and dense losses, full-batch training and the
data-point dimensionality (geomtoy.engine.finite, geomtoy.engine.fullbatch, geometry.datapoints)."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from geomtoy import geometry
from geomtoy.engine import finite, fullbatch
from geomtoy.engine.train import HParams
from geomtoy.geometry import datapoints
from geomtoy.spec import Shape

# one compiled program per call shape instead of op-by-op dispatch (test time)
_sample = jax.jit(finite.sample, static_argnums=(2, 3))
_to_dense = jax.jit(finite.to_dense, static_argnums=1)
_dimensionality = jax.jit(datapoints.dimensionality)


def _dataset(n=300, T=64, p=0.03, seed=0):
    K = finite.capacity(n, p)
    return _sample(jax.random.key(seed), jnp.full((n,), p), T, K), K


def test_capacity_is_the_binomial_tail():
    n, q = 1000, 0.01
    K = finite.capacity(n, q, tail=1e-12)
    tail = lambda k: sum(math.comb(n, j) * q**j * (1 - q) ** (n - j) for j in range(k + 1, n + 1))
    assert tail(K) <= 1e-12 < tail(K - 1)
    assert finite.capacity(50, 1.0) == 50


def test_samples_are_unit_norm_with_the_right_marginals():
    n, T = 20, 40_000
    p = jnp.linspace(0.02, 0.3, n)  # non-uniform: thinning of the q = 0.3 candidates
    ds = _sample(jax.random.key(1), p, T, finite.capacity(n, 0.3))
    x = np.asarray(_to_dense(ds, n))
    assert int(ds.truncated) == 0
    present = x > 0
    # each frequency within 4 standard errors of p_i
    se = np.sqrt(np.asarray(p) * (1 - np.asarray(p)) / T)
    assert np.all(np.abs(present.mean(axis=1) - np.asarray(p)) < 4 * se)
    norms = np.linalg.norm(x, axis=0)
    np.testing.assert_allclose(norms[present.any(axis=0)], 1.0, rtol=1e-5)
    assert np.all(norms[~present.any(axis=0)] == 0)
    # before rescaling the values are Uniform[0, 1): a lone present feature is rescaled to 1,
    # so check independence of presence instead: pairwise co-occurrence ~ p_i p_j
    co = present[0] & present[-1]
    assert abs(co.mean() - float(p[0] * p[-1])) < 4 * math.sqrt(float(p[0] * p[-1]) / T)


@pytest.mark.parametrize("block_entries", [finite.LOSS_BLOCK_ENTRIES, 300 * 7])
def test_sparse_and_dense_losses_and_gradients_agree(monkeypatch, block_entries):
    """Same loss and gradients to 1e-5, also when the output term runs in padded blocks."""
    monkeypatch.setattr(finite, "LOSS_BLOCK_ENTRIES", block_entries)
    n, m = 300, 3
    ds, _ = _dataset(n=n, T=64)
    x = _to_dense(ds, n)
    k_w, k_b, k_i = jax.random.split(jax.random.key(2), 3)
    W = 0.4 * jax.random.normal(k_w, (m, n))
    b = 0.1 * jax.random.normal(k_b, (n,))  # both signs: some outputs active without input
    importance = jax.random.uniform(k_i, (n,), minval=0.5, maxval=1.5)
    grad = lambda f, d: jax.jit(jax.value_and_grad(f, argnums=(0, 1)))(W, b, d, importance)
    (l_dense, g_dense), (l_sparse, g_sparse) = (
        grad(finite.loss_dense, x),
        grad(finite.loss_sparse, ds),
    )
    np.testing.assert_allclose(l_sparse, l_dense, rtol=1e-5, atol=1e-6)
    for gd, gs in zip(g_dense, g_sparse):
        np.testing.assert_allclose(gs, gd, rtol=1e-5, atol=1e-6)
    # and the dense loss is the paper's: sum over features, mean over samples
    x_hat = np.maximum(
        np.asarray(W).T @ (np.asarray(W) @ np.asarray(x)) + np.asarray(b)[:, None], 0
    )
    ref = np.sum(np.asarray(importance)[:, None] * (np.asarray(x) - x_hat) ** 2) / 64
    np.testing.assert_allclose(l_dense, ref, rtol=1e-5)


@pytest.mark.slow  # over the fast suite's time budget: make test-all
def test_a_dataset_depends_only_on_root_seed_instance_id_and_seed():
    shape = fullbatch.FiniteShape(50, 2, 16, finite.capacity(50, 0.1), steps=10, warmup_steps=1)
    hp = HParams.create(4, 50, feature_probability=0.1, seed=[0, 1, 0, 1], instance_id=[7, 7, 8, 8])
    alone = HParams.create(1, 50, feature_probability=0.1, seed=1, instance_id=8)
    full = fullbatch.datasets(shape, hp, root_seed=3)
    one = fullbatch.datasets(shape, alone, root_seed=3)
    np.testing.assert_array_equal(full.index[3], one.index[0])
    np.testing.assert_array_equal(full.value[3], one.value[0])
    other_root = fullbatch.datasets(shape, alone, root_seed=4)
    assert not np.array_equal(other_root.value[0], one.value[0])
    one_set = lambda i: finite.Dataset(full.index[i], full.value[i], full.truncated[i])
    dense = [np.asarray(_to_dense(one_set(i), 50)) for i in range(4)]
    assert all(not np.array_equal(dense[i], dense[j]) for i in range(4) for j in range(i))


def test_datapoint_dimensionality_of_regular_polygons():
    """k points of a regular k-gon in 2-D each get 2/k; equal to the Gram-based D_i."""
    for k in (3, 5, 7, 12):
        angle = 2 * np.pi * np.arange(k) / k
        H = 1.7 * np.stack([np.cos(angle), np.sin(angle)])
        np.testing.assert_allclose(_dimensionality(jnp.asarray(H)), 2 / k, rtol=1e-5)
    W = jax.random.normal(jax.random.key(5), (3, 40))
    W = W.at[:, 4].set(0.0)
    D = _dimensionality(W)
    np.testing.assert_allclose(D, jax.jit(geometry.feature_dimensionality)(W), rtol=1e-4, atol=1e-6)
    assert float(D[4]) == 0.0


def test_warmup_cosine_schedule():
    shape = fullbatch.FiniteShape(5, 2, 3, 5, steps=1100, warmup_steps=100)
    assert shape.schedule == "warmup_cosine"
    lr = fullbatch.lr_schedule(shape, 1e-3)
    np.testing.assert_allclose(
        [lr(0), lr(50), lr(100), lr(600), lr(1100)], [0, 5e-4, 1e-3, 5e-4, 0], atol=1e-9
    )


def _memorise_three(optimizer: str, lr: float):
    n, p = 1000, 0.01
    shape = fullbatch.FiniteShape(
        n,
        2,
        3,
        finite.capacity(n, p),
        steps=5000,
        warmup_steps=250,
        optimizer=optimizer,
        representation="dense",
    )
    hp = HParams.create(4, n, feature_probability=p, seed=np.arange(4), lr=lr)
    return fullbatch.train_instances(shape, hp, chunk_steps=5000).measures


def _angles(H):
    """H (I, 2, T) -> gaps (degrees) between consecutive hidden vectors around the circle."""
    a = np.sort(np.degrees(np.arctan2(H[:, 1], H[:, 0])), axis=-1)
    return np.diff(np.concatenate([a, a[:, :1] + 360], axis=-1), axis=-1)


@pytest.mark.slow
def test_three_points_memorised_as_an_equilateral_triangle():
    """T = 3, m = 2, n = 1000, 1-S = 0.01, 5000 full-batch steps with warm-up and cosine
    decay. With rotation-invariant SGD (lr 0.1) the three hidden vectors form an
    equilateral triangle: D_X within 0.05 of 2/3 in at least 3 of 4 seeds (the paper keeps
    the best seed at m = 2; the fourth ends at angles 104/128/128 degrees). With the AdamW recipe the loss is just as zero, and the points
    stop where their pairwise angles first reach 90 degrees (geomtoy.engine.fullbatch._optimizer):
    the dimensionalities still sum to m = 2, each angle is >= 90 degrees."""
    sgd = _memorise_three("sgd", 0.1)
    assert np.all(sgd["train_loss"] < 1e-3)
    triangle = np.all(np.abs(sgd["sample_dimensionality"] - 2 / 3) < 0.05, axis=1)
    assert triangle.sum() >= 3, sgd["sample_dimensionality"]
    # the geometry labels the regular ones (gaps within GAP_RTOL of 120 degrees): 2 of 4 seeds
    labels = geometry.analyze(sgd["hidden"]).summary
    assert (labels == "triangle").sum() >= 2, labels
    adamw = _memorise_three("adamw", 1e-3)
    assert np.all(adamw["train_loss"] < 1e-3)
    np.testing.assert_allclose(adamw["sample_dimensionality"].sum(axis=1), 2.0, atol=0.05)
    gaps = _angles(adamw["hidden"])
    assert np.all(gaps >= 88.0), gaps


@pytest.mark.slow
def test_many_samples_store_five_features_in_a_pentagon():
    """T = 2560, m = 2: the default scale of sweeps/double_descent.toml (n = 200,
    1-S = 0.02, 4000 full-batch AdamW steps, 200 warm-up), its instances 60 and 61. The
    model stores features, not data points: five long features, their D_i below 2/5
    because the 195 short features add to the denominator (0.28-0.36 measured), and at
    least one seed an exact pentagon (the paper keeps the best seed at m = 2; the other
    seed's five are a slightly irregular ring); every data point's D_X is far smaller."""
    shape = Shape(
        n_features=200,
        n_hidden=2,
        steps=4000,
        schedule="warmup_cosine",
        warmup_steps=200,
        n_samples=2560,
        eval_samples=4096,
    )
    hp = HParams.create(2, 200, feature_probability=0.02, seed=[0, 1], instance_id=[60, 61])
    result = fullbatch.train_instances(shape, hp, chunk_steps=4000)
    W, m = result.params.W, result.measures
    pentagons = 0
    for i in range(2):
        norm = np.linalg.norm(W[i], axis=0)
        five = np.argsort(norm)[-5:]
        assert np.all(norm[five] > 0.9), np.sort(norm)[-7:]
        d = m["feature_dimensionality"][i][five]
        assert np.all((d > 0.25) & (d < 2 / 5)), d
        assert m["sample_dimensionality"][i].max() < 0.1 * d.min()
        label = geometry.analyze(W[i][None][:, :, five]).summary[0]
        pentagons += label == "pentagon" and np.sum(norm > 0.5) == 5
    assert pentagons >= 1
