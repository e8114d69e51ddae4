"""The toy models' training math for one instance: init, one optimizer step, evaluation.

geomtoy.engine.train vmaps and loops these (its `FAMILIES` entry "toy"); models.py holds the
models themselves. Recipe (the paper's notebook, docs/paper.md): AdamW lr 1e-3, betas
0.9/0.999, eps 1e-8, weight decay 0.01 on W and b, constant schedule, batch 1024 of fresh
samples per step, 10,000 steps, Xavier-normal init, zero bias.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import optax

from geomtoy.engine import data, models, parallel, rng
from geomtoy.engine.models import Params
from geomtoy.engine.optim import toy_optimizer
from geomtoy.spec import Shape

RECIPE_LEAVES = {  # name: (dtype, default; None: the value of W's lr or weight decay)
    "lr_b": (np.float32, None),
    "weight_decay_b": (np.float32, None),
    "decay_rule": (np.int32, 0),  # index into registry.DECAY_RULES
    "min_lr_ratio": (np.float32, 0.0),
    "init_W": (np.int32, 0),  # index into registry.INITS_W
    "init_b": (np.int32, 0),  # index into registry.INITS_B
}
"""Per-instance leaves of Liu, Liu and Gore's recipe (geomtoy.sweep.grid.EXTRA_LEAVES);
their defaults train as the notebook's recipe."""


def _recipe_leaves(I: int, lr, weight_decay, recipe: dict) -> dict:
    """The RECIPE_LEAVES broadcast to (I,): b's lr and weight decay default to W's."""
    if unknown := set(recipe) - set(RECIPE_LEAVES):
        raise TypeError(f"unknown hyperparameters {sorted(unknown)}")
    out = {}
    for name, (dtype, default) in RECIPE_LEAVES.items():
        value = recipe.get(name, default)
        if value is None:
            value = lr if name == "lr_b" else weight_decay
        a = np.asarray(value, dtype)
        if a.ndim > 1 or (a.ndim == 1 and a.shape[0] != I):
            raise ValueError(f"{name}: shape {a.shape} does not broadcast to ({I},)")
        out[name] = np.broadcast_to(a, (I,))
    return out


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class HParams:
    """Per-instance hyperparameters; every leaf has a leading instance axis (I, ...)."""

    instance_id: jax.Array  # (I,) int32, global id: feeds the instance's key
    seed: jax.Array  # (I,) int32
    feature_probability: jax.Array  # (I, n) probability that each feature is non-zero
    importance: jax.Array  # (I, n)
    lr: jax.Array  # (I,) of W (and W2)
    weight_decay: jax.Array  # (I,) of W (and W2)
    lr_b: jax.Array  # (I,) of b
    weight_decay_b: jax.Array  # (I,) of b
    decay_rule: jax.Array  # (I,) int32 index into registry.DECAY_RULES
    min_lr_ratio: jax.Array  # (I,) floor of the decaying schedules, a fraction of lr
    init_W: jax.Array  # (I,) int32 index into registry.INITS_W
    init_b: jax.Array  # (I,) int32 index into registry.INITS_B

    @classmethod
    def create(
        cls,
        n_instances: int,
        n_features: int,
        *,
        feature_probability=1.0,
        importance=1.0,
        lr=1e-3,
        weight_decay=0.01,
        seed=0,
        instance_id=None,
        mesh=None,
        **recipe,
    ) -> HParams:
        """Broadcast hyperparameters to the instance axis.

        Per-feature values (feature_probability, importance) take a scalar, a 1-D array
        of n values (the same for every instance) or a 2-D array (I, n) or (I, 1).
        Per-instance values (lr, weight_decay, seed, instance_id and the `RECIPE_LEAVES`
        in `recipe`) take a scalar or (I,). instance_id defaults to 0..I-1. The leaves go on `mesh` (parallel.current_mesh).
        """
        I, n = n_instances, n_features

        def per_feature(name, value):
            a = np.asarray(value, np.float32)
            if a.ndim == 1 and a.shape[0] != n:
                raise ValueError(f"{name}: a 1-D value needs {n} entries, got {a.shape[0]}")
            if a.ndim > 2 or (a.ndim == 2 and a.shape[0] != I):
                raise ValueError(f"{name}: shape {a.shape} does not broadcast to ({I}, {n})")
            return np.broadcast_to(a, (I, n))

        def per_instance(name, value, dtype):
            a = np.asarray(value, dtype)
            if a.ndim > 1 or (a.ndim == 1 and a.shape[0] != I):
                raise ValueError(f"{name}: shape {a.shape} does not broadcast to ({I},)")
            return np.broadcast_to(a, (I,))

        if instance_id is None:
            instance_id = np.arange(I)
        probability = per_feature("feature_probability", feature_probability)
        outside = probability[~((probability > 0) & (probability <= 1))]
        if outside.size:
            raise ValueError(f"feature_probability: {outside.flat[0]:g} is outside (0, 1]")
        hp = cls(
            instance_id=per_instance("instance_id", instance_id, np.int32),
            seed=per_instance("seed", seed, np.int32),
            feature_probability=probability,
            importance=per_feature("importance", importance),
            lr=per_instance("lr", lr, np.float32),
            weight_decay=per_instance("weight_decay", weight_decay, np.float32),
            **_recipe_leaves(I, lr, weight_decay, recipe),
        )
        # Straight from the host onto the instance mesh (or the default device): no
        # staging copy on one device first, which would compile a resharding program.
        placed = parallel.place(hp, mesh)
        return placed if placed is not hp else jax.device_put(hp)

    def select(self, index) -> HParams:
        """The instances at `index` (an int array or slice), as a smaller HParams."""
        return jax.tree.map(lambda a: a[index], self)


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class TrainState:
    """Weights, optimizer state and step count (leading instance axis when stacked)."""

    params: Params
    opt_state: optax.OptState
    step: jax.Array  # int32: steps taken so far

    def replace(self, **changes) -> TrainState:
        return dataclasses.replace(self, **changes)


def step_bytes(shape: Shape, batch: int | None = None) -> int:
    """Bytes of float32 temporaries one instance's training step holds: about four
    (n, B) arrays (x, the pre-activation, the residual, its gradient) and three (m, B);
    `batch` replaces B (the evaluation batch)."""
    m = shape.n_hidden * (2 if shape.model.untied else 1)
    return 4 * (batch or shape.batch_size) * (4 * shape.n_features + 3 * m)


def init_one(shape: Shape, root_seed, hp: HParams) -> TrainState:
    key = rng.instance_key(root_seed, hp.instance_id, hp.seed)
    params = models.init_params(
        rng.init_key(key), shape.kind, shape.n_features, shape.n_hidden, hp.init_W, hp.init_b
    )
    opt_state = toy_optimizer(shape, hp).init(params)
    return TrainState(params=params, opt_state=opt_state, step=jnp.zeros((), jnp.int32))


def step_one(shape: Shape, stream, hp: HParams, state: TrainState):
    """One optimizer step of one instance on a fresh batch; returns (state, loss).

    `stream` is data.stream(rng.step_key(instance key, state.step), sampler), derived for
    a whole chunk before the step loop (geomtoy.engine.train)."""
    x = data.sample_sparse_from_stream(
        stream,
        hp.feature_probability,
        shape.batch_size,
        signed=shape.model.signed_inputs,
        sampler=shape.sampler,
        structure=shape.structure,
        set_size=shape.set_size,
        magnitude=shape.magnitude,
    )
    loss, grads = jax.value_and_grad(models.loss, argnums=1)(
        shape.kind, state.params, x, hp.importance, shape.activation
    )
    optimizer = toy_optimizer(shape, hp)
    updates, opt_state = optimizer.update(grads, state.opt_state, state.params)
    params = optax.apply_updates(state.params, updates)
    return state.replace(params=params, opt_state=opt_state, step=state.step + 1), loss


def evaluate_one(shape: Shape, root_seed, params: Params, hp: HParams) -> jax.Array:
    """One instance's mean loss over the evaluation batches. The uniforms depend on the
    root seed and the batch only, so under vmap they are drawn once for a whole block."""

    def batch_loss(total, j):
        rows = data.uniform_rows(shape.n_features, shape.structure, shape.set_size)
        u = data.uniform(rng.eval_key(root_seed, j), (rows, shape.eval_batch), shape.sampler)
        x = data.features_from_uniform(
            u,
            hp.feature_probability,
            shape.structure,
            shape.set_size,
            shape.model.signed_inputs,
            shape.magnitude,
        )
        return total + models.loss(shape.kind, params, x, hp.importance, shape.activation), None

    total, _ = jax.lax.scan(batch_loss, jnp.zeros_like(hp.lr), jnp.arange(shape.eval_batches))
    return total / shape.eval_batches
