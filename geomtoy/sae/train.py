"""Training thousands of SAEs at once, as jit(vmap(scan)), on toy models' hidden activations.

The model family "sae" (registered in geomtoy.sae.family): this module holds the math of
one SAE's init and optimizer step; train's programs and its one chunk loop vmap, scan,
place and checkpoint it as they do the toy models. Each SAE instance carries its own toy
model (the weights it reads h = W x from, and that model's feature distribution) as array
leaves, so one compiled program trains an SAE grid (L1 coefficient, k, learning rate,
seed) over many toy models of one shape. Keys, chunks, placement and the optimizer are the
toy models' (geomtoy.engine.rng, geomtoy.engine.parallel, geomtoy.engine.optim.make_optimizer): an SAE's
batches depend only on (root seed, SAE id, seed, step), whatever else trains beside it.

Inputs: see geomtoy.sae.source.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np

from geomtoy import spec
from geomtoy.engine import data, optim, parallel, rng, train
from geomtoy.engine.models import Params
from geomtoy.sae import evaluate, source
from geomtoy.sae import model as sae
from geomtoy.sae.source import SOURCES, SYNTHBENCH, Benchmark, hidden


@dataclasses.dataclass(frozen=True)
class SAEShape:
    """Static configuration of an SAE group: shapes and the program (one compile each)."""

    n_features: int
    n_hidden: int
    width: int
    activation: str = "relu"
    source: str = "relu_output"
    batch_size: int = 1024
    steps: int = 10_000
    optimizer: str = "adam"
    schedule: str = "constant"
    sampler: str = "hash"
    structure: str = "independent"
    set_size: int = 1
    magnitude: str = "uniform"  # of a present feature (data.MAGNITUDES)
    output_activation: str = "relu"  # the toy model's (models.ACTIVATIONS), for its loss
    resample_every: int = 2500  # 0: never
    resample_until: float = 0.5  # fraction of steps after which no latent is resampled
    resample_scale: float = 0.2
    eval_samples: int = 2**16
    shared_data: bool = False  # SAEs of one source read one stream of batches (chunk_block)
    steered: bool = True  # some SAE of the block is steered to a target L0 (see `resolve`)

    def __post_init__(self):
        choices = {
            "activation": tuple(sae.ACTIVATIONS),
            "source": SOURCES,
            "optimizer": spec.OPTIMIZERS,
            "schedule": spec.SCHEDULES,
            "sampler": spec.SAMPLERS,
            "structure": spec.STRUCTURES,
            "magnitude": spec.MAGNITUDES,
            "output_activation": spec.ACTIVATIONS,
        }
        positive = ("n_features", "n_hidden", "width", "batch_size", "steps", "eval_samples")
        spec.check_shape(self, choices, positive)

    @property
    def eval_batch(self) -> int:
        return min(self.eval_samples, spec.EVAL_BATCH)

    @property
    def eval_batches(self) -> int:
        return -(-self.eval_samples // self.eval_batch)


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class SAEHParams:
    """Per-SAE leaves, each with a leading instance axis (I, ...)."""

    instance_id: jax.Array  # (I,) int32: feeds the SAE's key
    seed: jax.Array  # (I,) int32
    l1_coefficient: jax.Array  # (I,)
    k: jax.Array  # (I,) int32: active latents per sample (topk, batchtopk)
    lr: jax.Array  # (I,)
    toy: Params  # the toy model read: W (I, m, n), b (I, n)
    feature_probability: jax.Array  # (I, n) of the toy model's data
    importance: jax.Array  # (I, n) of the toy model's loss (the downstream loss)
    target_l0: jax.Array  # (I,): L0 the sparsity coefficient is steered to (0: fixed)
    source_id: jax.Array  # (I,) int32: the source's stream (shape.shared_data)
    jumprelu_threshold: jax.Array  # (I,): JumpReLU's initial threshold
    dist: Benchmark  # (I, n, ...) synthbench leaves (inert for other sources)

    @classmethod
    def create(
        cls, W, b=None, *, feature_probability, importance=1.0, l1_coefficient=0.0, k=1,
        lr=1e-3, seed=0, instance_id=None, mesh=None, target_l0=0.0, dist=None, source_id=0,
        jumprelu_threshold=sae.JUMPRELU_INIT_THRESHOLD,
    ) -> SAEHParams:  # fmt: skip
        """Broadcast per-SAE values (scalars or (I,)) and toy data to the instance axis;
        W (I, m, n) gives I, b defaults to zeros. The leaves go on `mesh`
        (parallel.current_mesh), as toy.HParams.create's do."""
        W = np.asarray(W, np.float32)
        I, _, n = W.shape
        b = np.zeros((I, n), np.float32) if b is None else np.asarray(b, np.float32)

        def each(value, dtype, shape):
            return np.broadcast_to(np.asarray(value, dtype), shape)

        hp = cls(
            instance_id=each(np.arange(I) if instance_id is None else instance_id, np.int32, (I,)),
            seed=each(seed, np.int32, (I,)),
            l1_coefficient=each(l1_coefficient, np.float32, (I,)),
            k=each(k, np.int32, (I,)),
            lr=each(lr, np.float32, (I,)),
            toy=Params(W=W, b=each(b, np.float32, (I, n))),
            feature_probability=_per_feature(feature_probability, I, n),
            importance=_per_feature(importance, I, n),
            target_l0=each(target_l0, np.float32, (I,)),
            source_id=each(source_id, np.int32, (I,)),
            jumprelu_threshold=each(jumprelu_threshold, np.float32, (I,)),
            dist=_benchmark_leaves(dist, I, n),
        )
        # Straight from the host onto the instance mesh (or the default device): a staging
        # copy on one device first would compile resharding programs in every run.
        placed = parallel.place(hp, mesh)
        return placed if placed is not hp else jax.device_put(hp)


def _benchmark_leaves(dist, I: int, n: int) -> Benchmark:
    """Stacked synthbench leaves (I, n, ...), or inert ones for other sources."""
    if dist is None:
        return jax.tree.map(lambda a: np.broadcast_to(a, (I, *a.shape)), Benchmark.inert(n))
    return jax.tree.map(np.asarray, dist)


def _per_feature(value, I: int, n: int) -> np.ndarray:
    a = np.asarray(value, np.float32)
    return np.broadcast_to(a if a.ndim < 2 else a.reshape(I, -1), (I, n))


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class SAEState:
    params: sae.SAEParams
    opt_state: object
    step: jax.Array  # int32
    fired: jax.Array  # (width,) int32: samples each latent fired on since the last check
    threshold: jax.Array  # BatchTopK's inference threshold (running mean)
    coefficient: jax.Array  # the sparsity coefficient (steered when target_l0 > 0)
    integral: jax.Array  # L0 steering's integral of log(coefficient) (model.steer)
    error: jax.Array  # L0 steering's smoothed error (model.steer)
    last: jax.Array  # BatchTopK: the last batch's threshold, where its next search starts

    def replace(self, **changes) -> SAEState:
        return dataclasses.replace(self, **changes)


def _optimizer(shape: SAEShape, hp: SAEHParams):
    return optim.make_optimizer(shape, hp.lr, 0.0)


def _sample(shape: SAEShape, stream, hp: SAEHParams) -> jax.Array:
    if shape.source == SYNTHBENCH:
        rows = source.benchmark_rows(*hp.dist.factor.shape)
        u = data.uniform_from_stream(stream, (rows, shape.batch_size), shape.sampler)
        return source.benchmark_features(hp.dist, u)
    return data.sample_sparse_from_stream(
        stream, hp.feature_probability, shape.batch_size, sampler=shape.sampler,
        structure=shape.structure, set_size=shape.set_size, magnitude=shape.magnitude,
    )  # fmt: skip


def _resample_uniform(shape: SAEShape, stream) -> jax.Array:
    """(width,) uniforms for resampling, independent of the step's batch."""
    if shape.sampler == "hash":
        return data.hash_uniform_from_bits(stream ^ jnp.uint32(0xA511E9B3), (shape.width,))
    return jax.random.uniform(jax.random.fold_in(stream, 1), (shape.width,), jnp.float32)


def init_one(shape: SAEShape, root_seed, hp: SAEHParams) -> SAEState:
    key = rng.instance_key(root_seed, hp.instance_id, hp.seed)
    params = sae.init_params(rng.init_key(key), shape.n_hidden, shape.width, hp.jumprelu_threshold)
    coefficient = sae.initial_coefficient(hp.l1_coefficient, hp.target_l0)
    return SAEState(
        params=params,
        opt_state=_optimizer(shape, hp).init(params),
        step=jnp.zeros((), jnp.int32),
        fired=jnp.zeros((shape.width,), jnp.int32),
        threshold=jnp.zeros((), jnp.float32),
        coefficient=coefficient,
        integral=jnp.log(jnp.maximum(coefficient, 1e-30)),
        error=jnp.zeros((), jnp.float32),
        last=jnp.zeros((), jnp.float32),
    )


def step_one(shape: SAEShape, stream, hp: SAEHParams, state: SAEState):
    """One optimizer step of one SAE on a fresh batch, then the resampling check."""
    return update_one(shape, hidden(hp.toy, _sample(shape, stream, hp)), stream, hp, state)


def update_one(shape: SAEShape, h, stream, hp: SAEHParams, state: SAEState):
    """One optimizer step of one SAE on the batch h (m, B), then the resampling check
    (its uniforms from `stream`)."""
    grad_fn = jax.value_and_grad(sae.loss, argnums=1, has_aux=True)
    coefficient = state.coefficient
    (value, (f, recon)), grads = grad_fn(
        shape.activation, state.params, h, coefficient, hp.k, state.last
    )
    optimizer = _optimizer(shape, hp)
    updates, opt_state = optimizer.update(grads, state.opt_state, state.params)
    params = jax.tree.map(jnp.add, state.params, updates)
    params = params.replace(W_dec=sae.unit_columns(params.W_dec))
    fired, threshold, last = state.fired, state.threshold, state.last
    integral, error = state.integral, state.error
    if shape.resample_every:  # firing counts only feed the resampling check
        fired = fired + jnp.sum(f > 0, axis=1, dtype=jnp.int32)
    if shape.steered:  # the batch's L0 only feeds the steering
        l0, progress = jnp.sum(f > 0) / f.shape[1], state.step / shape.steps
        rate = sae.ACTIVATIONS[shape.activation].steer_rate
        integral, error, steered = sae.steer(integral, error, l0, hp.target_l0, progress, rate)
        coefficient = jnp.where(steered > 0, steered, coefficient)
    if sae.ACTIVATIONS[shape.activation].running_threshold:  # inference threshold: a mean
        m, last = sae.THRESHOLD_MOMENTUM, sae.batch_threshold(f)
        threshold = jnp.where(state.step == 0, last, m * threshold + (1.0 - m) * last)
    step = state.step + 1
    if shape.resample_every:
        check = (step % shape.resample_every == 0) & (step < shape.resample_until * shape.steps)
        dead = check & (fired == 0)
        u = _resample_uniform(shape, stream)
        params = sae.resample(
            params, dead, h, recon, u, shape.resample_scale, hp.jumprelu_threshold
        )
        opt_state = sae.reset_moments(opt_state, dead)
        fired = jnp.where(check, 0, fired)
    state = SAEState(params, opt_state, step, fired, threshold, coefficient, integral, error, last)
    return state, value


def _one_source(hp: SAEHParams) -> jax.Array:
    """Whether every SAE of a block reads one source: one stream, one distribution."""
    leaves = (hp.source_id, hp.feature_probability, *jax.tree.leaves(hp.dist))
    return jnp.all(jnp.stack([jnp.all(a == a[:1]) for a in leaves]))


def chunk_block(shape: SAEShape, n_steps: int, root_seed, hp: SAEHParams, state: SAEState):
    """n_steps of a block of SAEs (a leading instance axis) with shape.shared_data: every
    SAE's batch at step t is the one of its source's stream (rng.source_key: root seed,
    source id, t), read through its own toy W, so a block of one source draws it once
    per step (the other branch draws each SAE's from its own source: the same values).
    Resampling draws from each SAE's own stream (instance key, t)."""
    steps = state.step[0] + jnp.arange(n_steps, dtype=jnp.int32)

    def streams(key_of):  # (n_steps, ...) streams of the steps, derived before the scan
        return jax.vmap(lambda t: data.stream(rng.step_key(key_of(), t), shape.sampler))(steps)

    source = lambda i: rng.source_key(root_seed, i)
    first = jax.tree.map(lambda a: a[0], hp)
    shared = streams(lambda: source(first.source_id))
    each = jax.vmap(lambda i: streams(lambda: source(i)), out_axes=1)(hp.source_id)
    instance = lambda i, s: rng.instance_key(root_seed, i, s)
    own = jax.vmap(lambda i, s: streams(lambda: instance(i, s)), out_axes=1)(
        hp.instance_id, hp.seed
    )
    same = _one_source(hp)

    def step(state, xs):
        one, per_sae, mine = xs
        h = jax.lax.cond(
            same,
            lambda: jax.vmap(hidden, (0, None))(hp.toy, _sample(shape, one, first)),
            lambda: jax.vmap(lambda s, p: hidden(p.toy, _sample(shape, s, p)))(per_sae, hp),
        )
        return jax.vmap(lambda *a: update_one(shape, *a))(h, mine, hp, state)

    state, losses = jax.lax.scan(step, state, (shared, each, own))
    return state, jnp.mean(losses, axis=0)


def resolve(shape: SAEShape, hp: SAEHParams | None) -> SAEShape:
    """The program of a block: without L0 steering where none of its SAEs has a target L0
    (hp.target_l0 > 0), so its steps skip counting each batch's L0; the results are the
    same (steering leaves an SAE without a target untouched). Without hp (init): shape."""
    if hp is None:
        return shape
    steered = bool(np.any(jax.device_get(hp.target_l0) > 0))
    return shape if steered == shape.steered else dataclasses.replace(shape, steered=steered)


def step_bytes(shape: SAEShape, batch: int | None = None) -> int:
    """Float32 temporaries of one SAE step: x, a few (m, B) and (width, B) arrays."""
    return (
        4
        * (batch or shape.batch_size)
        * (2 * shape.n_features + 4 * shape.n_hidden + 5 * shape.width)
    )


init_state = train.init_state  # the shared programs: init_state(shape, hp, root_seed, mesh=)
train_chunk = train.train_chunk  # (state, hp, shape, n_steps, root_seed) -> (state, loss (I,))


@dataclasses.dataclass(frozen=True)
class SAEResult:
    """What `train_saes` returns: NumPy arrays with a leading SAE axis."""

    params: sae.SAEParams
    threshold: np.ndarray  # (I,)
    stats: dict[str, np.ndarray]  # geomtoy.sae.evaluate.evaluate's statistics
    curves: dict[str, np.ndarray]  # "step" (C,), "loss" (C, I)


def train_saes(
    shape: SAEShape,
    hp: SAEHParams,
    root_seed: int = 0,
    chunk_steps: int = 500,
    on_chunk: Callable[[int, np.ndarray], None] | None = None,
    *,
    mesh=None,
) -> SAEResult:
    """Train every SAE of hp for shape.steps steps in train's chunk loop (one sync per
    chunk), then evaluate it."""
    state, curves = train.train_curves(shape, hp, root_seed, chunk_steps, on_chunk, mesh=mesh)
    stats = evaluate.evaluate(state.params, state.threshold, hp, shape, root_seed)
    return SAEResult(
        params=jax.tree.map(np.asarray, state.params),
        threshold=np.asarray(state.threshold),
        stats=stats,
        curves=curves,
    )
