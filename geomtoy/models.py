"""The toy models of Elhage et al. 2022 (paper §3.1), written for one instance: a registry.

Notation of the paper: W has shape (m, n) and its column W[:, i] is the direction of
feature i in the m-dimensional hidden space; b is the output bias (n,). A batch is held
feature-major, x of shape (n, B) with one sample per column, so that `W @ x` is the
paper's h = W x for all samples at once and XLA vectorises over the batch (docs/design.md,
performance principles). The instance axis is added by `jax.vmap` in train.py.

Every model kind is one `Kind` entry in `MODELS`: its pre-activation output, its target
and the facts other modules ask about it (signed inputs, an untied second matrix, a
privileged hidden basis). The output nonlinearity is `ACTIVATIONS[activation]` (ReLU as
in the paper, or exact GELU), applied by every kind that has one:

  relu_output  x_hat = f(W^T W x + b)           the paper's main model
  linear       x_hat = W^T W x + b              the linear baseline (§3.2), no f
  relu_hidden  x_hat = f(W^T ReLU(W x) + b)     privileged basis, tied, no hidden bias (§8)
  abs          y_hat = f(W2 ReLU(W x) + b)      computation in superposition, untied (§9);
                                                W plays W1, W2 has shape (n, m), target |x|

A new kind is one `register(Kind(...))` call next to its math.
"""

import dataclasses
import functools
from collections.abc import Callable

import jax
import jax.numpy as jnp


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


@dataclasses.dataclass(frozen=True)
class Kind:
    """One model kind: its math for one instance and the flags other modules read."""

    name: str
    logits: Callable[[Params, jax.Array], jax.Array]  # x (n, B) -> output before f
    doc: str
    target: Callable[[jax.Array], jax.Array] = lambda x: x  # what the output must match
    output_activation: bool = True  # apply f to `logits`
    signed_inputs: bool = False  # present features are Uniform[-1, 1], not [0, 1]
    untied: bool = False  # a second matrix W2 (n, m) maps the hidden space back
    privileged_hidden: bool = False  # a ReLU on the hidden layer: neurons are a basis


MODELS: dict[str, Kind] = {}


def register(kind: Kind) -> Kind:
    """Add a model kind; its name becomes a value of the sweep key model.kind."""
    if kind.name in MODELS:
        raise ValueError(f"model kind {kind.name!r} is already registered")
    MODELS[kind.name] = kind
    return kind


register(
    Kind(
        "relu_output",
        lambda p, x: p.W.T @ (p.W @ x) + p.b[:, None],
        "x_hat = ReLU(W^T W x + b), the paper's main model",
    )
)
register(
    Kind(
        "linear",
        lambda p, x: p.W.T @ (p.W @ x) + p.b[:, None],
        "x_hat = W^T W x + b, the linear baseline",
        output_activation=False,
    )
)
register(
    Kind(
        "relu_hidden",
        lambda p, x: p.W.T @ jax.nn.relu(p.W @ x) + p.b[:, None],
        "x_hat = ReLU(W^T ReLU(W x) + b), a privileged hidden basis",
        privileged_hidden=True,
    )
)
register(
    Kind(
        "abs",
        lambda p, x: p.W2 @ jax.nn.relu(p.W @ x) + p.b[:, None],
        "y_hat = ReLU(W2 ReLU(W x) + b) computing |x|, untied",
        target=jnp.abs,
        signed_inputs=True,
        untied=True,
        privileged_hidden=True,
    )
)


def model_kind(kind: str) -> Kind:
    """The registry entry of a kind name (ValueError naming the known kinds)."""
    try:
        return MODELS[kind]
    except KeyError:
        raise ValueError(f"unknown model kind {kind!r}; expected one of {tuple(MODELS)}") from None


def init_params(key: jax.Array, kind: str, n_features: int, n_hidden: int) -> Params:
    """Xavier-normal weights, std sqrt(2 / (n + m)), one model at a time; zero bias.

    The notebook calls torch's xavier_normal_ on the stacked (K, n, m) tensor, whose std
    depends on the number of instances K (docs/paper.md, training recipe): an artefact of
    batching that would break the rule that an instance does not depend on its batch. Here
    every model gets the Xavier std of its own (m, n) matrix.
    """
    n, m = n_features, n_hidden
    std = (2.0 / (n + m)) ** 0.5
    k_w, k_w2 = jax.random.split(key)
    W = std * jax.random.normal(k_w, (m, n), jnp.float32)
    W2 = std * jax.random.normal(k_w2, (n, m), jnp.float32) if model_kind(kind).untied else None
    return Params(W=W, b=jnp.zeros((n,), jnp.float32), W2=W2)


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
