"""Training engine: thousands of models at once, as jit(vmap(scan)), for every family.

A model family (`FAMILIES`: the toy models of geomtoy.toy, the SAEs of geomtoy.sae) is its
math for one instance: init, one optimizer step on a fresh batch, evaluation. Here
`jax.vmap` adds the instance axis and `lax.scan` runs a chunk of steps inside one compiled
program, so the host syncs once per chunk. Everything that fixes a shape is static (the
family's shape: one compilation per distinct value); everything that is swept is an array
leaf with a leading instance axis (its hyperparameters): one program trains instances
that differ in sparsity, importance, learning rate, weight decay and seed.

Placement (bench/RESULTS.md): each device trains its own instances (`geomtoy.parallel`,
`shard_map` over the instance axis, no collectives), on the mesh the caller passes (or
sets with jax.set_mesh). On GPU and TPU a device vmaps over all of its instances at once;
on CPU it runs them in cache-sized blocks, one after the other, each block running the
whole chunk of steps (`instance_block`), and a run uses one CPU device per core. None of
this changes a result beyond float rounding: an instance's batches depend only on (root
seed, instance id, seed, step).

Public API (any family's shape and hyperparameters):
    init_state(shape, hp, root_seed) -> state
    train_chunk(state, hp, shape, n_steps, root_seed) -> (state, chunk_loss (I,))
    run_chunks(state, hp, shape, chunks, root_seed, ...) -> state   (the one chunk loop)
    evaluate(params, hp, shape, root_seed) -> loss (I,)            (toy models)
    train_instances(shape, hp, root_seed, chunk_steps, on_chunk) -> TrainResult
    lower_init, lower_chunk, lower_evaluate, programs: the compiled programs
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from geomtoy import data, parallel, registry, rng, toy
from geomtoy.models import Params
from geomtoy.spec import Shape, chunk_schedule
from geomtoy.toy import HParams, TrainState, step_bytes

__all__ = ["HParams", "Shape", "TrainState", "step_bytes"]  # the toy family's, re-exported


@dataclasses.dataclass(frozen=True)
class TrainResult:
    """What `train_instances` returns; arrays are NumPy, leading axis = instance."""

    params: Params
    loss: np.ndarray  # (I,) final loss on shape.eval_samples fresh samples
    diverged: np.ndarray  # (I,) bool: a NaN or inf in the loss or the weights
    curves: dict[str, np.ndarray]  # "step" (C,), "loss" (C, I): mean train loss per chunk


@dataclasses.dataclass(frozen=True)
class Family:
    """One model family's math for one instance, which this module's programs vmap and
    loop. Its state and hyperparameters are registered dataclasses; hp has `instance_id`,
    `seed` and `lr` (I,) leaves, so keys, chunks and placement are the same for all."""

    name: str
    init_one: Callable  # (shape, root_seed, hp) -> state (with a `step` counter)
    step_one: Callable  # (shape, stream, hp, state) -> (state, loss): one optimizer step
    step_bytes: Callable  # (shape, batch | None) -> bytes of one instance's temporaries
    evaluate_one: Callable | None = None  # (shape, root_seed, params, hp) -> loss


FAMILIES: dict[type, Family] = {}
"""Model families by the type of their static shape (spec.Shape: the toy models)."""


def register_family(shape_type: type, family: Family) -> Family:
    """Train `family` for every shape of `shape_type` (one entry per family, its name one
    of registry.MODEL_FAMILIES)."""
    if family.name not in registry.MODEL_FAMILIES:
        raise ValueError(f"model family {family.name!r} is not in registry.MODEL_FAMILIES")
    if shape_type in FAMILIES:
        raise ValueError(f"{shape_type.__name__} already has the family {family.name!r}")
    FAMILIES[shape_type] = family
    return family


def family_of(shape) -> Family:
    try:
        return FAMILIES[type(shape)]
    except KeyError:
        raise TypeError(f"no model family trains a {type(shape).__name__}") from None


register_family(Shape, Family("toy", toy.init_one, toy.step_one, step_bytes, toy.evaluate_one))

CPU_BLOCK_BYTES = 1 << 20
"""On CPU, instances train in sequential blocks whose step temporaries fit in about this
many bytes (the per-core L2 cache): each block runs a whole chunk of steps while its
arrays stay in cache, instead of every step streaming (I, n, B) arrays through memory.
Measured on a 2-core Xeon: 2x fewer CPU seconds per model-step (bench/RESULTS.md)."""


def instance_block(shape, n_local: int, platform: str, batch: int | None = None) -> int | None:
    """Instances a device trains (or, with `batch` = the evaluation batch, evaluates) at
    once: all of them (None) on GPU and TPU, which want the widest vmap; on CPU a
    cache-sized block of at least 2 (CPU_BLOCK_BYTES)."""
    if platform != "cpu":
        return None
    block = max(2, CPU_BLOCK_BYTES // family_of(shape).step_bytes(shape, batch))
    return None if block >= n_local else block


def _chunk_one(shape, n_steps: int, root_seed, hp, state):
    """n_steps of one instance; the random streams of its steps are derived first."""
    step_one = family_of(shape).step_one
    key = rng.instance_key(root_seed, hp.instance_id, hp.seed)
    steps = state.step + jnp.arange(n_steps, dtype=jnp.int32)
    streams = jax.vmap(lambda t: data.stream(rng.step_key(key, t), shape.sampler))(steps)
    state, losses = jax.lax.scan(lambda s, stream: step_one(shape, stream, hp, s), state, streams)
    return state, jnp.mean(losses)


@functools.partial(jax.jit, static_argnums=(0, 3))
def _init_instances(shape, root_seed, hp, mesh):
    init_one = family_of(shape).init_one
    return parallel.map_instances(
        lambda seed, h: init_one(shape, seed, h), root_seed, hp, mesh=mesh, block=None
    )


@functools.partial(jax.jit, static_argnums=(2, 3, 5, 6), donate_argnums=(0,))
def _train_chunk(state, hp, shape, n_steps: int, root_seed, mesh, block):
    return parallel.map_instances(
        lambda seed, hs: _chunk_one(shape, n_steps, seed, hs[0], hs[1]),
        root_seed,
        (hp, state),
        mesh=mesh,
        block=block,
    )


@functools.partial(jax.jit, static_argnums=(2, 4, 5))
def _evaluate(params, hp, shape, root_seed, mesh, block):
    evaluate_one = family_of(shape).evaluate_one
    return parallel.map_instances(
        lambda seed, ph: evaluate_one(shape, seed, ph[0], ph[1]),
        root_seed,
        (params, hp),
        mesh=mesh,
        block=block,
    )


AUTO = "auto"
"""block = AUTO: the instance block of `instance_block` for the platform (the default)."""


def _init_args(shape, hp, root_seed: int, mesh):
    (hp,), mesh = parallel.placed(hp, mesh=mesh)
    return shape, rng.seed_argument(root_seed), hp, mesh


def _chunk_args(state, hp, shape, n_steps: int, root_seed: int, block, mesh):
    (state, hp), mesh = parallel.placed(state, hp, mesh=mesh)
    if block == AUTO:
        n_local = parallel.local_instances(hp.lr.shape[0], mesh)
        block = instance_block(shape, n_local, parallel.platform_of(hp))
    return state, hp, shape, n_steps, rng.seed_argument(root_seed), mesh, block


def _evaluate_args(params, hp, shape: Shape, root_seed: int, block, mesh):
    (params, hp), mesh = parallel.placed(params, hp, mesh=mesh)
    if block == AUTO:
        n_local = parallel.local_instances(hp.lr.shape[0], mesh)
        block = instance_block(shape, n_local, parallel.platform_of(hp), shape.eval_batch)
    return params, hp, shape, rng.seed_argument(root_seed), mesh, block


def init_state(shape, hp, root_seed: int = 0, *, mesh=None):
    """Initial weights and optimizer state of every instance in hp, on hp's instance mesh
    if it is placed on one, else on `mesh` (parallel.current_mesh: None, one device)."""
    return _init_instances(*_init_args(shape, hp, root_seed, mesh))


def train_chunk(state, hp, shape, n_steps: int, root_seed: int = 0, *, block=AUTO, mesh=None):
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


def lower_init(shape, hp, root_seed: int = 0, *, mesh=None) -> jax.stages.Lowered:
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
    seed = rng.seed_argument(root_seed)
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
    state,
    hp,
    shape,
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
    """The one chunk loop (every family's): train chunks[start:] and return the final state.

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
