"""SAEs: forward, loss and gradient against NumPy, TopK, resampling, recovery scores."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from geomtoy.engine import data, parallel, rng, train
from geomtoy.geometry import recovery
from geomtoy.sae import model as sae
from geomtoy.sae import select, source
from geomtoy.sae import train as sae_train
from tests import reference

M, WIDTH, B = 3, 7, 64


def _random_sae(seed=0):
    r = np.random.default_rng(seed)
    return sae.SAEParams(
        W_enc=jnp.asarray(r.normal(size=(WIDTH, M)), jnp.float32),
        b_enc=jnp.asarray(0.1 * r.normal(size=WIDTH), jnp.float32),
        W_dec=jnp.asarray(r.normal(size=(M, WIDTH)), jnp.float32),
        b_dec=jnp.asarray(0.1 * r.normal(size=M), jnp.float32),
    )


def _np(p):
    return [np.asarray(a, np.float64) for a in (p.W_enc, p.b_enc, p.W_dec, p.b_dec)]


@pytest.mark.parametrize("activation,k", [("relu", 1), ("topk", 2), ("batchtopk", 3)])
def test_forward_loss_gradient_match_numpy(activation, k):
    p = _random_sae()
    h = jnp.asarray(np.random.default_rng(1).normal(size=(M, B)), jnp.float32)
    l1 = 0.3
    f = jax.jit(sae.encode, static_argnums=0)(activation, p, h, k)
    _, f_ref, h_hat_ref = reference.sae_forward(*_np(p), np.asarray(h, np.float64), activation, k)
    np.testing.assert_allclose(f, f_ref, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(sae.decode(p, f), h_hat_ref, rtol=1e-5, atol=1e-5)
    grad_fn = jax.value_and_grad(sae.loss, argnums=1, has_aux=True)
    (value, _), grads = jax.jit(grad_fn, static_argnums=0)(activation, p, h, l1, k)
    ref_value, ref_grads = reference.sae_loss_and_grad(
        *_np(p), np.asarray(h, np.float64), l1, activation, k
    )
    np.testing.assert_allclose(value, ref_value, rtol=1e-5)
    for got, want in zip(_np(grads), ref_grads):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


@pytest.mark.slow  # over the fast suite's time budget: make test-all
def test_topk_keeps_exactly_k_latents():
    p = _random_sae(2).replace(b_enc=jnp.full((WIDTH,), 50.0))  # every pre-activation > 0
    h = jnp.asarray(np.random.default_rng(3).normal(size=(M, B)), jnp.float32)
    for k in range(1, WIDTH + 1):
        f = sae.encode("topk", p, h, jnp.int32(k))
        assert (np.sum(np.asarray(f) > 0, axis=0) == k).all()
        assert int(np.sum(np.asarray(sae.encode("batchtopk", p, h, k)) > 0)) == k * B


def _np_topk_latents(pre, k, axis):
    """NumPy: ReLU of the entries >= the k-th largest (of each column, or of all)."""
    if axis is None:
        kth = np.sort(pre, axis=None)[::-1][k - 1]
    else:
        kth = np.sort(pre, axis=0)[::-1][k - 1][None, :]
    return np.where(pre >= kth, np.maximum(pre, 0.0), 0.0)


def test_topk_masks_select_as_a_sort_does():
    """The radix selects (with their early stop) keep the latents a full sort keeps: with
    ties, negative and zero pre-activations, tiny positive ones, and fewer than k >= 0."""
    r = np.random.default_rng(7)
    pre = r.normal(size=(16, 256)).astype(np.float32)
    pre[:, :8] = np.round(pre[:, :8], 1)  # ties
    pre[:, 8:16] = -np.abs(pre[:, 8:16])  # columns with no positive entry
    pre[:3, 16:24] = [[1e-40], [0.0], [-0.0]]  # a subnormal and signed zeros
    pre[:, 24:32] = -np.abs(pre[:, 24:32])
    pre[0, 24:32] = 2.0  # one positive entry per column, fewer than k
    for k in (1, 2, 3, 16):
        for axis, fn, total in ((0, sae.topk_mask, k), (None, sae.batch_topk_mask, k * 256)):
            mask = np.asarray(jax.jit(fn)(jnp.asarray(pre), jnp.int32(k)))
            got = np.where(mask, np.maximum(pre, 0.0), 0.0)
            np.testing.assert_array_equal(got, _np_topk_latents(pre, total, axis))
    batched = jax.jit(jax.vmap(sae.batch_topk_mask))(jnp.stack([pre, -pre]), jnp.array([1, 5]))
    for i, (x, k) in enumerate(((pre, 1), (-pre, 5))):
        got = np.where(np.asarray(batched[i]), np.maximum(x, 0.0), 0.0)
        np.testing.assert_array_equal(got, _np_topk_latents(x, k * 256, None))


def test_batch_topk_mask_is_the_same_from_any_guess():
    """BatchTopK's search from a guess of the threshold (the last batch's) selects exactly
    the entries the search from 0 and a full sort select, whether the guess is exact, a
    little or far too low or high, subnormal, zero, negative, -0.0, NaN or inf: on a
    batch with ties, signed zeros and subnormals, and one with fewer than k * B >= 0."""
    r = np.random.default_rng(11)
    smooth = r.normal(size=(64, 128)).astype(np.float32) - 0.5
    ties = np.round(smooth, 1)
    ties[:4, :4] = [[1e-40], [0.0], [-0.0], [1e-45]]
    sparse = -np.abs(smooth)
    sparse[0, :7] = [3.0, 2.0, 2.0, 1e-40, 0.0, -0.0, 0.0]  # 7 entries >= 0
    fn = jax.jit(sae.batch_topk_mask)
    for pre in (smooth, ties, sparse):
        for k in (1, 2, 5):
            want = _np_topk_latents(pre, k * 128, None)
            kth = float(np.sort(pre, axis=None)[::-1][k * 128 - 1])
            base = np.asarray(fn(jnp.asarray(pre), k, 0.0))
            radix = pre >= np.asarray(select.kth_largest_positive(jnp.asarray(pre), k * 128, None))
            np.testing.assert_array_equal(base, radix)  # the radix select's mask, exactly
            guesses = [kth, kth * 0.999, kth * 1.001, kth * 0.5, kth * 3.0, kth + 1e-6,
                       np.nextafter(np.float32(kth), np.float32(0)), 1e-40, 0.0, -0.0,
                       -1.0, np.nan, np.inf, 1e30]  # fmt: skip
            for guess in guesses:
                mask = np.asarray(fn(jnp.asarray(pre), k, jnp.float32(guess)))
                np.testing.assert_array_equal(mask, base, err_msg=f"k={k} guess={guess}")
                got = np.where(mask, np.maximum(pre, 0.0), 0.0)
                np.testing.assert_array_equal(got, want, err_msg=f"k={k} guess={guess}")
    many = jnp.asarray(np.stack([smooth, ties, sparse, smooth]))  # vmapped: a guess each
    guesses = jnp.asarray([0.3, 0.0, 1.0, np.nan], jnp.float32)
    batched = jax.jit(jax.vmap(sae.batch_topk_mask))(many, jnp.array([1, 2, 3, 5]), guesses)
    for i, k in enumerate((1, 2, 3, 5)):
        got = np.where(np.asarray(batched[i]), np.maximum(many[i], 0.0), 0.0)
        np.testing.assert_array_equal(got, _np_topk_latents(np.asarray(many[i]), k * 128, None))


@pytest.mark.parametrize(
    "activation",  # matryoshka runs the batch radix select of batchtopk in the fast suite
    [pytest.param("topk", marks=pytest.mark.slow), "matryoshka_batchtopk"],
)
def test_k_architectures_on_four_devices_give_the_one_device_results(activation):
    """The radix selects' loops run inside each device's program (conftest: 4 CPU
    devices): the same SAEs as on one device."""
    shape = sae_train.SAEShape(6, 3, 8, activation=activation, source="synthetic",
                               batch_size=32, resample_every=0, eval_samples=64)  # fmt: skip
    W = np.stack([source.synthetic_dictionary(s, 3, 6) for s in range(8)])
    hp = sae_train.SAEHParams.create(W, feature_probability=0.2, k=np.arange(8) % 3 + 1)
    out = []
    for devices in (1, 4):
        with parallel.devices_used(devices):
            state = sae_train.init_state(shape, hp)
            state, loss = sae_train.train_chunk(state, hp, shape, 3)
            out.append((np.asarray(state.params.W_enc), np.asarray(loss)))
    np.testing.assert_allclose(out[1][0], out[0][0], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(out[1][1], out[0][1], rtol=1e-5)


def test_resample_gives_dead_latents_badly_reconstructed_inputs():
    """`resample` draws inputs by squared reconstruction error: with one badly
    reconstructed sample, every dead latent gets its direction and then fires on it."""
    p = _random_sae(4).replace(b_enc=jnp.full((WIDTH,), -100.0).at[0].set(0.0))
    h = jnp.asarray(np.random.default_rng(5).normal(size=(M, B)), jnp.float32)
    recon = jnp.zeros(B).at[9].set(1.0)
    dead = jnp.arange(WIDTH) > 0
    q = jax.jit(sae.resample)(p, dead, h, recon, jnp.linspace(0.0, 0.99, WIDTH), 0.2)
    v = np.array(h[:, 9] - p.b_dec)
    v /= np.linalg.norm(v)
    np.testing.assert_allclose(np.asarray(q.W_dec)[:, 1:], np.repeat(v[:, None], WIDTH - 1, 1),
                               rtol=1e-5, atol=1e-6)  # fmt: skip
    scale = 0.2 * np.linalg.norm(np.asarray(p.W_enc)[0])
    np.testing.assert_allclose(np.asarray(q.W_enc)[1:], scale * np.tile(v, (WIDTH - 1, 1)),
                               rtol=1e-5, atol=1e-6)  # fmt: skip
    np.testing.assert_array_equal(q.W_enc[0], p.W_enc[0])
    encode = jax.jit(sae.encode, static_argnums=0)
    assert (np.asarray(encode("relu", p, h))[1:] == 0).all()
    assert (np.asarray(encode("relu", q, h))[1:, 9] > 0).all()
    moments = jax.jit(sae.reset_moments)((p, {"other": jnp.ones(3)}), dead)
    assert (np.asarray(moments[0].W_enc)[1:] == 0).all() and moments[0].W_enc[0].any()


@pytest.mark.slow
def test_resampling_revives_dead_latents():
    """Latents with a very negative encoder bias never fire; the check at step 50 gives
    them new directions from badly reconstructed inputs (with fresh Adam moments), after
    which they fire."""
    n = 6
    W = np.eye(4, n, dtype=np.float32)[None].repeat(2, 0)
    shape = sae_train.SAEShape(
        n, 4, 8, batch_size=128, steps=40, resample_every=20, resample_until=1.0,
        source="linear", eval_samples=4096,
    )  # fmt: skip
    hp = sae_train.SAEHParams.create(W, feature_probability=0.3, l1_coefficient=0.01)
    state = sae_train.init_state(shape, hp)
    b_enc = state.params.b_enc.at[:, :4].set(-100.0)
    state = state.replace(params=state.params.replace(b_enc=b_enc))
    state, _ = sae_train.train_chunk(state, hp, shape, 19)
    assert (np.asarray(state.fired)[:, :4] == 0).all()
    state, _ = sae_train.train_chunk(state, hp, shape, 1)
    assert (np.asarray(state.params.b_enc)[:, :4] == 0).all()
    mu = optax.tree_utils.tree_get(state.opt_state, "mu")
    assert (np.asarray(mu.W_enc)[:, :4] == 0).all() and (np.asarray(mu.W_enc)[:, 4:] != 0).any()
    state, _ = sae_train.train_chunk(state, hp, shape, 1)
    assert (np.asarray(state.fired)[:, :4] > 0).all()


def test_true_dictionary_scores_full_recovery():
    """Decoder = the true (orthonormal) features, encoder = its transpose: recovery 1.0,
    MMCS 1.0, and a reconstruction error of 0 up to float rounding."""
    n, m = 4, 4
    W = np.eye(m, n, dtype=np.float32)[None]
    shape = sae_train.SAEShape(n, m, n, source="linear", eval_samples=8192)
    hp = sae_train.SAEHParams.create(W, feature_probability=0.2)
    p = jax.tree.map(
        lambda a: jnp.asarray(a)[None],
        sae.SAEParams(W_enc=W[0].T, b_enc=np.zeros(n), W_dec=W[0], b_dec=np.zeros(m)),
    )
    rec = recovery.feature_recovery(W, np.asarray(p.W_dec))
    np.testing.assert_allclose(rec, 1.0, rtol=1e-6)
    stats = sae_train.evaluate.evaluate(p, jnp.zeros(1), hp, shape)
    cols = recovery.summary(rec, stats["frequency"])
    assert cols["mmcs"][0] == pytest.approx(1.0) and cols["recovered_0.99"][0] == 1.0
    assert stats["mse"][0] < 1e-12 and stats["explained_variance"][0] > 1 - 1e-6
    np.testing.assert_allclose(stats["spliced_loss"], stats["toy_loss"], rtol=1e-6)


def test_recovery_ignores_unrepresented_features():
    W = np.array([[[1.0, 0.0, 0.01]], [[0.0, 1.0, 0.0]]]).transpose(1, 0, 2)  # (1, 2, 3)
    W_dec = np.array([[[0.6], [0.8]]])
    rec = recovery.feature_recovery(W, W_dec)
    np.testing.assert_allclose(rec[0, :2], [0.6, 0.8])
    assert np.isnan(rec[0, 2])


@pytest.mark.slow
def test_instance_does_not_depend_on_its_batch():
    """SAE i trained alone equals row i of a batch of three (fold_in keys)."""
    W = np.stack([source.synthetic_dictionary(s, 2, 5) for s in range(3)])
    shape = sae_train.SAEShape(5, 2, 6, batch_size=64, steps=20, source="synthetic",
                               resample_every=10, eval_samples=1024)  # fmt: skip
    hp = sae_train.SAEHParams.create(W, feature_probability=0.2, l1_coefficient=[0.0, 0.1, 0.2])
    both = sae_train.train_saes(shape, hp, chunk_steps=7)
    one = sae_train.train_saes(shape, jax.tree.map(lambda a: a[1:2], hp), chunk_steps=20)
    np.testing.assert_allclose(both.params.W_dec[1:2], one.params.W_dec, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(both.stats["mse"][1:2], one.stats["mse"], rtol=1e-5)


SHARED = dict(batch_size=64, source="synthetic", resample_every=10, eval_samples=1024,
              shared_data=True)  # fmt: skip


@pytest.mark.slow
def test_shared_data_sae_does_not_depend_on_its_block():
    """SAEs of one source share its stream (shape.shared_data): SAE i trained alone equals
    row i of a block of three trained in other chunks, where the block mixes two sources
    (its per-SAE branch) or not."""
    W = np.stack([source.synthetic_dictionary(s, 2, 5) for s in (0, 0, 1)])
    shape = sae_train.SAEShape(5, 2, 6, steps=20, **SHARED)
    for ids in ([0, 0, 1], [3, 3, 3]):
        hp = sae_train.SAEHParams.create(W, feature_probability=0.2, source_id=ids,
                                         l1_coefficient=[0.0, 0.1, 0.2])  # fmt: skip
        block = sae_train.train_saes(shape, hp, chunk_steps=7)
        for i in range(3):
            one = jax.tree.map(lambda a, i=i: a[i : i + 1], hp)
            alone = sae_train.train_saes(shape, one, 0, 20)
            np.testing.assert_allclose(block.params.W_dec[i : i + 1], alone.params.W_dec,
                                       rtol=1e-5, atol=1e-6)  # fmt: skip


def test_shared_data_batches_come_from_the_source_stream():
    """With shape.shared_data, every seed of a source trains on the batch of the source's
    stream (rng.source_key), not its own: the first step's loss of each SAE equals its own
    init's loss on that batch."""
    n, m, width, root = 5, 2, 6, 3
    W = np.repeat(source.synthetic_dictionary(0, m, n)[None], 2, 0)
    shape = sae_train.SAEShape(n, m, width, steps=1, **SHARED)
    hp = sae_train.SAEHParams.create(W, feature_probability=0.2, l1_coefficient=0.1,
                                     seed=[0, 1], source_id=7)  # fmt: skip
    res = sae_train.train_saes(shape, hp, root_seed=root, chunk_steps=1)
    stream = data.stream(rng.step_key(rng.source_key(root, 7), 0))
    x = data.sample_sparse_from_stream(stream, jnp.full(n, 0.2), 64)
    for i in range(2):
        key = rng.init_key(rng.instance_key(root, i, i))
        p = sae.init_params(key, m, width)
        want, _ = sae.loss("relu", p, jnp.asarray(W[i]) @ x, 0.1)
        assert res.curves["loss"][0, i] == pytest.approx(float(want), rel=1e-6)


def test_shared_data_blocks_give_the_unblocked_results():
    """On CPU, SAEs that share batches train in cache-sized blocks (engine.train.
    instance_block): blocks of one source draw its batch once, a block mixing sources
    draws each SAE's own (the same values), a padded last block adds copies. Every
    blocking gives the results of one vmap over all the SAEs."""
    W = np.stack([source.synthetic_dictionary(s, 2, 5) for s in (0, 0, 1, 1, 1)])
    shape = sae_train.SAEShape(5, 2, 6, steps=12, **SHARED)
    hp = sae_train.SAEHParams.create(W, feature_probability=0.2, source_id=[0, 0, 1, 1, 1],
                                     l1_coefficient=[0.0, 0.1, 0.2, 0.3, 0.1])  # fmt: skip
    results = []
    for block in (None, 2, 3):
        state = sae_train.init_state(shape, hp)
        state, loss = sae_train.train_chunk(state, hp, shape, 12, block=block)
        results.append((np.asarray(state.params.W_dec), np.asarray(loss)))
    for W_dec, loss in results[1:]:
        np.testing.assert_allclose(W_dec, results[0][0], rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(loss, results[0][1], rtol=1e-5)


def test_blocks_without_a_target_l0_skip_steering_and_train_the_same():
    """A block none of whose SAEs has a target L0 compiles without steering (its steps
    count no L0): `resolve` says so, and its SAEs train exactly as in a steered program."""
    W = np.stack([source.synthetic_dictionary(s, 2, 5) for s in range(2)])
    shape = sae_train.SAEShape(5, 2, 6, steps=30, batch_size=64, source="synthetic",
                               resample_every=0, eval_samples=1024)  # fmt: skip
    free = sae_train.SAEHParams.create(W, feature_probability=0.2, l1_coefficient=0.1)
    aimed = sae_train.SAEHParams.create(W, feature_probability=0.2, target_l0=[0.0, 2.0])
    assert shape.steered and not sae_train.resolve(shape, free).steered
    assert sae_train.resolve(shape, aimed).steered
    assert sae_train.resolve(shape, None) is shape
    got = {}
    for steered in (True, False):
        s = dataclasses.replace(shape, steered=steered)
        state = sae_train.init_state(s, free)
        # block None and an explicit shape: train_chunk resolves, so call the program
        state, _ = train._train_chunk(state, free, s, 30, rng.seed_argument(0), None, None)
        got[steered] = state
    np.testing.assert_array_equal(got[True].params.W_dec, got[False].params.W_dec)
    np.testing.assert_array_equal(got[True].coefficient, got[False].coefficient)


def test_dictionary_product_gradients_are_the_plain_products():
    """decode's product D f has the VJP of D @ f (its own only arranges the products)."""
    r = np.random.default_rng(0)
    D, f = (jnp.asarray(r.normal(size=s), jnp.float32) for s in ((3, 7), (7, 11)))
    g = jnp.asarray(r.normal(size=(3, 11)), jnp.float32)
    out, vjp = jax.vjp(sae.dictionary_product, D, f)
    want_out, want_vjp = jax.vjp(jnp.matmul, D, f)
    np.testing.assert_allclose(out, want_out, rtol=1e-6)
    for got, want in zip(vjp(g), want_vjp(g)):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    D64, f64, g64 = (np.asarray(a, np.float64) for a in (D, f, g))
    np.testing.assert_allclose(vjp(g)[0], g64 @ f64.T, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(vjp(g)[1], D64.T @ g64, rtol=1e-5, atol=1e-5)
