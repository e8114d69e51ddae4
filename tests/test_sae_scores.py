"""Ground-truth SAE scores (SynthSAEBench's vocabulary) against NumPy oracles and hand
counts; JumpReLU and Matryoshka against NumPy; the synthbench source (L0 steering:
test_sae_steer.py)."""

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from geomtoy import spec
from geomtoy.sae import evaluate, scores, source
from geomtoy.sae import model as sae
from geomtoy.sae import sweep as sae_sweep
from geomtoy.sae import train as sae_train


def _stacked(W_enc, W_dec):
    m, w = W_dec.shape
    p = sae.SAEParams(W_enc=W_enc, b_enc=np.zeros(w), W_dec=W_dec, b_dec=np.zeros(m))
    return jax.tree.map(lambda a: jnp.asarray(a, jnp.float32)[None], p)


def _evaluate(W, W_enc, W_dec, structure="independent", set_size=1):
    n, m, w = W.shape[1], W.shape[0], W_dec.shape[1]
    shape = sae_train.SAEShape(n, m, w, source="linear", eval_samples=8192,
                               structure=structure, set_size=set_size)  # fmt: skip
    hp = sae_train.SAEHParams.create(W[None], feature_probability=0.2)
    return evaluate.evaluate(_stacked(W_enc, W_dec), jnp.zeros(1), hp, shape)


def test_true_dictionary_with_perfect_encoder_scores_one():
    """Decoder = the true orthonormal dictionary, encoder its transpose: every latent is
    its feature, so mcc = uniqueness = precision = recall = f1 = shrinkage = 1 and, on a
    hierarchical source, nothing is absorbed."""
    W = np.eye(4, dtype=np.float32)
    stats = _evaluate(W, W.T, W, structure="hierarchical", set_size=2)
    for name in ("mcc", "uniqueness", "precision", "recall", "f1", "shrinkage"):
        assert stats[name][0] == pytest.approx(1.0, abs=1e-6), name
    assert stats["absorption"][0] == 0.0
    np.testing.assert_allclose(stats["feature_f1"], 1.0)
    assert stats["true_l0"][0] == pytest.approx(stats["l0"][0])


def test_permuted_latents_change_nothing():
    r = np.random.default_rng(0)
    W = np.linalg.qr(r.normal(size=(5, 5)))[0].astype(np.float32)[:, :4]
    W_dec = (W @ np.eye(4, 6) + 0.3 * r.normal(size=(5, 6))).astype(np.float32)
    W_enc = (W_dec.T + 0.1 * r.normal(size=(6, 5))).astype(np.float32)
    perm = r.permutation(6)
    a = _evaluate(W, W_enc, W_dec)
    b = _evaluate(W, W_enc[perm], W_dec[:, perm])
    for name in ("mcc", "uniqueness", "precision", "recall", "f1", "shrinkage", "l0"):
        np.testing.assert_allclose(a[name], b[name], rtol=1e-6, err_msg=name)
    np.testing.assert_allclose(a["feature_mcc"], b["feature_mcc"], rtol=1e-6)


def test_duplicated_latents_lower_uniqueness_not_mcc():
    """Latents (e0, e0, e1, e2) over true features e0, e1, e2: three distinct best
    features for four latents; the one-to-one matching still finds every feature."""
    W = np.eye(3)[None]
    W_dec = np.eye(3)[:, [0, 0, 1, 2]][None]
    cos = scores.abs_cosines(W, W_dec)
    assert scores.uniqueness(scores.best_feature(cos))[0] == pytest.approx(3 / 4)
    _, matched = scores.hungarian(cos)
    assert scores.mcc(matched)[0] == pytest.approx(1.0)


def test_mcc_is_the_best_one_to_one_matching():
    """The Hungarian mcc equals a brute-force maximum over every injection of the
    features into the latents (NumPy oracle)."""
    r = np.random.default_rng(1)
    W, W_dec = r.normal(size=(1, 4, 3)), r.normal(size=(1, 4, 5))
    cos = scores.abs_cosines(W, W_dec)[0]
    brute = max(np.mean(cos[np.arange(3), list(c)]) for c in itertools.permutations(range(5), 3))
    _, matched = scores.hungarian(scores.abs_cosines(W, W_dec))
    assert scores.mcc(matched)[0] == pytest.approx(brute, rel=1e-12)
    assert scores.pairwise_mcc(W[0], W_dec[0]) == pytest.approx(brute, rel=1e-12)


def test_unrepresented_features_are_never_matched():
    W = np.array([[1.0, 0.0, 0.01], [0.0, 1.0, 0.0]])[None]  # feature 2 not represented
    cos = scores.abs_cosines(W, np.eye(2)[None])
    latent, matched = scores.hungarian(cos)
    assert latent[0, 2] == -1 and np.isnan(matched[0, 2]) and scores.mcc(matched)[0] == 1.0


def test_precision_recall_f1_hand_counted():
    """Latent 0 detects feature 0: fires on samples 0, 1, 2, the feature is active on
    1, 2, 3, 4 -> TP 2, FP 1, FN 2: precision 2/3, recall 1/2, F1 4/7. Latent 1 never
    fires (dead): 0, 0, 0. Means over the two latents."""
    f = jnp.array([[1.0, 2.0, 1.0, 0.0, 0.0, 0.0], [0.0] * 6])
    x = jnp.array([[0.0, 1.0, 1.0, 1.0, 1.0, 0.0], [1.0, 0.0, 0.0, 0.0, 0.0, 0.0]])
    h = jnp.ones((2, 6))
    match = (jnp.array([0, 1]), jnp.array([0, 1]), jnp.array([-1, -1]))
    sums = jax.tree.map(np.asarray, evaluate._match_sums(f, x, h, h, match))
    np.testing.assert_array_equal(sums["tp"], [2, 0])
    np.testing.assert_array_equal(sums["fp"], [1, 0])
    np.testing.assert_array_equal(sums["fn"], [2, 1])
    d = scores.detection(sums["tp"], sums["fp"], sums["fn"])
    np.testing.assert_allclose(d["precision"], [2 / 3, 0])
    np.testing.assert_allclose(d["recall"], [1 / 2, 0])
    np.testing.assert_allclose(d["f1"], [4 / 7, 0])
    means = scores.latent_means({k: v[None] for k, v in d.items()})
    assert means["f1"][0] == pytest.approx(2 / 7)


def test_absorption_hand_counted():
    """Feature 0 is the parent of 1 and 2; the parent's latent 0 fires on samples 0, 2
    only. Children active at samples 0, 1 (feature 1) and 2, 3 (feature 2): the parent's
    latent is silent at 2 of the 4 child activations."""
    f = jnp.array([[1.0, 0.0, 1.0, 0.0], [1.0, 1.0, 0.0, 0.0], [0.0, 0.0, 1.0, 1.0]])
    x = jnp.array([[1.0, 1.0, 1.0, 1.0], [1.0, 1.0, 0.0, 0.0], [0.0, 0.0, 1.0, 1.0]])
    match = (jnp.arange(3), jnp.arange(3), jnp.array([-1, 0, 0]))
    sums = jax.tree.map(np.asarray, evaluate._match_sums(f, x, x, x, match))
    np.testing.assert_array_equal(sums["child"], [0, 2, 2])
    np.testing.assert_array_equal(sums["absorbed"], [0, 1, 1])
    assert scores.absorption(sums["absorbed"][None], sums["child"][None])[0] == 0.5


def test_shrinkage_is_the_mean_norm_ratio():
    h = jnp.array([[3.0, 0.0, 1.0], [4.0, 0.0, 0.0]])
    h_hat = jnp.array([[1.5, 1.0, 2.0], [2.0, 0.0, 0.0]])
    one = jnp.zeros((1, 3))
    sums = evaluate._match_sums(one, one, h, h_hat, (jnp.array([-1]),) * 2 + (jnp.array([-1]),))
    assert float(sums["shrink"] / sums["shrink_n"]) == pytest.approx((0.5 + 2.0) / 2)


def test_seed_statistics():
    r = np.random.default_rng(2)
    D = r.normal(size=(3, 4, 5))
    D[1] = D[0][:, ::-1]  # seed 1 = seed 0 permuted: pairwise mcc 1
    pw = scores.seed_mcc(D, np.array([0, 0, 1]), np.array([5, 5, 5]))
    np.testing.assert_allclose(pw[:2], 1.0)
    assert np.isnan(pw[2])
    mean, std = scores.seed_spread(np.array([1.0, 3.0, 5.0]), np.array([0, 0, 1]))
    np.testing.assert_allclose(mean, [2.0, 2.0, 5.0])
    np.testing.assert_allclose(std[:2], np.sqrt(2.0))
    assert np.isnan(std[2])


def test_jumprelu_forward_and_pseudo_gradients_match_numpy():
    """f = z H(z - theta); d loss / d log theta from the rectangle-kernel pseudo-
    derivatives (Rajamanoharan et al. 2024) of both the reconstruction and the L0 term."""
    r = np.random.default_rng(3)
    m, w, B, eps = 3, 4, 64, sae.JUMPRELU_BANDWIDTH
    p = sae.init_params(jax.random.key(0), m, w)
    p = p.replace(log_threshold=jnp.log(jnp.array([0.05, 0.2, 0.4, 0.6])),
                  W_enc=jnp.asarray(r.normal(size=(w, m)), jnp.float32))  # fmt: skip
    h = jnp.asarray(r.normal(size=(m, B)), jnp.float32)
    coef = 0.3
    grad_fn = jax.jit(jax.value_and_grad(sae.loss, 1, has_aux=True), static_argnums=0)
    (value, (f, _)), g = grad_fn("jumprelu", p, h, coef)
    z = np.asarray(sae.pre_activation(p, h), np.float64)
    theta = np.exp(np.asarray(p.log_threshold, np.float64))[:, None]
    D = np.asarray(p.W_dec, np.float64)
    D = D / np.linalg.norm(D, axis=0)
    f_ref = np.where(z > theta, z, 0.0)
    np.testing.assert_allclose(f, f_ref, rtol=1e-5, atol=1e-6)
    resid = D @ f_ref + np.asarray(p.b_dec)[:, None] - h
    l0 = (z > theta).sum(axis=0)
    assert value == pytest.approx(np.mean(np.mean(resid**2, axis=0) + coef * l0), rel=1e-5)
    df = D.T @ (2 * resid / (m * B))  # d loss / d f
    K = (np.abs((z - theta) / eps) < 0.5) / eps
    d_theta = np.sum(-df * theta * K, axis=1) + coef / B * np.sum(-K, axis=1)
    np.testing.assert_allclose(g.log_threshold, d_theta * theta[:, 0], rtol=1e-4, atol=1e-6)


def test_matryoshka_loss_sums_the_prefix_reconstructions():
    r = np.random.default_rng(4)
    m, w, B = 3, 64, 32
    p = sae.init_params(jax.random.key(1), m, w).replace(b_dec=jnp.asarray(r.normal(size=m)))
    h = jnp.asarray(r.normal(size=(m, B)), jnp.float32)
    value, (f, recon) = jax.jit(sae.loss, static_argnums=0)("matryoshka_batchtopk", p, h, 0.0, 4)
    D, f = np.asarray(p.W_dec, np.float64), np.asarray(f, np.float64)
    D = D / np.linalg.norm(D, axis=0)
    assert sae.prefixes(w) == (2, 8, 32, 64)
    total = sum(
        np.mean((D[:, :e] @ f[:e] + np.asarray(p.b_dec)[:, None] - h) ** 2, axis=0)
        for e in sae.prefixes(w)
    )
    assert value == pytest.approx(np.mean(total), rel=1e-5)
    np.testing.assert_allclose(recon, np.mean((D @ f + np.asarray(p.b_dec)[:, None] - h) ** 2, 0),
                               rtol=1e-5)  # fmt: skip


KNOBS = dict(zipf_exponent=0.5, p_max=0.4, p_min=5e-4, roots=4, branching=3, depth=2, rank=5,
             correlation_scale=0.1, magnitude_start=5.0, magnitude_end=4.0, std_mean=0.5,
             std_std=0.5, orthogonalise_steps=10, orthogonalise_lr=3e-4)  # fmt: skip


def test_benchmark_source_respects_its_hierarchy():
    """Children fire only with their parent, siblings never together, a child's value is
    its own magnitude times parent value / parent mean; probabilities are Zipfian."""
    n, m, B = 80, 16, 4096
    W, p, dist = source.benchmark(0, n, m, KNOBS)
    assert p[0] == pytest.approx(0.4) and p[-1] == pytest.approx(5e-4)
    assert np.all(np.diff(p) <= 0)
    np.testing.assert_allclose(np.linalg.norm(W, axis=0), 1.0, rtol=1e-5)
    U = jax.random.uniform(jax.random.key(0), (source.benchmark_rows(n, 5), B))
    x = np.asarray(jax.jit(source.benchmark_features)(jax.tree.map(jnp.asarray, dist), U))
    parent = np.asarray(dist.parent)
    child = parent >= 0
    assert child.sum() == 4 * 3 + 4 * 9
    active = x > 0
    assert not np.any(active[child] & ~active[parent[child]])
    for a in np.unique(parent[child]):
        assert np.all(active[parent == a].sum(axis=0) <= 1)
    assert active[0].mean() == pytest.approx(0.4, abs=0.03)  # 5 sigma of 4096 draws
    free = ~child & (np.arange(n) >= 4)
    assert np.all(x[free][active[free]] >= 0)


def test_synthbench_sweep_and_bad_knobs():
    text = """name = "b"
[source]
results = "synthbench"
n_features = 64
n_hidden = 16
roots = 2
depth = 2
orthogonalise_steps = 2
[sae]
width = 16
activation = "jumprelu"
target_l0 = 3.0
[grid]
"sae.activation" = ["jumprelu", "topk"]
"""
    sw = sae_sweep.loads(text, "b.toml")
    assert sw.toys.dist.parent.shape == (1, 64)
    assert sorted(set(sw.toys.polytope[0])) == ["hierarchy_child", "hierarchy_root", "independent"]
    np.testing.assert_array_equal(sw.values["k"], [1, 3])  # topk: target_l0 sets k
    np.testing.assert_array_equal(sw.values["target_l0"], [3.0, 0.0])
    with pytest.raises(spec.SweepError, match="source.roots"):
        sae_sweep.loads(text.replace("roots = 2", "roots = 20"), "b.toml")
    with pytest.raises(spec.SweepError, match="source.p_min"):
        sae_sweep.loads(text.replace("roots = 2", "p_min = 0.5"), "b.toml")
