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

Ground-truth scores (geomtoy.sae.scores; the matching of latents to true features is
computed on the host before the evaluation program): mcc, uniqueness, precision, recall,
f1, shrinkage, absorption (NaN without a hierarchy), true_l0 (mean active true features),
and per true feature (I, n), prefixed feature_: mcc (its Hungarian-matched |cosine|, NaN
if unmatched), latents (how many latents have it as their best feature), precision,
recall, f1 (of its matched latent as its detector), absorption (a child's share of
activations at which its parent's matched latent is silent; NaN for other features).
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from geomtoy.engine import data, parallel, rng
from geomtoy.sae import model as sae
from geomtoy.sae import scores
from geomtoy.sae import source as sources
from geomtoy.sae.source import hidden, readout


def _rows(shape, hp) -> int:
    """Rows of uniforms one evaluation sample needs."""
    if shape.source == sources.SYNTHBENCH:
        return sources.benchmark_rows(shape.n_features, hp.dist.factor.shape[-1])
    return data.uniform_rows(shape.n_features, shape.structure, shape.set_size)


def _features(shape, hp, u: jax.Array) -> jax.Array:
    if shape.source == sources.SYNTHBENCH:
        return sources.benchmark_features(hp.dist, u)
    return data.features_from_uniform(
        u, hp.feature_probability, shape.structure, shape.set_size, magnitude=shape.magnitude
    )


def _match_sums(f, x, h, h_hat, match) -> dict[str, jax.Array]:
    """Detection, shrinkage and absorption counts of one batch; match = (best feature of
    each latent (width,), matched latent of each feature (n,), parent of each feature
    (n,)), -1 for none."""
    best, latent, parent = match
    fires, active = f > 0, x > 0
    target = active[jnp.maximum(best, 0)] & (best >= 0)[:, None]
    mine = fires[jnp.maximum(latent, 0)] & (latent >= 0)[:, None]
    up = jnp.maximum(parent, 0)
    has = ((parent >= 0) & (latent[up] >= 0))[:, None]
    child = active & has
    norm_h, norm_hat = jnp.linalg.norm(h, axis=0), jnp.linalg.norm(h_hat, axis=0)
    valid = norm_h > scores.SHRINKAGE_MIN_NORM
    count = lambda a, axis=1: jnp.sum(a, axis=axis)
    return {
        "tp": count(fires & target), "fp": count(fires & ~target), "fn": count(~fires & target),
        "tp_f": count(mine & active), "fp_f": count(mine & ~active), "fn_f": count(~mine & active),
        "child": count(child), "absorbed": count(child & ~mine[up]),
        "shrink": jnp.sum(jnp.where(valid, norm_hat / jnp.where(valid, norm_h, 1.0), 0.0)),
        "shrink_n": count(valid, None), "true_active": count(active, None),
    }  # fmt: skip


def _sums_one(shape, p: sae.SAEParams, threshold, hp, match, u) -> dict[str, jax.Array]:
    """Sums of one SAE's statistics over one evaluation batch of uniforms u."""
    x = _features(shape, hp, u)
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
    } | _match_sums(f, x, h, h_hat, match)
    if shape.source not in sources.DICTIONARIES:
        weight = hp.importance[:, None]
        out = lambda h: readout(shape.source, hp.toy, h, shape.output_activation)
        sums["toy_loss"] = jnp.mean(weight * (x - out(h)) ** 2)
        sums["spliced_loss"] = jnp.mean(weight * (x - out(h_hat)) ** 2)
    return sums


def _evaluate_local(shape, root_seed, args):
    params, threshold, hp, match = args
    rows = _rows(shape, hp)

    def sums(j):
        u = data.uniform(rng.eval_key(root_seed, j), (rows, shape.eval_batch), shape.sampler)
        one = lambda p, t, h, m: _sums_one(shape, p, t, h, m, u)
        sums = jax.vmap(one)(params, threshold, hp, match)
        return jax.tree.map(lambda a: a.astype(jnp.float32), sums)

    def batch(total, j):
        return jax.tree.map(jnp.add, total, sums(j)), None

    total, _ = jax.lax.scan(batch, sums(0), jnp.arange(1, shape.eval_batches))
    return total


@functools.partial(jax.jit, static_argnums=(4, 6))
def _evaluate(params, threshold, hp, match, shape, root_seed, mesh):
    return parallel.on_each_device(
        lambda seed, a: _evaluate_local(shape, seed, a), root_seed,
        (params, threshold, hp, match), mesh=mesh,
    )  # fmt: skip


def parents(shape, hp) -> np.ndarray:
    """(I, n) each true feature's parent (-1 for none): the synthbench hierarchy, or the
    first feature of its set for data.structure = "hierarchical"."""
    I, n = len(np.asarray(hp.seed)), shape.n_features
    if shape.source == sources.SYNTHBENCH:
        return np.asarray(hp.dist.parent, np.int64)
    j = np.arange(n)
    first = j - j % shape.set_size
    parent = np.where((shape.structure == "hierarchical") & (j != first), first, -1)
    return np.broadcast_to(parent, (I, n))


def matching(params, hp, shape):
    """(best feature of each latent (I, width), Hungarian latent of each feature (I, n),
    its |cosine| (I, n), parent of each feature (I, n)), NumPy, on the host."""
    cos = scores.abs_cosines(np.asarray(hp.toy.W), np.asarray(params.W_dec))
    latent, matched = scores.hungarian(cos)
    return scores.best_feature(cos), latent, matched, parents(shape, hp)


def evaluate(params, threshold, hp, shape, root_seed: int = 0) -> dict[str, np.ndarray]:
    """The statistics of the module docstring for every SAE, as NumPy arrays (I, ...)."""
    best, latent, matched, parent = matching(params, hp, shape)
    match = tuple(np.asarray(a, np.int32) for a in (best, latent, parent))
    (params, threshold, hp, match), mesh = parallel.placed(params, threshold, hp, match)
    sums = jax.device_get(
        _evaluate(params, threshold, hp, match, shape, rng.seed_argument(root_seed), mesh)
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
    stats |= _ground_truth(sums, best, matched, N)
    return {name: np.asarray(v, np.float64) for name, v in stats.items()}


def _ground_truth(sums, best, matched, N: int) -> dict[str, np.ndarray]:
    """The ground-truth scores (module docstring) from the summed counts."""
    per_latent = scores.detection(sums["tp"], sums["fp"], sums["fn"])
    per_feature = scores.detection(sums["tp_f"], sums["fp_f"], sums["fn_f"])
    n = matched.shape[1]
    with np.errstate(invalid="ignore", divide="ignore"):
        child_share = np.where(sums["child"] > 0, sums["absorbed"] / sums["child"], np.nan)
        shrinkage = np.where(sums["shrink_n"] > 0, sums["shrink"] / sums["shrink_n"], np.nan)
    out = {"mcc": scores.mcc(matched), "uniqueness": scores.uniqueness(best)}
    out |= scores.latent_means(per_latent)
    out |= {"shrinkage": shrinkage, "absorption": scores.absorption(sums["absorbed"], sums["child"]),
            "true_l0": sums["true_active"] / N, "feature_mcc": matched,
            "feature_latents": np.stack([np.bincount(b[b >= 0], minlength=n) for b in best]),
            "feature_absorption": child_share}  # fmt: skip
    unmatched = np.isnan(matched)
    out |= {f"feature_{k}": np.where(unmatched, np.nan, v) for k, v in per_feature.items()}
    return out
