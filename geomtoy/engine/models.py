"""The toy models of Elhage et al. 2022 (paper §3.1), written for one instance: a registry.

Notation of the paper: W has shape (m, n) and its column W[:, i] is the direction of
feature i in the m-dimensional hidden space; b is the output bias (n,). A batch is held
feature-major, x of shape (n, B) with one sample per column, so that `W @ x` is the
paper's h = W x for all samples at once and XLA vectorises over the batch (docs/design.md,
performance principles). The instance axis is added by `jax.vmap` in train.py.

Every model kind is one `Kind` entry in `MODELS`: its pre-activation output and its target,
joined to its name, doc and flags (signed inputs, an untied second matrix, a privileged
hidden basis) from the JAX-free geomtoy.registry. The output nonlinearity is `ACTIVATIONS[activation]` (ReLU as
in the paper, or exact GELU), applied by every kind that has one:

  relu_output  x_hat = f(W^T W x + b)           the paper's main model
  linear       x_hat = W^T W x + b              the linear baseline (§3.2), no f
  relu_hidden  x_hat = f(W^T ReLU(W x) + b)     privileged basis, tied, no hidden bias (§8)
  abs          y_hat = f(W2 ReLU(W x) + b)      computation in superposition, untied (§9);
                                                W plays W1, W2 has shape (n, m), target |x|

A new kind is one `registry.ModelKind` entry plus one `register(name, logits)` call here.
"""

import dataclasses
import functools
from collections.abc import Callable

import jax
import jax.numpy as jnp

from geomtoy import registry


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class Params:
    """Weights of one model (or, stacked, of many: a leading instance axis on each leaf)."""

    W: jax.Array  # (m, n): columns are feature directions
    b: jax.Array  # (n,): output bias
    W2: jax.Array | None = None  # (n, m): untied output weights, abs model only

    def replace(self, **changes) -> "Params":
        return dataclasses.replace(self, **changes)


ACTIVATIONS: dict[str, Callable[[jax.Array], jax.Array]] = {
    "relu": jax.nn.relu,
    "gelu": functools.partial(jax.nn.gelu, approximate=False),  # x Phi(x), as torch's GELU
}
"""The output nonlinearity f, by its name in the sweep key model.activation."""
registry.check_math("geomtoy.engine.models.ACTIVATIONS", registry.ACTIVATIONS, ACTIVATIONS)


def _identity(x: jax.Array) -> jax.Array:
    return x


@dataclasses.dataclass(frozen=True, kw_only=True)
class Kind(registry.ModelKind):
    """One model kind: its registry entry (name, doc, flags) and its math for one instance."""

    logits: Callable[[Params, jax.Array], jax.Array]  # x (n, B) -> output before f
    target: Callable[[jax.Array], jax.Array] = _identity  # what the output must match


MODELS: dict[str, Kind] = {}


def register(name: str, logits: Callable, target: Callable = _identity) -> Kind:
    """The math of a kind registered (by name and flags) in geomtoy.registry.MODEL_KINDS."""
    if name in MODELS or name not in registry.MODEL_KINDS:
        raise ValueError(f"model kind {name!r} is already registered or has no registry entry")
    MODELS[name] = Kind(
        **dataclasses.asdict(registry.MODEL_KINDS[name]), logits=logits, target=target
    )
    return MODELS[name]


register("relu_output", lambda p, x: p.W.T @ (p.W @ x) + p.b[:, None])
register("linear", lambda p, x: p.W.T @ (p.W @ x) + p.b[:, None])
register("relu_hidden", lambda p, x: p.W.T @ jax.nn.relu(p.W @ x) + p.b[:, None])
register("abs", lambda p, x: p.W2 @ jax.nn.relu(p.W @ x) + p.b[:, None], target=jnp.abs)
registry.check_math("geomtoy.engine.models.MODELS", tuple(registry.MODEL_KINDS), MODELS)


def model_kind(kind: str) -> Kind:
    """The registry entry of a kind name (ValueError naming the known kinds)."""
    try:
        return MODELS[kind]
    except KeyError:
        raise ValueError(f"unknown model kind {kind!r}; expected one of {tuple(MODELS)}") from None


INITS_W: dict[str, Callable[[int, int], float]] = {
    "xavier_normal": lambda n, m: (2.0 / (n + m)) ** 0.5,
    "normal_m": lambda n, m: m**-0.5,  # Liu, Liu and Gore 2025: W ~ N(0, 1/m)
}
"""The std of the initial weights (model.init_W) from n and m."""
INITS_B: dict[str, float] = {"zeros": 0.0, "normal": 1.0}
"""The std of the initial bias (model.init_b): zeros, or N(0, 1) as Liu et al."""
registry.check_math("geomtoy.engine.models.INITS_W", registry.INITS_W, INITS_W)
registry.check_math("geomtoy.engine.models.INITS_B", registry.INITS_B, INITS_B)


def init_params(
    key: jax.Array, kind: str, n_features: int, n_hidden: int, init_W=0, init_b=0
) -> Params:
    """Initial weights, one model at a time: W (and W2) normal with the std of
    INITS_W[init_W], b normal with the std of INITS_B[init_b]; init_W and init_b are
    indices into registry.INITS_W and INITS_B (traced leaves: one program initialises
    instances that differ in them). Default: Xavier normal, std sqrt(2 / (n + m)), zero b.

    The notebook calls torch's xavier_normal_ on the stacked (K, n, m) tensor, whose std
    depends on the number of instances K (docs/paper.md, training recipe): an artefact of
    batching that would break the rule that an instance does not depend on its batch. Here
    every model gets the Xavier std of its own (m, n) matrix.
    """
    n, m = n_features, n_hidden
    std = jnp.asarray([f(n, m) for f in INITS_W.values()], jnp.float32)[init_W]
    k_w, k_w2 = jax.random.split(key)
    W = std * jax.random.normal(k_w, (m, n), jnp.float32)
    W2 = std * jax.random.normal(k_w2, (n, m), jnp.float32) if model_kind(kind).untied else None
    b_std = jnp.asarray(list(INITS_B.values()), jnp.float32)[init_b]
    noise = jax.random.normal(jax.random.fold_in(key, 2), (n,), jnp.float32)
    b = jnp.where(b_std > 0, b_std * noise, 0.0)
    return Params(W=W, b=b, W2=W2)


def forward(kind: str, params: Params, x: jax.Array, activation: str = "relu") -> jax.Array:
    """The model's output for a feature-major batch x (n, B)."""
    k = model_kind(kind)
    z = k.logits(params, x)
    return ACTIVATIONS[activation](z) if k.output_activation else z


def target(kind: str, x: jax.Array) -> jax.Array:
    """What the model must reproduce: x itself, or |x| for the abs model."""
    return model_kind(kind).target(x)


def loss(
    kind: str, params: Params, x: jax.Array, importance: jax.Array, activation: str = "relu"
) -> jax.Array:
    """Importance-weighted MSE, mean over batch and features (the notebook's reduction).

    importance has shape (n,). Summing this over instances gives the notebook's loss; each
    instance's gradient is that of its own mean.
    """
    out = forward(kind, params, x, activation)
    error = importance[:, None] * (target(kind, x) - out) ** 2
    return jnp.mean(error)


KINDS = tuple(MODELS)
