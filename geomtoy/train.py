"""Training engine: thousands of toy models at once, as jit(vmap(scan)).

The math is written for one instance (`_init_one`, `_step_one`); `jax.vmap` adds the
instance axis and `lax.scan` runs a chunk of steps inside one compiled program, so the
host syncs once per chunk. Everything that fixes a shape is static (`Shape`: one
compilation per distinct value); everything that is swept is an array leaf with a
leading instance axis (`HParams`): one program trains instances that differ in
sparsity, importance, learning rate, weight decay and seed.

Placement (bench/RESULTS.md): each device trains its own instances (`geomtoy.parallel`,
`shard_map` over the instance axis, no collectives). On GPU and TPU a device vmaps over
all of its instances at once; on CPU it runs them in cache-sized blocks, one block after
the other, each block running the whole chunk of steps (`instance_block`), and a run
uses one CPU device per core. The random streams of a chunk's steps are derived before
its step loop. None of this changes a result beyond float rounding: an instance's batches
depend only on (root seed, instance id, seed, step).

Recipe (the paper's notebook, docs/paper.md): AdamW lr 1e-3, betas 0.9/0.999, eps 1e-8,
weight decay 0.01 on W and b, constant schedule, batch 1024 of fresh samples per step,
10,000 steps, Xavier-normal init, zero bias.

Public API:
    init_state(shape, hp, root_seed) -> TrainState
    train_chunk(state, hp, shape, n_steps, root_seed) -> (TrainState, chunk_loss (I,))
    evaluate(params, hp, shape, root_seed) -> loss (I,)
    train_instances(shape, hp, root_seed, chunk_steps, on_chunk) -> TrainResult
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np
import optax

from geomtoy import data, models, parallel, rng
from geomtoy.models import Params
from geomtoy.optim import make_optimizer
from geomtoy.spec import Shape, chunk_schedule


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class HParams:
    """Per-instance hyperparameters; every leaf has a leading instance axis (I, ...)."""

    instance_id: jax.Array  # (I,) int32, global id: feeds the instance's key
    seed: jax.Array  # (I,) int32
    feature_probability: jax.Array  # (I, n) probability that each feature is non-zero
    importance: jax.Array  # (I, n)
    lr: jax.Array  # (I,)
    weight_decay: jax.Array  # (I,)

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
    ) -> HParams:
        """Broadcast hyperparameters to the instance axis.

        Per-feature values (feature_probability, importance) take a scalar, a 1-D array
        of n values (the same for every instance) or a 2-D array (I, n) or (I, 1).
        Per-instance values (lr, weight_decay, seed, instance_id) take a scalar or (I,).
        instance_id defaults to 0..I-1. The leaves go on `mesh` (parallel.current_mesh).
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
        hp = cls(
            instance_id=per_instance("instance_id", instance_id, np.int32),
            seed=per_instance("seed", seed, np.int32),
            feature_probability=per_feature("feature_probability", feature_probability),
            importance=per_feature("importance", importance),
            lr=per_instance("lr", lr, np.float32),
            weight_decay=per_instance("weight_decay", weight_decay, np.float32),
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


@dataclasses.dataclass(frozen=True)
class TrainResult:
    """What `train_instances` returns; arrays are NumPy, leading axis = instance."""

    params: Params
    loss: np.ndarray  # (I,) final loss on shape.eval_samples fresh samples
    diverged: np.ndarray  # (I,) bool: a NaN or inf in the loss or the weights
    curves: dict[str, np.ndarray]  # "step" (C,), "loss" (C, I): mean train loss per chunk


CPU_BLOCK_BYTES = 1 << 20
"""On CPU, instances train in sequential blocks whose step temporaries fit in about this
many bytes (the per-core L2 cache): each block runs a whole chunk of steps while its
arrays stay in cache, instead of every step streaming (I, n, B) arrays through memory.
Measured on a 2-core Xeon: 2x fewer CPU seconds per model-step (bench/RESULTS.md)."""


def step_bytes(shape: Shape, batch: int | None = None) -> int:
    """Bytes of float32 temporaries one instance's training step holds: about four
    (n, B) arrays (x, the pre-activation, the residual, its gradient) and three (m, B);
    `batch` replaces B (the evaluation batch)."""
    m = shape.n_hidden * (2 if shape.model.untied else 1)
    return 4 * (batch or shape.batch_size) * (4 * shape.n_features + 3 * m)


def instance_block(
    shape: Shape, n_local: int, platform: str, batch: int | None = None
) -> int | None:
    """Instances a device trains (or, with `batch` = the evaluation batch, evaluates) at
    once: all of them (None) on GPU and TPU, which want the widest vmap; on CPU a
    cache-sized block of at least 2 (CPU_BLOCK_BYTES)."""
    if platform != "cpu":
        return None
    block = max(2, CPU_BLOCK_BYTES // step_bytes(shape, batch))
    return None if block >= n_local else block


def _init_one(shape: Shape, root_seed, hp: HParams) -> TrainState:
    key = rng.instance_key(root_seed, hp.instance_id, hp.seed)
    params = models.init_params(rng.init_key(key), shape.kind, shape.n_features, shape.n_hidden)
    opt_state = make_optimizer(shape, hp.lr, hp.weight_decay).init(params)
    return TrainState(params=params, opt_state=opt_state, step=jnp.zeros((), jnp.int32))


def _step_one(shape: Shape, stream, hp: HParams, state: TrainState):
    """One optimizer step of one instance on a fresh batch; returns (state, loss).

    `stream` is data.stream(rng.step_key(instance key, state.step), sampler), derived for
    a whole chunk before the step loop (`_chunk_one`)."""
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
    optimizer = make_optimizer(shape, hp.lr, hp.weight_decay)
    updates, opt_state = optimizer.update(grads, state.opt_state, state.params)
    params = optax.apply_updates(state.params, updates)
    return state.replace(params=params, opt_state=opt_state, step=state.step + 1), loss


def _chunk_one(shape: Shape, n_steps: int, root_seed, hp: HParams, state: TrainState):
    key = rng.instance_key(root_seed, hp.instance_id, hp.seed)
    steps = state.step + jnp.arange(n_steps, dtype=jnp.int32)
    streams = jax.vmap(lambda t: data.stream(rng.step_key(key, t), shape.sampler))(steps)
    state, losses = jax.lax.scan(lambda s, stream: _step_one(shape, stream, hp, s), state, streams)
    return state, jnp.mean(losses)


@jax.jit(static_argnums=(0, 3))
def _init_instances(shape: Shape, root_seed, hp: HParams, mesh) -> TrainState:
    return parallel.map_instances(
        lambda seed, h: _init_one(shape, seed, h), root_seed, hp, mesh=mesh, block=None
    )


@jax.jit(static_argnums=(2, 3, 5, 6), donate_argnums=(0,))
def _train_chunk(
    state: TrainState, hp: HParams, shape: Shape, n_steps: int, root_seed, mesh, block
):
    return parallel.map_instances(
        lambda seed, hs: _chunk_one(shape, n_steps, seed, hs[0], hs[1]),
        root_seed,
        (hp, state),
        mesh=mesh,
        block=block,
    )


def _evaluate_one(shape: Shape, root_seed, params: Params, hp: HParams) -> jax.Array:
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


@jax.jit(static_argnums=(2, 4, 5))
def _evaluate(params: Params, hp: HParams, shape: Shape, root_seed, mesh, block):
    return parallel.map_instances(
        lambda seed, ph: _evaluate_one(shape, seed, ph[0], ph[1]),
        root_seed,
        (params, hp),
        mesh=mesh,
        block=block,
    )


def _seed_array(root_seed) -> np.uint32:
    """The root seed as a uint32 scalar argument (a NumPy scalar: converting it with
    jnp would compile a program of its own)."""
    return np.uint32(root_seed)


AUTO = "auto"
"""block = AUTO: the instance block of `instance_block` for the platform (the default)."""


def _init_args(shape: Shape, hp: HParams, root_seed: int, mesh):
    (hp,), mesh = parallel.placed(hp, mesh=mesh)
    return shape, _seed_array(root_seed), hp, mesh


def _chunk_args(state, hp, shape: Shape, n_steps: int, root_seed: int, block, mesh):
    (state, hp), mesh = parallel.placed(state, hp, mesh=mesh)
    if block == AUTO:
        n_local = parallel.local_instances(hp.lr.shape[0], mesh)
        block = instance_block(shape, n_local, parallel.platform_of(hp))
    return state, hp, shape, n_steps, _seed_array(root_seed), mesh, block


def _evaluate_args(params, hp, shape: Shape, root_seed: int, block, mesh):
    (params, hp), mesh = parallel.placed(params, hp, mesh=mesh)
    if block == AUTO:
        n_local = parallel.local_instances(hp.lr.shape[0], mesh)
        block = instance_block(shape, n_local, parallel.platform_of(hp), shape.eval_batch)
    return params, hp, shape, _seed_array(root_seed), mesh, block


def init_state(shape: Shape, hp: HParams, root_seed: int = 0, *, mesh=None) -> TrainState:
    """Initial weights and optimizer state of every instance in hp, on hp's instance mesh
    if it is placed on one, else on `mesh` (parallel.current_mesh: None, one device)."""
    return _init_instances(*_init_args(shape, hp, root_seed, mesh))


def train_chunk(
    state: TrainState,
    hp: HParams,
    shape: Shape,
    n_steps: int,
    root_seed: int = 0,
    *,
    block=AUTO,
    mesh=None,
) -> tuple[TrainState, jax.Array]:
    """Advance every instance by n_steps; returns the new state and each instance's mean
    training loss over those steps. `state` is donated: do not reuse it afterwards.
    `block`: instances vmapped at once per device (None: all; AUTO: by platform); `mesh`
    as in init_state (arrays already on a mesh keep it)."""
    return _train_chunk(*_chunk_args(state, hp, shape, n_steps, root_seed, block, mesh))


def evaluate(
    params: Params, hp: HParams, shape: Shape, root_seed: int = 0, *, block=AUTO, mesh=None
) -> jax.Array:
    """Each instance's loss on shape.eval_samples fresh samples (the same for all)."""
    return _evaluate(*_evaluate_args(params, hp, shape, root_seed, block, mesh))


def lower_init(shape: Shape, hp: HParams, root_seed: int = 0, *, mesh=None) -> jax.stages.Lowered:
    """init_state's program for these arguments, lowered (then .compile(), .as_text())."""
    return _init_instances.lower(*_init_args(shape, hp, root_seed, mesh))


def lower_chunk(
    state, hp, shape: Shape, n_steps: int, root_seed: int = 0, *, block=AUTO, mesh=None
) -> jax.stages.Lowered:
    """train_chunk's program for these arguments, lowered: for benchmarks (compile time,
    memory_analysis) and tests (the compiled text). Nothing is donated or run. Abstract
    arguments (jax.eval_shape) work too."""
    return _train_chunk.lower(*_chunk_args(state, hp, shape, n_steps, root_seed, block, mesh))


def lower_evaluate(
    params, hp, shape: Shape, root_seed: int = 0, *, block=AUTO, mesh=None
) -> jax.stages.Lowered:
    """evaluate's program for these arguments, lowered."""
    return _evaluate.lower(*_evaluate_args(params, hp, shape, root_seed, block, mesh))


def programs(
    state: TrainState,
    hp: HParams,
    shape: Shape,
    n_steps: int,
    root_seed: int = 0,
    *,
    mesh=None,
    block: int | None = None,
) -> dict[str, tuple[Callable, tuple]]:
    """Every compiled program of a run with its arguments, {"init", "chunk", "evaluate"}:
    (jitted function, args), placed as given (no placement): for jax.export and lowering
    with abstract arguments (jax.eval_shape) on any mesh and block."""
    seed = _seed_array(root_seed)
    return {
        "init": (_init_instances, (shape, seed, hp, mesh)),
        "chunk": (_train_chunk, (state, hp, shape, n_steps, seed, mesh, block)),
        "evaluate": (_evaluate, (state.params, hp, shape, seed, mesh, block)),
    }


def is_diverged(loss, params: Params) -> np.ndarray:
    """Instances whose loss or weights hold a NaN or inf."""
    bad = ~np.isfinite(np.asarray(loss))
    for leaf in jax.tree.leaves(params):
        a = np.asarray(leaf)
        bad |= ~np.isfinite(a.reshape(a.shape[0], -1)).all(axis=1)
    return bad


SNAPSHOT_FIELDS = ("W", "b", "W2")
"""Params fields a snapshot records (train.snapshots), as snapshot_<field> in curves.npz."""


@dataclasses.dataclass(frozen=True)
class Chunk:
    """What the chunk loop reports on the host after chunk `index` (0-based) ends."""

    index: int
    step: int  # steps taken at its end
    n_steps: int
    loss: np.ndarray  # (I,) mean training loss of each instance over the chunk
    snapshot: dict[str, np.ndarray] | None  # {field: (I, ...)} weights at its end


def _fetch(k: int, chunks: Sequence[int], loss, snap) -> Chunk:
    """The one host sync of a chunk: its losses and (if recorded) its snapshot."""
    loss, snap = jax.device_get((loss, snap))
    if snap is not None:
        snap = {
            f: np.asarray(getattr(snap, f)) for f in SNAPSHOT_FIELDS if getattr(snap, f) is not None
        }
    return Chunk(k, int(sum(chunks[: k + 1])), chunks[k], np.asarray(loss), snap)


def run_chunks(
    state: TrainState,
    hp: HParams,
    shape: Shape,
    chunks: Sequence[int],
    root_seed: int = 0,
    *,
    start: int = 0,
    snapshots: bool = False,
    on_chunk: Callable[[Chunk], None] | None = None,
    checkpoint_every: int | None = None,
    on_checkpoint: Callable[[TrainState, int], None] | None = None,
    checkpoint_now: Callable[[], bool] | None = None,
    on_stop: Callable[[], None] | None = None,
    before_last_fetch: Callable[[TrainState], None] | None = None,
    chunk_fn: Callable | None = None,
    mesh=None,
) -> TrainState:
    """The one chunk loop: train chunks[start:] and return the final state.

    The host waits only for what the device has done while it works on the next chunk:
    chunk k's losses (and snapshot, copied on device) are fetched, and a regular checkpoint
    (every `checkpoint_every` chunks, its state copied to the host first) is handed to
    on_checkpoint(state, chunks_done), after chunk k+1 is dispatched. on_chunk(Chunk) runs
    on the host for every chunk, in order. When checkpoint_now() is true (a signal asked to
    stop) the checkpoint is immediate, then on_stop() runs. before_last_fetch(state) may dispatch more work (the
    evaluation) behind the last chunk. chunk_fn replaces train_chunk (same signature).
    state and hp go on `mesh` (parallel.placed) once; the chunks follow their placement.
    """
    report = on_chunk or (lambda chunk: None)
    step = chunk_fn or train_chunk  # another engine's chunk (e.g. full-batch) plugs in here
    pending = deferred = None  # the previous chunk's report; a checkpoint to hand over
    (state, hp), _ = parallel.placed(state, hp, mesh=mesh)
    for k in range(start, len(chunks)):
        state, loss = step(state, hp, shape, chunks[k], root_seed)
        # A device copy: the next train_chunk donates (invalidates) state.params.
        snap = jax.tree.map(jnp.copy, state.params) if snapshots else None
        if pending is not None:
            report(_fetch(*pending))
        if deferred is not None and on_checkpoint is not None:
            on_checkpoint(deferred[1], deferred[0])
        pending, deferred = (k, chunks, loss, snap), None
        more = k + 1 < len(chunks)
        if more and checkpoint_now is not None and checkpoint_now():
            report(_fetch(*pending))
            pending = None
            if on_checkpoint is not None:
                on_checkpoint(state, k + 1)
            if on_stop is not None:
                on_stop()
        elif more and checkpoint_every and (k + 1) % checkpoint_every == 0:
            deferred = (k + 1, jax.device_get(state))
    if before_last_fetch is not None:
        before_last_fetch(state)
    if pending is not None:
        report(_fetch(*pending))
    return state


def train_instances(
    shape: Shape,
    hp: HParams,
    root_seed: int = 0,
    chunk_steps: int = 500,
    on_chunk: Callable[[int, np.ndarray], None] | None = None,
    *,
    mesh=None,
) -> TrainResult:
    """Train every instance of hp for shape.steps steps and evaluate it, over `mesh`
    (parallel.current_mesh). on_chunk(step, chunk_loss) is called on the host after each
    chunk, with each instance's mean training loss over that chunk (one sync per chunk).
    """
    chunks = chunk_schedule(shape.steps, chunk_steps)
    steps, losses = [], []

    def collect(chunk: Chunk) -> None:
        steps.append(chunk.step)
        losses.append(chunk.loss)
        if on_chunk is not None:
            on_chunk(chunk.step, chunk.loss)

    (hp,), _ = parallel.placed(hp, mesh=mesh)
    state = run_chunks(
        init_state(shape, hp, root_seed), hp, shape, chunks, root_seed, on_chunk=collect
    )
    loss = np.asarray(evaluate(state.params, hp, shape, root_seed))
    params = jax.tree.map(np.asarray, state.params)
    return TrainResult(
        params=params,
        loss=loss,
        diverged=is_diverged(loss, params),
        curves={"step": np.asarray(steps), "loss": np.stack(losses)},
    )
