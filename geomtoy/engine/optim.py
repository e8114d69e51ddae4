"""The optimizer recipe of one instance: learning-rate schedules and the optimizer built
from the instance's own (traced) lr and weight decay, as the paper's notebook does.

The toy models' optimizer (`toy_optimizer`) also takes the bias's own lr and weight decay,
the decay rule (registry.DECAY_RULES: Liu, Liu and Gore's unit_norm growth for negative
weight decay) and the schedule's floor, all traced leaves: one program trains instances that
differ in any of them. With b's values equal to W's, the decoupled rule and no floor, it is
the plain optimizer, value for value and with the same state."""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
import optax

from geomtoy import registry
from geomtoy.engine.models import Params
from geomtoy.spec import Shape

__all__ = ["lr_schedule", "make_optimizer", "toy_optimizer"]


def _decayed(lr, floor, fraction):
    """lr at `fraction` in [0, 1] of the way from lr (1) down to floor * lr (0)."""
    return floor * lr + (1.0 - floor) * lr * fraction


def _warmup_cosine(shape: Shape, lr: jax.Array, floor):
    warm, decay = shape.warmup_steps, shape.steps - shape.warmup_steps

    def warmup_cosine(count):
        rise = lr * count / max(warm, 1)
        fall = _decayed(lr, floor, 0.5 * (1.0 + jnp.cos(jnp.pi * (count - warm) / decay)))
        return jnp.where(count < warm, rise, fall)

    return warmup_cosine


def _cosine(shape: Shape, lr: jax.Array, floor):
    denom = max(shape.steps - 1, 1)
    return lambda count: _decayed(lr, floor, jnp.cos(0.5 * jnp.pi * count / denom))


_SCHEDULES = {  # train.schedule -> (shape, lr, floor) -> lr at optimizer step `count`
    "constant": lambda shape, lr, floor: lambda count: lr,
    "linear": lambda shape, lr, floor: lambda count: _decayed(lr, floor, 1.0 - count / shape.steps),
    "cosine": _cosine,
    "warmup_cosine": _warmup_cosine,
}
registry.check_math("geomtoy.engine.optim schedules", registry.SCHEDULES, _SCHEDULES)


def lr_schedule(shape: Shape, lr: jax.Array, floor=0.0) -> Callable[[jax.Array], jax.Array]:
    """Learning rate at optimizer step `count` (0-based), as in the notebook's helpers;
    warmup_cosine is the finite-data recipe: linear from 0 to lr over warmup_steps, then a
    half cosine to floor * lr at steps (train.min_lr_ratio; 0 by default). linear and cosine
    also end at floor * lr."""
    return _SCHEDULES[shape.schedule](shape, lr, floor)


_OPTIMIZERS = {  # train.optimizer -> (schedule, weight decay) -> optimizer
    "adamw": lambda schedule, wd: optax.adamw(
        schedule, b1=0.9, b2=0.999, eps=1e-8, weight_decay=wd
    ),
    "adam": lambda schedule, wd: optax.chain(
        optax.add_decayed_weights(wd), optax.adam(schedule, b1=0.9, b2=0.999, eps=1e-8)
    ),
    "sgd": lambda schedule, wd: optax.chain(optax.add_decayed_weights(wd), optax.sgd(schedule)),
}
registry.check_math("geomtoy.engine.optim optimizers", registry.OPTIMIZERS, _OPTIMIZERS)


def make_optimizer(shape: Shape, lr, weight_decay, floor=0.0) -> optax.GradientTransformation:
    """The instance's optimizer, built from its own (traced) lr and weight decay.

    adamw: decoupled weight decay as torch.optim.AdamW (p <- p - lr * (adam + wd * p)).
    adam and sgd: weight decay as an L2 term added to the gradient, as torch.optim.Adam and
    SGD do; set weight_decay = 0 for the plain optimizers.
    """
    return _OPTIMIZERS[shape.optimizer](lr_schedule(shape, lr, floor), weight_decay)


# ------------------------------------------------ the toy models' per-parameter optimizer


def _per_field(params: Params, w, b) -> Params:
    """A Params-shaped tree: b's value at the bias b, w's at the weights W (and W2)."""
    return params.replace(W=w, b=b, W2=None if params.W2 is None else w)


def decay_term(p: jax.Array, wd, unit_norm, axis: int | None) -> jax.Array:
    """What weight decay adds to a leaf's update before the -lr scaling (p <- p - lr term).

    decoupled: wd * p (AdamW; wd < 0 grows p by the factor 1 + lr |wd| per step).
    unit_norm with wd < 0 (Liu, Liu and Gore 2025, their AdamW): -wd (1 - 1/(|w_i| + 1e-8))
    w_i for each feature's vector w_i (W's columns: axis 0; W2's rows: axis 1; b's entries:
    axis None), which grows vectors shorter than 1 and shrinks longer ones."""
    r = jnp.abs(p) if axis is None else jnp.linalg.norm(p, axis=axis, keepdims=True)
    toward_one = -wd * (1.0 - 1.0 / (r + 1e-8)) * p
    return jnp.where(unit_norm & (wd < 0), toward_one, wd * p)


def _add_decay(wd_w, wd_b, unit_norm) -> optax.GradientTransformation:
    """optax.add_decayed_weights with a value per field and the decay rule (same state)."""

    def update(updates: Params, state, params: Params):
        wd = _per_field(params, wd_w, wd_b)
        axes = _per_field(params, 0, None).replace(W2=None if params.W2 is None else 1)
        out = updates.replace(
            W=updates.W + decay_term(params.W, wd.W, unit_norm, axes.W),
            b=updates.b + decay_term(params.b, wd.b, unit_norm, None),
        )
        if params.W2 is not None:
            out = out.replace(W2=updates.W2 + decay_term(params.W2, wd.W2, unit_norm, 1))
        return out, state

    return optax.GradientTransformation(lambda params: optax.EmptyState(), update)


def _scale_by_lrs(schedule_w, schedule_b) -> optax.GradientTransformation:
    """optax.scale_by_learning_rate with a schedule per field (same state: the count)."""

    def init(params):
        return optax.ScaleByScheduleState(count=jnp.zeros([], jnp.int32))

    def update(updates: Params, state, params=None):
        step = _per_field(updates, -schedule_w(state.count), -schedule_b(state.count))
        updates = jax.tree.map(lambda s, g: jnp.array(s, dtype=g.dtype) * g, step, updates)
        return updates, optax.ScaleByScheduleState(count=optax.safe_increment(state.count))

    return optax.GradientTransformation(init, update)


def toy_optimizer(shape: Shape, hp) -> optax.GradientTransformation:
    """The optimizer of one toy model (Params) from its hyperparameter leaves: lr and
    weight_decay of W (and W2), lr_b and weight_decay_b of b, decay_rule (an index into
    registry.DECAY_RULES) and min_lr_ratio (the schedule's floor). Same chains and states as
    make_optimizer's optimizers."""
    unit_norm = hp.decay_rule == registry.DECAY_RULES.index("unit_norm")
    decay = _add_decay(hp.weight_decay, hp.weight_decay_b, unit_norm)
    scale = _scale_by_lrs(
        lr_schedule(shape, hp.lr, hp.min_lr_ratio), lr_schedule(shape, hp.lr_b, hp.min_lr_ratio)
    )
    adam = optax.scale_by_adam(b1=0.9, b2=0.999, eps=1e-8)
    if shape.optimizer == "adamw":
        return optax.chain(adam, decay, scale)
    if shape.optimizer == "adam":
        return optax.chain(decay, optax.chain(adam, scale))
    return optax.chain(decay, optax.chain(optax.identity(), scale))
