"""Full-batch training on finite datasets, thousands of instances at once.

Every instance draws its own dataset once (`geomtoy.finite`, from its key: the dataset
depends on nothing but (root seed, instance id, seed)) and every optimizer step sees the
whole set. The math is written for one instance and vmapped over instances in blocks, as
in geomtoy.train; the host syncs once per chunk of steps.

Recipe (the finite-data follow-up to the toy-models paper): ReLU output model, Xavier
init, AdamW (betas 0.9/0.999, eps 1e-8, decoupled weight decay on W and b), learning rate
warmed up linearly from 0 over `warmup_steps`, then cosine decay to 0 at `steps`;
loss summed over features and averaged over the T samples (`geomtoy.finite`).

Public API (init_state, train_chunk and evaluate keep geomtoy.train's contracts and take
the spec's Shape with n_samples > 0, so the runner trains either engine the same way):
    init_state, train_chunk, evaluate (test loss), measure, datasets, train_instances
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
import optax

from geomtoy import finite, models, optim, parallel, rng
from geomtoy.geometry import datapoints
from geomtoy.spec import Shape, chunk_schedule
from geomtoy.train import HParams, TrainState, is_diverged

KIND = "relu_output"


@dataclasses.dataclass(frozen=True)
class FiniteShape:
    """The engine's static configuration of a finite-data group (`finite_shape`): the
    spec's Shape plus the slot capacity K of a sparse sample and the resolved layout."""

    n_features: int
    n_hidden: int
    n_samples: int  # T
    slots: int  # K: capacity of a sparse sample (finite.capacity)
    steps: int = 50_000
    warmup_steps: int = 2_500
    representation: str = "sparse"  # dense | sparse
    test_samples: int = 8192
    optimizer: str = "adamw"  # as geomtoy.optim.make_optimizer: adamw | adam | sgd
    schedule: str = "warmup_cosine"  # as geomtoy.optim.lr_schedule
    loss_entries: int = finite.LOSS_BLOCK_ENTRIES  # per block of the sparse output term

    def __post_init__(self):
        if self.representation not in ("dense", "sparse"):
            raise ValueError(f"representation must be dense or sparse, got {self.representation}")
        for name in ("n_features", "n_hidden", "n_samples", "slots", "steps", "test_samples"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if self.slots > finite.MAX_SLOTS:
            raise ValueError(f"slots {self.slots} exceed {finite.MAX_SLOTS}")
        if not 0 <= self.warmup_steps < self.steps:
            raise ValueError(f"warmup_steps must be in [0, steps), got {self.warmup_steps}")


def finite_shape(shape: Shape | FiniteShape, hp: HParams | None) -> FiniteShape:
    """The engine's static shape for a spec Shape with n_samples > 0 (or a FiniteShape).
    K is computed from the largest feature probability of the instances in hp; a dataset
    does not depend on K (finite.uniforms), so neither does a result. Without hp (for the
    initial state, which does not depend on K) K is 1."""
    if isinstance(shape, FiniteShape):
        return shape
    if shape.n_samples < 1:
        raise ValueError("geomtoy.fullbatch trains finite training sets: n_samples must be > 0")
    q = 0.0 if hp is None else float(np.max(jax.device_get(hp.feature_probability)))
    n, T = shape.n_features, shape.n_samples
    return FiniteShape(
        n_features=n,
        n_hidden=shape.n_hidden,
        n_samples=T,
        slots=finite.capacity(n, q),
        steps=shape.steps,
        warmup_steps=shape.warmup_steps,
        representation=finite.representation(shape.representation, n, T),
        test_samples=shape.eval_samples,
        optimizer=shape.optimizer,
        schedule=shape.schedule,
        loss_entries=_block_entries(hp),
    )


def _block_entries(hp: HParams | None) -> int:
    cpu = hp is None or parallel.platform_of(hp) == "cpu"
    return finite.LOSS_BLOCK_ENTRIES if cpu else finite.ACCELERATOR_BLOCK_ENTRIES


def lr_schedule(shape: FiniteShape, lr):
    """The learning rate at each optimizer step (geomtoy.optim.lr_schedule)."""
    return optim.lr_schedule(shape, lr)


def _optimizer(shape: FiniteShape, hp: HParams) -> optax.GradientTransformation:
    """geomtoy.optim.make_optimizer: AdamW as torch.optim.AdamW (the recipe), or Adam/SGD
    with weight decay as an L2 gradient term.

    Adam scales each coordinate of W on its own, so the hidden basis is privileged: in 2-D
    its near-sign updates pull hidden vectors towards the diagonals. Where the loss leaves
    the arrangement free (T <= 4 points in 2-D reach zero loss with any pairwise angles
    >= 90 degrees, all at ||W||_F^2 = T), AdamW ends near a diagonal-aligned arrangement
    (angles about 100/100/160 degrees for T = 3) and rotation-invariant SGD at the
    equilateral triangle (tests/test_finite.py)."""
    return optim.make_optimizer(shape, hp.lr, hp.weight_decay)


def _dataset(shape: FiniteShape, root_seed, hp: HParams) -> finite.Dataset:
    key = rng.dataset_key(rng.instance_key(root_seed, hp.instance_id, hp.seed))
    return finite.sample(key, hp.feature_probability, shape.n_samples, shape.slots)


def _loss(shape: FiniteShape, params, data, importance):
    if shape.representation == "dense":
        return finite.loss_dense(params.W, params.b, data, importance)
    return finite.loss_sparse(params.W, params.b, data, importance, shape.loss_entries)


def _training_data(shape: FiniteShape, dataset: finite.Dataset):
    """What the step loop reads: the dense matrix or the sparse dataset itself."""
    if shape.representation == "dense":
        return finite.to_dense(dataset, shape.n_features)
    return dataset


def _chunk_one(shape: FiniteShape, n_steps: int, root_seed, hp: HParams, state: TrainState):
    data = _training_data(shape, _dataset(shape, root_seed, hp))
    optimizer = _optimizer(shape, hp)

    def step(state, _):
        loss, grads = jax.value_and_grad(_loss, argnums=1)(shape, state.params, data, hp.importance)
        updates, opt_state = optimizer.update(grads, state.opt_state, state.params)
        params = optax.apply_updates(state.params, updates)
        return state.replace(params=params, opt_state=opt_state, step=state.step + 1), loss

    state, losses = jax.lax.scan(step, state, None, length=n_steps)
    return state, jnp.mean(losses)


def _init_one(shape: FiniteShape, root_seed, hp: HParams) -> TrainState:
    key = rng.instance_key(root_seed, hp.instance_id, hp.seed)
    params = models.init_params(rng.init_key(key), KIND, shape.n_features, shape.n_hidden)
    opt_state = _optimizer(shape, hp).init(params)
    return TrainState(params=params, opt_state=opt_state, step=jnp.zeros((), jnp.int32))


BLOCK_BYTES = 1 << 22
"""Instances per sequential block on CPU: their step temporaries fit in about 4 MiB."""


def step_bytes(shape: FiniteShape) -> int:
    """Bytes of float32 temporaries of one instance's step: a few (n, T) arrays (dense) or
    (n, loss block) arrays plus the (m, T, K) gather (sparse)."""
    n, T, m = shape.n_features, shape.n_samples, shape.n_hidden
    if shape.representation == "dense":
        return 4 * 5 * n * T
    block = finite.loss_block(n, T, shape.loss_entries)
    return 4 * (4 * n * block + 3 * m * T * shape.slots)


def instance_block(shape: FiniteShape, n_local: int, platform: str) -> int | None:
    if platform != "cpu":
        return None
    block = max(1, BLOCK_BYTES // step_bytes(shape))
    return None if block >= n_local else block


@functools.partial(jax.jit, static_argnums=(0, 3))
def _init_instances(shape, root_seed, hp, mesh):
    return parallel.map_instances(
        lambda s, h: _init_one(shape, s, h), root_seed, hp, mesh=mesh, block=None
    )


@functools.partial(jax.jit, static_argnums=(2, 3, 5, 6), donate_argnums=(0,))
def _train_chunk(state, hp, shape, n_steps, root_seed, mesh, block):
    return parallel.map_instances(
        lambda s, hs: _chunk_one(shape, n_steps, s, hs[0], hs[1]),
        root_seed,
        (hp, state),
        mesh=mesh,
        block=block,
    )


def init_state(
    shape: Shape | FiniteShape, hp: HParams, root_seed: int = 0, *, mesh=None
) -> TrainState:
    """Initial weights and optimizer state (geomtoy.train.init_state's contract)."""
    shape = finite_shape(shape, None)
    (hp,), mesh = parallel.placed(hp, mesh=mesh)
    return _init_instances(shape, rng.seed_argument(root_seed), hp, mesh)


def train_chunk(state, hp: HParams, shape: Shape | FiniteShape, n_steps: int, root_seed: int = 0):
    """Advance every instance by n_steps full-batch steps; returns (state, mean loss (I,)).
    `state` is donated (geomtoy.train.train_chunk's contract)."""
    shape = finite_shape(shape, hp)
    (state, hp), mesh = parallel.placed(state, hp)
    n_local = parallel.local_instances(hp.lr.shape[0], mesh)
    block = instance_block(shape, n_local, parallel.platform_of(hp))
    return _train_chunk(state, hp, shape, n_steps, rng.seed_argument(root_seed), mesh, block)


def _test_loss_one(shape: FiniteShape, root_seed, params, hp: HParams):
    """Loss on test_samples fresh samples from uniforms shared by every instance."""
    u = finite.uniforms(rng.eval_key(root_seed, 0), shape.test_samples, shape.slots)
    test = finite.from_uniform(u, hp.feature_probability)
    return finite.loss_sparse(params.W, params.b, test, hp.importance, shape.loss_entries)


def _evaluate_one(shape: FiniteShape, root_seed, params, hp: HParams) -> dict:
    dataset = _dataset(shape, root_seed, hp)
    h = finite.hidden(params.W, dataset)
    return {
        "train_loss": finite.loss_sparse(
            params.W, params.b, dataset, hp.importance, shape.loss_entries
        ),
        "test_loss": _test_loss_one(shape, root_seed, params, hp),
        "truncated": dataset.truncated,
        "hidden": h,
        **datapoints.measures(params.W, h),
    }


@functools.partial(jax.jit, static_argnums=(2, 4))
def _evaluate(params, hp, shape, root_seed, mesh):
    return parallel.map_instances(
        lambda s, ph: _evaluate_one(shape, s, ph[0], ph[1]),
        root_seed,
        (params, hp),
        mesh=mesh,
        block=1 if parallel.platform_of(hp) == "cpu" else None,
    )


def measure(params, hp: HParams, shape: Shape | FiniteShape, root_seed: int = 0) -> dict:
    """Per instance: train_loss, test_loss, truncated samples, the hidden vectors h = W x
    (I, m, T) of the training set and `datapoints.measures` (dimensionalities, norms)."""
    shape = finite_shape(shape, hp)
    (params, hp), mesh = parallel.placed(params, hp)
    out = _evaluate(params, hp, shape, rng.seed_argument(root_seed), mesh)
    return {name: np.asarray(value) for name, value in out.items()}


def evaluate(params, hp: HParams, shape: Shape | FiniteShape, root_seed: int = 0):
    """Each instance's test loss (I,) (geomtoy.train.evaluate's contract)."""
    return measure(params, hp, shape, root_seed)["test_loss"]


def datasets(shape: Shape | FiniteShape, hp: HParams, root_seed: int = 0) -> finite.Dataset:
    """The training sets of every instance of hp (for inspection and tests)."""
    shape = finite_shape(shape, hp)
    one = lambda h: _dataset(shape, rng.seed_argument(root_seed), h)
    return jax.jit(jax.vmap(one))(hp)


@dataclasses.dataclass(frozen=True)
class FiniteResult:
    """What `train_instances` returns; arrays are NumPy, leading axis = instance."""

    params: models.Params
    measures: dict[str, np.ndarray]  # measure()'s dictionary
    diverged: np.ndarray  # (I,) bool
    curves: dict[str, np.ndarray]  # "step" (C,), "loss" (C, I): mean train loss per chunk


def train_instances(
    shape: Shape | FiniteShape,
    hp: HParams,
    root_seed: int = 0,
    chunk_steps: int = 1000,
    on_chunk: Callable[[int, np.ndarray], None] | None = None,
) -> FiniteResult:
    """Train every instance of hp for shape.steps full-batch steps and measure it."""
    shape = finite_shape(shape, hp)
    state = init_state(shape, hp, root_seed)
    steps, losses = [], []
    for n_steps in chunk_schedule(shape.steps, chunk_steps):
        state, chunk_loss = train_chunk(state, hp, shape, n_steps, root_seed)
        chunk_loss = np.asarray(chunk_loss)
        steps.append((steps[-1] if steps else 0) + n_steps)
        losses.append(chunk_loss)
        if on_chunk is not None:
            on_chunk(steps[-1], chunk_loss)
    measures = measure(state.params, hp, shape, root_seed)
    params = jax.tree.map(np.asarray, state.params)
    return FiniteResult(
        params=params,
        measures=measures,
        diverged=is_diverged(measures["test_loss"], params),
        curves={"step": np.asarray(steps), "loss": np.stack(losses)},
    )
