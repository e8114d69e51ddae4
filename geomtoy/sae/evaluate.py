"""Statistics of trained SAEs on fresh samples of their toy models' data.

Every SAE of a run is scored on the same evaluation samples (geomtoy.engine.rng.eval_key: common
random numbers), drawn from its own toy model's feature distribution. Per SAE:

  mse                 mean over samples and hidden dims of (h_hat - h)^2
  explained_variance  1 - sum ||h - h_hat||^2 / sum ||h - mean h||^2
  l0                  mean number of active latents (f_j > 0) per sample
  l1                  mean sum_j |f_j| per sample
  frequency           (width,) share of samples on which each latent fires
  toy_loss            the toy model's loss (importance-weighted MSE) on these samples
  spliced_loss        the same loss with h replaced by the SAE's h_hat (NaN for synthetic)

BatchTopK SAEs are evaluated as JumpReLUs at their running threshold.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from geomtoy.engine import data, parallel, rng
from geomtoy.sae import model as sae
from geomtoy.sae.source import hidden, readout


def _sums_one(shape, p: sae.SAEParams, threshold, hp, u: jax.Array) -> dict[str, jax.Array]:
    """Sums of one SAE's statistics over one evaluation batch of uniforms u."""
    x = data.features_from_uniform(
        u, hp.feature_probability, shape.structure, shape.set_size, magnitude=shape.magnitude
    )
    h = hidden(hp.toy, x)
    f = sae.encode(shape.activation, p, h, hp.k, threshold, train=False)
    h_hat = sae.decode(p, f)
    sums = {
        "sse": jnp.sum((h_hat - h) ** 2),
        "sum_h": jnp.sum(h, axis=1),
        "sum_h2": jnp.sum(h * h),
        "active": jnp.sum(f > 0),
        "l1": jnp.sum(jnp.abs(f)),
        "fired": jnp.sum(f > 0, axis=1),
    }
    if shape.source != "synthetic":
        weight = hp.importance[:, None]
        out = lambda h: readout(shape.source, hp.toy, h, shape.output_activation)
        sums["toy_loss"] = jnp.mean(weight * (x - out(h)) ** 2)
        sums["spliced_loss"] = jnp.mean(weight * (x - out(h_hat)) ** 2)
    return sums


def _evaluate_local(shape, root_seed, args):
    params, threshold, hp = args
    rows = data.uniform_rows(shape.n_features, shape.structure, shape.set_size)

    def sums(j):
        u = data.uniform(rng.eval_key(root_seed, j), (rows, shape.eval_batch), shape.sampler)
        one = lambda p, t, h: _sums_one(shape, p, t, h, u)
        return jax.tree.map(lambda a: a.astype(jnp.float32), jax.vmap(one)(params, threshold, hp))

    def batch(total, j):
        return jax.tree.map(jnp.add, total, sums(j)), None

    total, _ = jax.lax.scan(batch, sums(0), jnp.arange(1, shape.eval_batches))
    return total


@functools.partial(jax.jit, static_argnums=(3, 5))
def _evaluate(params, threshold, hp, shape, root_seed, mesh):
    return parallel.on_each_device(
        lambda seed, a: _evaluate_local(shape, seed, a), root_seed, (params, threshold, hp),
        mesh=mesh,
    )  # fmt: skip


def evaluate(params, threshold, hp, shape, root_seed: int = 0) -> dict[str, np.ndarray]:
    """The statistics of the module docstring for every SAE, as NumPy arrays (I, ...)."""
    (params, threshold, hp), mesh = parallel.placed(params, threshold, hp)
    sums = jax.device_get(
        _evaluate(params, threshold, hp, shape, rng.seed_argument(root_seed), mesh)
    )
    N = shape.eval_batches * shape.eval_batch
    mean_h = sums["sum_h"] / N
    sst = sums["sum_h2"] - N * np.sum(mean_h**2, axis=1)
    stats = {
        "mse": sums["sse"] / (N * shape.n_hidden),
        "explained_variance": 1.0 - sums["sse"] / np.maximum(sst, 1e-30),
        "l0": sums["active"] / N,
        "l1": sums["l1"] / N,
        "frequency": sums["fired"] / N,
    }
    nan = np.full(len(stats["mse"]), np.nan)
    for name in ("toy_loss", "spliced_loss"):
        stats[name] = sums[name] / shape.eval_batches if name in sums else nan
    return {name: np.asarray(v, np.float64) for name, v in stats.items()}
