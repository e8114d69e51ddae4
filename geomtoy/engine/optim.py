"""The optimizer recipe of one instance: learning-rate schedules and the optimizer built
from the instance's own (traced) lr and weight decay, as the paper's notebook does."""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
import optax

from geomtoy import registry
from geomtoy.spec import Shape

__all__ = ["lr_schedule", "make_optimizer"]


def _warmup_cosine(shape: Shape, lr: jax.Array):
    warm, decay = shape.warmup_steps, shape.steps - shape.warmup_steps

    def warmup_cosine(count):
        rise = lr * count / max(warm, 1)
        fall = lr * 0.5 * (1.0 + jnp.cos(jnp.pi * (count - warm) / decay))
        return jnp.where(count < warm, rise, fall)

    return warmup_cosine


def _cosine(shape: Shape, lr: jax.Array):
    denom = max(shape.steps - 1, 1)
    return lambda count: lr * jnp.cos(0.5 * jnp.pi * count / denom)


_SCHEDULES = {  # train.schedule -> (shape, lr) -> lr at optimizer step `count`
    "constant": lambda shape, lr: lambda count: lr,
    "linear": lambda shape, lr: lambda count: lr * (1.0 - count / shape.steps),
    "cosine": _cosine,
    "warmup_cosine": _warmup_cosine,
}
registry.check_math("geomtoy.engine.optim schedules", registry.SCHEDULES, _SCHEDULES)


def lr_schedule(shape: Shape, lr: jax.Array) -> Callable[[jax.Array], jax.Array]:
    """Learning rate at optimizer step `count` (0-based), as in the notebook's helpers;
    warmup_cosine is the finite-data recipe: linear from 0 to lr over warmup_steps, then a
    half cosine to 0 at steps."""
    return _SCHEDULES[shape.schedule](shape, lr)


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


def make_optimizer(shape: Shape, lr, weight_decay) -> optax.GradientTransformation:
    """The instance's optimizer, built from its own (traced) lr and weight decay.

    adamw: decoupled weight decay as torch.optim.AdamW (p <- p - lr * (adam + wd * p)).
    adam and sgd: weight decay as an L2 term added to the gradient, as torch.optim.Adam and
    SGD do; set weight_decay = 0 for the plain optimizers.
    """
    return _OPTIMIZERS[shape.optimizer](lr_schedule(shape, lr), weight_decay)
