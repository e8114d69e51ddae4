"""The SAE benchmark's PyTorch reference (one SAE at a time) computes geomtoy's SAE loss and
gradients for every architecture (same model, same reduction), so the speed comparison is
between equal workloads."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from geomtoy.sae import model as sae

torch = pytest.importorskip("torch")
from bench import sae_torch  # noqa: E402


def _params(model) -> sae.SAEParams:
    """geomtoy's feature-major SAEParams of the reference's (B, m)-layout module."""
    t = lambda a: jnp.asarray(a.detach().numpy())  # noqa: E731
    theta = getattr(model, "log_threshold", None)
    return sae.SAEParams(
        W_enc=t(model.W_enc).T, b_enc=t(model.b_enc), W_dec=t(model.W_dec).T,
        b_dec=t(model.b_dec), log_threshold=None if theta is None else t(theta),
    )  # fmt: skip


@pytest.mark.parametrize("activation", sae_torch.ACTIVATIONS)
def test_reference_loss_and_gradient_equal_geomtoy(activation):
    """Loss and every gradient (JumpReLU's straight-through threshold gradient included)
    of one reference SAE equal geomtoy's on the same batch."""
    assert set(sae_torch.ACTIVATIONS) == set(sae.ACTIVATIONS)
    model, _ = sae_torch.make(6, 4, 64, seed=1, activation=activation, k=3, l1=0.05)
    with torch.no_grad():
        model.b_enc.add_(torch.linspace(-0.1, 0.1, 64))
        if activation == "jumprelu":
            model.log_threshold.add_(torch.linspace(0.0, 2.0, 64))  # thresholds 0.01 .. 0.07
    h = model.generate_batch(32)  # (B, m)
    ref = model(h)
    ref.backward()
    grad_fn = jax.jit(jax.value_and_grad(sae.loss, argnums=1, has_aux=True), static_argnums=0)
    (value, _), g = grad_fn(activation, _params(model), jnp.asarray(h.numpy().T), model.l1, 3)
    np.testing.assert_allclose(float(value), float(ref.detach()), rtol=1e-5)
    pairs = [(g.W_enc.T, model.W_enc), (g.b_enc, model.b_enc), (g.b_dec, model.b_dec)]
    if activation == "jumprelu":
        pairs.append((g.log_threshold, model.log_threshold))
    for got, param in pairs:
        np.testing.assert_allclose(np.asarray(got), param.grad.numpy(), rtol=1e-4, atol=1e-7)
    # the decoder: geomtoy's gradient reaches the stored columns through their
    # normalisation, as the reference's does (its rows are unit norm here)
    np.testing.assert_allclose(np.asarray(g.W_dec).T, model.W_dec.grad.numpy(),
                               rtol=1e-4, atol=1e-7)  # fmt: skip


def test_reference_step_keeps_unit_decoder_rows():
    model, opt = sae_torch.make(6, 4, 8, activation="relu")
    sae_torch.optimize(model, opt, 2, 16)
    np.testing.assert_allclose(model.W_dec.norm(dim=-1).detach().numpy(), 1.0, rtol=1e-6)
