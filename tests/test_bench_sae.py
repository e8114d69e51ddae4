"""The SAE benchmark's PyTorch reference computes geomtoy's SAE loss (same model, same
reduction), so the speed comparison is between equal workloads."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from geomtoy.sae import model as sae

torch = pytest.importorskip("torch")
from bench import sae_torch  # noqa: E402


def test_reference_loss_equals_geomtoy_loss():
    model, _ = sae_torch.make(3, 6, 4, 5)
    h = model.generate_batch(32)  # (B, I, m)
    with torch.no_grad():
        reference = float(model(h))
    total = 0.0
    for i in range(3):
        p = sae.SAEParams(
            W_enc=jnp.asarray(model.W_enc[i].detach().numpy().T),
            b_enc=jnp.asarray(model.b_enc[i].detach().numpy()),
            W_dec=jnp.asarray(model.W_dec[i].detach().numpy().T),
            b_dec=jnp.asarray(model.b_dec[i].detach().numpy()),
        )
        value, _ = sae.loss("relu", p, jnp.asarray(h[:, i].numpy().T), model.l1)
        total += float(value)
    np.testing.assert_allclose(total, reference, rtol=1e-5)


@pytest.mark.parametrize("activation", ["jumprelu", "matryoshka_batchtopk"])
def test_reference_loss_equals_geomtoy_loss_new_architectures(activation):
    """The PyTorch JumpReLU and Matryoshka-BatchTopK loops compute geomtoy's losses, and
    the JumpReLU threshold gradient (straight-through) matches geomtoy's."""
    model, _ = sae_torch.make(3, 6, 4, 64, activation=activation)
    with torch.no_grad():
        model.log_threshold.add_(torch.linspace(0.0, 2.0, 64))  # thresholds 0.01 .. 0.07
    h = model.generate_batch(32)
    ref = model(h)
    ref.backward()
    total, grads = 0.0, []
    for i in range(3):
        p = sae.SAEParams(
            W_enc=jnp.asarray(model.W_enc[i].detach().numpy().T),
            b_enc=jnp.asarray(model.b_enc[i].detach().numpy()),
            W_dec=jnp.asarray(model.W_dec[i].detach().numpy().T),
            b_dec=jnp.asarray(model.b_dec[i].detach().numpy()),
            log_threshold=jnp.asarray(model.log_threshold[i].detach().numpy()),
        )
        grad_fn = jax.value_and_grad(sae.loss, argnums=1, has_aux=True)
        (value, _), g = grad_fn(activation, p, jnp.asarray(h[:, i].numpy().T), model.l1, 2)
        total += float(value)
        grads.append(np.asarray(g.log_threshold))
    np.testing.assert_allclose(total, float(ref.detach()), rtol=1e-5)
    if activation == "jumprelu":
        np.testing.assert_allclose(np.stack(grads), model.log_threshold.grad.numpy(),
                                   rtol=1e-4, atol=1e-7)  # fmt: skip
