"""Sparse autoencoders (SAEs) on the hidden activations of toy models, one instance at a time.

An SAE reads h = W x, the m-dimensional hidden vector of a toy model (or of a synthetic
dictionary: n unit directions in m dimensions under the same sparse feature distribution),
and writes it as a sparse code over `width` latents:

    f     = act(W_enc (h - b_dec) + b_enc)          (width,)
    h_hat = W_dec f + b_dec                         (m,)

with unit-norm decoder columns (Bricken et al. 2023, "Towards Monosemanticity"). Batches
are feature-major as in geomtoy.engine.models: h (m, B), f (width, B).

Activations (`ACTIVATIONS`):
  relu       ReLU with an L1 penalty on f (the Anthropic 2023 / ARENA recipe).
  topk       ReLU of the k largest pre-activations of each sample, the rest 0 (Gao et al.
             2024); k is a per-instance leaf, so one program trains many k.
  batchtopk  the k * B largest pre-activations of the whole batch (Bussmann et al. 2024);
             evaluated as a JumpReLU at `threshold`, a running mean of the smallest
             selected activation of each training batch, as the paper does.
  jumprelu   f = z H(z - theta) with a learned threshold theta = exp(log_threshold) per
             latent and an L0 penalty l1_coefficient * sum_j H(z_j - theta_j)
             (Rajamanoharan et al. 2024): straight-through pseudo-derivatives with a
             rectangle kernel of width JUMPRELU_BANDWIDTH give theta its gradient, from
             both the reconstruction and the L0 term; z gets none from the L0 term.
  matryoshka_batchtopk
             BatchTopK over the whole dictionary, trained so that every nested prefix of
             the latents (MATRYOSHKA_FRACTIONS of the width) reconstructs h on its own:
             the loss sums the prefixes' reconstruction errors (Bussmann et al. 2025,
             "Learning Multi-Level Features with Matryoshka SAEs"); evaluated as batchtopk.

Loss (ARENA's reduction): mean over samples of
    mean_m (h_hat - h)^2  +  l1_coefficient * sum_j |f_j| ||W_dec[:, j]||.
The sparsity term is the L1 of f weighted by decoder norms (the form of Anthropic's April
2024 update); with unit-norm columns it equals the 2023 L1 of f. The forward pass uses the
normalised columns and the stored columns are renormalised after each step, so the
gradient never changes a column's norm. TopK and BatchTopK are usually trained with
l1_coefficient = 0.

Dead latents are resampled as Anthropic (2023) and ARENA's `resample_advanced` do: every
`resample_every` steps (while step < resample_until * steps), a latent that fired on no
sample since the previous check gets a training input h drawn with probability
proportional to the square of its reconstruction loss; its decoder column becomes
(h - b_dec) normalised, its encoder row that direction times `resample_scale` times the
mean encoder-row norm of the live latents, its encoder bias 0, and its Adam moments are
reset (Anthropic; ARENA keeps them).

Init (Gao et al. 2024): decoder columns random unit vectors, W_enc = W_dec^T, zero biases.
Optimizer: the toy models' (geomtoy.engine.optim.make_optimizer), default plain Adam, lr 1e-3.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp

from geomtoy import registry
from geomtoy.sae.select import batch_topk_mask, topk_mask
from geomtoy.sae_spec import FIELDS


@dataclasses.dataclass(frozen=True)
class Activation:
    """One SAE architecture (`sae.activation`) and the facts the trainer and sweep ask."""

    name: str
    doc: str
    uses_k: bool = False  # sparsity set by k (sae.k; sae.target_l0 sets k)
    running_threshold: bool = False  # evaluated at a running batch threshold
    nested: bool = False  # Matryoshka prefixes each reconstruct
    steer_rate: float = 0.0  # L0 targeting's integral rate (`steer`), 0: k, not steered


ACTIVATIONS: dict[str, Activation] = {
    a.name: a
    for a in (
        Activation("relu", "ReLU with an L1 penalty", steer_rate=0.0075),
        Activation("topk", "the k largest latents of each sample", uses_k=True),
        Activation("batchtopk", "the k * B largest of the batch", uses_k=True,
                   running_threshold=True),
        Activation("jumprelu", "learned thresholds with an L0 penalty", steer_rate=0.005),
        Activation("matryoshka_batchtopk", "BatchTopK with nested reconstructing prefixes",
                   uses_k=True, running_threshold=True, nested=True),
    )
}  # fmt: skip
"""The values of sae.activation (geomtoy.registry.SAE_ACTIVATIONS) and their flags."""
registry.check_math("geomtoy.sae.model.ACTIVATIONS", registry.SAE_ACTIVATIONS, ACTIVATIONS)
THRESHOLD_MOMENTUM = 0.99
"""BatchTopK's inference threshold: exponential moving average with this momentum."""
JUMPRELU_BANDWIDTH = 0.05
"""Width of the rectangle kernel of JumpReLU's straight-through pseudo-derivatives."""
JUMPRELU_INIT_THRESHOLD = FIELDS["sae.jumprelu_threshold"].default
"""JumpReLU's initial threshold theta of every latent (sae.jumprelu_threshold's default)."""
TARGET_GAIN = 2.0
"""L0 targeting: the proportional term, log(coefficient) per unit of log(L0 / target)."""
TARGET_SMOOTHING = 0.98
"""L0 targeting: the proportional term reads the error's moving average (this momentum,
about 50 steps), not one batch's: the coefficient does not jitter with batch noise."""
TARGET_WARMUP = 0.05
"""L0 targeting: the share of the steps, at the start, with the starting coefficient."""
TARGET_SETTLE = 0.05
"""L0 targeting: the share of the steps, at the end, with the coefficient held fixed."""
TARGET_START = 1e-3
"""L0 targeting starts from sae.l1_coefficient, or from this when that is 0."""
MATRYOSHKA_FRACTIONS = (1 / 32, 1 / 8, 1 / 2, 1.0)
"""Matryoshka prefixes as fractions of the width (SynthSAEBench: 128, 512, 2048 of 4096)."""


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class SAEParams:
    """Weights of one SAE (a leading instance axis on each leaf when stacked)."""

    W_enc: jax.Array  # (width, m)
    b_enc: jax.Array  # (width,)
    W_dec: jax.Array  # (m, width): columns are dictionary directions
    b_dec: jax.Array  # (m,)
    log_threshold: jax.Array | None = None  # (width,): JumpReLU's log theta; init_params
    # always sets it, a hand-built non-JumpReLU SAE may leave it out

    def replace(self, **changes) -> SAEParams:
        return dataclasses.replace(self, **changes)


def init_params(
    key: jax.Array, n_hidden: int, width: int, threshold=JUMPRELU_INIT_THRESHOLD
) -> SAEParams:
    """Random unit decoder columns, encoder = decoder transpose, zero biases, JumpReLU
    thresholds at `threshold`."""
    W_dec = unit_columns(jax.random.normal(key, (n_hidden, width), jnp.float32))
    return SAEParams(
        W_enc=W_dec.T,
        b_enc=jnp.zeros((width,), jnp.float32),
        W_dec=W_dec,
        b_dec=jnp.zeros((n_hidden,), jnp.float32),
        log_threshold=jnp.full((width,), jnp.log(threshold), jnp.float32),
    )


def unit_columns(A: jax.Array, eps: float = 1e-8) -> jax.Array:
    """A with every column scaled to unit norm (zero columns stay zero)."""
    return A / (jnp.linalg.norm(A, axis=0, keepdims=True) + eps)


def pre_activation(p: SAEParams, h: jax.Array) -> jax.Array:
    """W_enc (h - b_dec) + b_enc for a feature-major batch h (m, B): (width, B).

    Computed as W_enc h + (b_enc - W_enc b_dec), so that b_dec's gradient through the
    encoder is one (width,) product, not a product with the whole (width, B) cotangent:
    one of the step's seven (m, width, B) matmuls fewer."""
    return p.W_enc @ h + (p.b_enc - p.W_enc @ p.b_dec)[:, None]


def _rectangle(u: jax.Array) -> jax.Array:
    return (jnp.abs(u) < 0.5).astype(u.dtype)


@jax.custom_vjp
def jump(z: jax.Array, theta: jax.Array) -> jax.Array:
    """JumpReLU z H(z - theta) of z (width, B) at thresholds theta (width,)."""
    return jnp.where(z > theta[:, None], z, 0.0)


def _jump_fwd(z, theta):
    return jump(z, theta), (z, theta)


def _jump_bwd(res, g):
    z, theta = res
    t = theta[:, None]
    kernel = _rectangle((z - t) / JUMPRELU_BANDWIDTH) / JUMPRELU_BANDWIDTH
    return jnp.where(z > t, g, 0.0), -jnp.sum(g * t * kernel, axis=1)


jump.defvjp(_jump_fwd, _jump_bwd)


@jax.custom_vjp
def jump_l0(z: jax.Array, theta: jax.Array) -> tuple[jax.Array, jax.Array]:
    """(jump(z, theta) (width, B), its L0 sum_j H(z_j - theta_j) (B,)): JumpReLU's training
    forward. The L0's pseudo-derivative reaches theta only, -(1 / eps) K((z - theta) / eps);
    the backward pass forms the rectangle kernel once for both terms' theta gradients."""
    on = z > theta[:, None]
    return jnp.where(on, z, 0.0), jnp.sum(on, axis=0, dtype=z.dtype)


def _jump_l0_fwd(z, theta):
    return jump_l0(z, theta), (z, theta)


def _jump_l0_bwd(res, g):
    (z, theta), (g_f, g_l0) = res, g
    t = theta[:, None]
    kernel = _rectangle((z - t) / JUMPRELU_BANDWIDTH) / JUMPRELU_BANDWIDTH
    return jnp.where(z > t, g_f, 0.0), -jnp.sum(kernel * (g_f * t + g_l0[None, :]), axis=1)


jump_l0.defvjp(_jump_l0_fwd, _jump_l0_bwd)


def encode(activation: str, p: SAEParams, h: jax.Array, k=1, threshold=0.0, train=True):
    """Latent code f (width, B) of h (m, B).

    `k` is used by the k activations (ACTIVATIONS[a].uses_k); `threshold` by those with a
    running threshold: at evaluation (train=False) as the threshold, in training as the
    batch search's starting guess (the selected latents do not depend on it).
    """
    if activation not in ACTIVATIONS:
        raise ValueError(f"activation {activation!r} is not one of {tuple(ACTIVATIONS)}")
    pre = pre_activation(p, h)
    if activation == "jumprelu":
        return jump(pre, jnp.exp(p.log_threshold))
    f = jax.nn.relu(pre)
    if activation == "topk":
        return jnp.where(topk_mask(pre, k), f, 0.0)
    if ACTIVATIONS[activation].running_threshold:
        keep = batch_topk_mask(pre, k, threshold) if train else pre > threshold
        return jnp.where(keep, f, 0.0)
    return f


@jax.custom_vjp
def dictionary_product(D: jax.Array, f: jax.Array) -> jax.Array:
    """D f for decoder columns D (m, width) and codes f (width, B): (m, B).

    Its VJP forms D's cotangent as (f g^T)^T, the product with the small (m, B) cotangent
    g as the operand a matmul kernel packs, then a transpose of the (width, m) result;
    the barrier keeps XLA from folding the transpose back into g f^T, whose packed
    operand is the larger f (width, B), the slowest of the step's products on CPU."""
    return D @ f


def _dictionary_product_fwd(D, f):
    return D @ f, (D, f)


def _dictionary_product_bwd(res, g):
    D, f = res
    return jax.lax.optimization_barrier(f @ g.T).T, D.T @ g


dictionary_product.defvjp(_dictionary_product_fwd, _dictionary_product_bwd)


def decode(p: SAEParams, f: jax.Array) -> jax.Array:
    """h_hat = W_dec f + b_dec with unit-norm decoder columns: (m, B)."""
    return dictionary_product(unit_columns(p.W_dec), f) + p.b_dec[:, None]


def losses(p: SAEParams, h: jax.Array, f: jax.Array):
    """(per-sample reconstruction error mean_m (h_hat - h)^2 (B,), per-sample sparsity
    sum_j |f_j| ||W_dec_j|| (B,), h_hat (m, B)); decoder norms are 1 by construction.
    Every activation gives f >= 0, so |f| is f (one pass over (width, B) fewer)."""
    h_hat = decode(p, f)
    recon = jnp.mean((h_hat - h) ** 2, axis=0)
    norms = jnp.linalg.norm(unit_columns(p.W_dec), axis=0)
    sparsity = norms @ f
    return recon, sparsity, h_hat


def prefixes(width: int) -> tuple[int, ...]:
    """The Matryoshka prefix sizes of a dictionary of `width` latents (the last is width)."""
    return tuple(sorted({max(1, round(width * q)) for q in MATRYOSHKA_FRACTIONS} | {width}))


def nested_recon(p: SAEParams, h: jax.Array, f: jax.Array) -> jax.Array:
    """(per-sample sum over the Matryoshka prefixes of mean_m (h_hat_prefix - h)^2 (B,),
    the full dictionary's (B,)); each prefix's h_hat adds its latents' columns to the
    previous prefix's, so all of them cost one decode."""
    D = unit_columns(p.W_dec)
    h_hat = jnp.broadcast_to(p.b_dec[:, None], h.shape)
    total, start = 0.0, 0
    for end in prefixes(f.shape[0]):
        h_hat = h_hat + dictionary_product(D[:, start:end], f[start:end])
        recon = jnp.mean((h_hat - h) ** 2, axis=0)
        total, start = total + recon, end
    return total, recon


def loss(activation: str, p: SAEParams, h: jax.Array, l1_coefficient, k=1, threshold=0.0):
    """Training loss of one SAE on a batch h (m, B); returns (loss, (f, per-sample recon)).
    l1_coefficient weighs the L1 of f, or for jumprelu the L0 of f; `threshold` (the
    running threshold) only starts BatchTopK's search."""
    if activation == "jumprelu":
        pre, theta = pre_activation(p, h), jnp.exp(p.log_threshold)
        f, sparsity = jump_l0(pre, theta)
        recon, _, _ = losses(p, h, f)
        return jnp.mean(recon + l1_coefficient * sparsity), (f, recon)
    f = encode(activation, p, h, k, threshold)
    recon, sparsity, _ = losses(p, h, f)
    objective = recon
    if ACTIVATIONS[activation].nested:
        objective, recon = nested_recon(p, h, f)
    return jnp.mean(objective + l1_coefficient * sparsity), (f, recon)


def initial_coefficient(l1_coefficient, target_l0):
    """The sparsity coefficient a training run starts from."""
    steered = (target_l0 > 0) & (l1_coefficient <= 0)
    return jnp.where(steered, TARGET_START, l1_coefficient).astype(jnp.float32)


def steer(integral, smoothed, l0, target_l0, progress, rate):
    """(integral, smoothed error, coefficient) after a batch of mean L0 `l0` at `progress`
    (step / steps) of training, for an SAE steered to target_l0 > 0, from the previous
    integral and smoothed error (at the start: log of the starting coefficient, and 0).
    The coefficient is 0 where nothing is steered: the caller keeps its own.

    PI control on log(coefficient), with the error e = clip(log(l0 / target), -1, 1): a
    batch twice too dense and one twice too sparse pull equally hard, and the clip bounds
    a step. The integral moves by `rate` * e per step (the activation's steer_rate: a
    JumpReLU, whose sparsity moves only through its Adam-paced thresholds, is steered more
    slowly than an L1 ReLU, whose L0 drifts down as it trains) and the coefficient is
    exp(integral + TARGET_GAIN * E), E the moving average of e (TARGET_SMOOTHING).
    An Adam-trained SAE answers a new coefficient only after some hundred steps (Adam
    moves each weight, a JumpReLU threshold included, by about lr per step whatever the
    gradient's size). An integral alone therefore runs far past the right value while L0
    is still falling, and the latents overshoot into a sparsity they do not come back
    from; the proportional term lifts the coefficient while the batches are too dense and
    lets it fall as L0 arrives. Steering starts after TARGET_WARMUP of the steps (at the
    starting coefficient, while the dictionary first forms), and the coefficient is held
    for the last TARGET_SETTLE."""
    error = jnp.clip(jnp.log(jnp.maximum(l0, 1e-6) / jnp.maximum(target_l0, 1e-30)), -1.0, 1.0)
    on = (target_l0 > 0) & (progress >= TARGET_WARMUP) & (progress < 1.0 - TARGET_SETTLE)
    new = integral + rate * error
    smooth = TARGET_SMOOTHING * smoothed + (1.0 - TARGET_SMOOTHING) * error
    coefficient = jnp.where(on, jnp.exp(new + TARGET_GAIN * smooth), 0.0)
    return jnp.where(on, new, integral), jnp.where(on, smooth, smoothed), coefficient


def batch_threshold(f: jax.Array) -> jax.Array:
    """The smallest positive activation of a batch (BatchTopK's per-batch threshold)."""
    positive = jnp.where(f > 0, f, jnp.inf)
    smallest = jnp.min(positive)
    return jnp.where(jnp.isfinite(smallest), smallest, 0.0)


def resample(
    p: SAEParams,
    dead: jax.Array,
    h: jax.Array,
    recon: jax.Array,
    u: jax.Array,
    scale: float,
    threshold=JUMPRELU_INIT_THRESHOLD,
) -> SAEParams:
    """Anthropic's resampling of the dead latents (width,) bool from the batch h (m, B).

    recon (B,) is each sample's reconstruction error; sample b is drawn for dead latent j
    with probability recon_b^2 / sum recon^2, by inverting the cumulative sum at the
    uniform u_j (u: (width,)); a JumpReLU threshold restarts at `threshold`. Live latents
    are returned unchanged.
    """
    weight = recon**2
    cdf = jnp.cumsum(weight)
    index = jnp.searchsorted(cdf, u * cdf[-1], side="right")
    index = jnp.minimum(index, h.shape[1] - 1)
    v = unit_columns(h[:, index] - p.b_dec[:, None])  # (m, width): one input per latent
    alive = ~dead
    enc_norm = jnp.linalg.norm(p.W_enc, axis=1)
    n_alive = jnp.sum(alive)
    mean_alive = jnp.where(n_alive > 0, jnp.sum(enc_norm * alive) / jnp.maximum(n_alive, 1), 1.0)
    ok = dead & (cdf[-1] > 0)
    return p.replace(
        W_dec=jnp.where(ok[None, :], v, p.W_dec),
        W_enc=jnp.where(ok[:, None], v.T * (scale * mean_alive), p.W_enc),
        b_enc=jnp.where(ok, 0.0, p.b_enc),
        log_threshold=None
        if p.log_threshold is None
        else jnp.where(ok, jnp.log(threshold), p.log_threshold),
    )


def zero_latents(p: SAEParams, latents: jax.Array) -> SAEParams:
    """p with the entries of the given latents (width,) bool set to 0 (b_dec untouched):
    applied to Adam's moments, which are SAEParams-shaped, after a resample."""
    return p.replace(
        W_enc=jnp.where(latents[:, None], 0.0, p.W_enc),
        b_enc=jnp.where(latents, 0.0, p.b_enc),
        W_dec=jnp.where(latents[None, :], 0.0, p.W_dec),
        log_threshold=None if p.log_threshold is None else jnp.where(latents, 0.0, p.log_threshold),
    )


def reset_moments(opt_state, latents: jax.Array):
    """Every SAEParams-shaped part of an optax state with the given latents zeroed."""
    is_params = lambda s: isinstance(s, SAEParams)
    return jax.tree.map(
        lambda s: zero_latents(s, latents) if is_params(s) else s, opt_state, is_leaf=is_params
    )
