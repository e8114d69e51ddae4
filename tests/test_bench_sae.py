"""The SAE benchmark's PyTorch reference computes geomtoy's SAE loss (same model, same
reduction), so the speed comparison is between equal workloads."""

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
