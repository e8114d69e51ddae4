"""Training engine: thousands of models at once, as jit(vmap(scan)), for every family.

A model family (geomtoy.engine.families: the toy models, the finite-data models, the SAEs of
geomtoy.sae) is its math for one instance: init, one optimizer step, evaluation. Here
`jax.vmap` adds the instance axis and `lax.scan` runs a chunk of steps inside one compiled
program, so the host syncs once per chunk. Everything that fixes a shape is static (the
family's shape: one compilation per distinct value); everything that is swept is an array
leaf with a leading instance axis (its hyperparameters): one program trains instances
that differ in sparsity, importance, learning rate, weight decay and seed.

Placement (bench/RESULTS.md): each device trains its own instances (`geomtoy.engine.parallel`,
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

from geomtoy.engine import data, parallel, rng
from geomtoy.engine.families import FAMILIES, Family, family_of, is_diverged
from geomtoy.engine.models import Params
from geomtoy.engine.toy import HParams, TrainState, step_bytes
from geomtoy.spec import Shape, chunk_schedule

# The toy family's names and the family registry (geomtoy.engine.families), re-exported.
__all__ = ["FAMILIES", "Family", "HParams", "Shape", "TrainState", "family_of", "is_diverged"]
__all__ += ["step_bytes"]


@dataclasses.dataclass(frozen=True)
class TrainResult:
    """What `train_instances` returns; arrays are NumPy, leading axis = instance."""

    params: Params
    loss: np.ndarray  # (I,) final loss on shape.eval_samples fresh samples
    diverged: np.ndarray  # (I,) bool: a NaN or inf in the loss or the weights
    curves: dict[str, np.ndarray]  # "step" (C,), "loss" (C, I): mean train loss per chunk


CPU_BLOCK_BYTES = Family.cpu_block_bytes
"""On CPU, instances train in sequential blocks whose step temporaries fit in about this
many bytes (the per-core L2 cache; a family may set its own): each block runs a whole chunk
of steps while its arrays stay in cache, instead of every step streaming (I, n, B) arrays
through memory. Measured on a 2-core Xeon: 2x fewer CPU seconds per model-step
(bench/RESULTS.md)."""


def instance_block(
    shape, n_local: int, platform: str, batch: int | None = None, *, evaluation: bool = False
) -> int | None:
    """Instances a device trains (or, with `evaluation` or `batch` = the evaluation batch,
    evaluates) at once: all of them (None) on GPU and TPU, which want the widest vmap; on
    CPU a cache-sized block of at least the family's min_block (its cpu_block_bytes).
    Instances that share their batches share them within a block (a block draws each
    batch once): a whole device's vmap would stream every instance's step temporaries
    through memory, which costs more than the draws it saves."""
    family = family_of(shape)
    if platform != "cpu":
        return None
    if evaluation and family.eval_cpu_block is not None:
        return family.eval_cpu_block
    batch = shape.eval_batch if evaluation else batch
    block = max(family.min_block, family.cpu_block_bytes // family.step_bytes(shape, batch))
    return None if block >= n_local else block


def _chunk_one(shape, n_steps: int, root_seed, hp, state):
    """n_steps of one instance (the family's own chunk, or the step scanned over the
    random streams of its steps, derived first)."""
    family = family_of(shape)
    if family.chunk_one is not None:
        return family.chunk_one(shape, n_steps, root_seed, hp, state)
    step_one = family.step_one
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
    family = family_of(shape)
    if family.shares_batches(shape):
        return parallel.map_instances(
            lambda seed, hs: family.chunk_block(shape, n_steps, seed, hs[0], hs[1]),
            root_seed, (hp, state), mesh=mesh, block=block, batched=True,
        )  # fmt: skip
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


def resolve(shape, hp=None):
    """The engine's static shape of a block (its family's `resolve`; hp None: for init)."""
    return family_of(shape).resolve(shape, hp)


def _init_args(shape, hp, root_seed: int, mesh):
    (hp,), mesh = parallel.placed(hp, mesh=mesh)
    return resolve(shape), rng.seed_argument(root_seed), hp, mesh


def _chunk_args(state, hp, shape, n_steps: int, root_seed: int, block, mesh):
    (state, hp), mesh = parallel.placed(state, hp, mesh=mesh)
    shape = resolve(shape, hp)
    if block == AUTO:
        n_local = parallel.local_instances(hp.lr.shape[0], mesh)
        block = instance_block(shape, n_local, parallel.platform_of(hp))
    return state, hp, shape, n_steps, rng.seed_argument(root_seed), mesh, block


def _evaluate_args(params, hp, shape: Shape, root_seed: int, block, mesh):
    (params, hp), mesh = parallel.placed(params, hp, mesh=mesh)
    shape = resolve(shape, hp)
    if block == AUTO:
        n_local = parallel.local_instances(hp.lr.shape[0], mesh)
        block = instance_block(shape, n_local, parallel.platform_of(hp), evaluation=True)
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


def train_curves(
    shape, hp, root_seed: int = 0, chunk_steps: int = 500, on_chunk=None, *, mesh=None
):
    """Initialise and train every instance of hp (any family) for shape.steps steps in
    the one chunk loop; returns (final state, curves {"step" (C,), "loss" (C, I)}: each
    instance's mean training loss per chunk). on_chunk(step, chunk_loss) runs on the host
    after each chunk (one sync per chunk)."""
    steps, losses = [], []

    def collect(chunk: Chunk) -> None:
        steps.append(chunk.step)
        losses.append(chunk.loss)
        if on_chunk is not None:
            on_chunk(chunk.step, chunk.loss)

    chunks = chunk_schedule(shape.steps, chunk_steps)
    state = init_state(shape, hp, root_seed, mesh=mesh)
    state = run_chunks(state, hp, shape, chunks, root_seed, on_chunk=collect)
    return state, {"step": np.asarray(steps), "loss": np.stack(losses)}


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
    (hp,), _ = parallel.placed(hp, mesh=mesh)
    state, curves = train_curves(shape, hp, root_seed, chunk_steps, on_chunk)
    loss = np.asarray(evaluate(state.params, hp, shape, root_seed))
    params = jax.tree.map(np.asarray, state.params)
    return TrainResult(
        params=params,
        loss=loss,
        diverged=is_diverged(loss, params),
        curves=curves,
    )
