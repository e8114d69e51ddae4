"""The toy models of Elhage et al. 2022 (paper §3.1), written for one instance.

Notation of the paper: W has shape (m, n) and its column W[:, i] is the direction of
feature i in the m-dimensional hidden space; b is the output bias (n,). A batch is held
feature-major, x of shape (n, B) with one sample per column, so that `W @ x` is the
paper's h = W x for all samples at once and XLA vectorises over the batch (docs/design.md,
performance principles). The instance axis is added by `jax.vmap` in train.py.

Kinds:
  relu_output  x_hat = ReLU(W^T W x + b)           the paper's main model
  linear       x_hat = W^T W x + b                 the linear baseline (§3.2)
  relu_hidden  x_hat = ReLU(W^T ReLU(W x) + b)     privileged basis, tied, no hidden bias (§8)
  abs          y_hat = ReLU(W2 ReLU(W x) + b)      computation in superposition, untied (§9);
                                                   W plays W1, W2 has shape (n, m), target |x|
"""

import dataclasses

import jax
import jax.numpy as jnp

from geomtoy.spec import KINDS


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class Params:
    """Weights of one model (or, stacked, of many: a leading instance axis on each leaf)."""

    W: jax.Array  # (m, n): columns are feature directions
    b: jax.Array  # (n,): output bias
    W2: jax.Array | None = None  # (n, m): untied output weights, abs model only

    def replace(self, **changes) -> "Params":
        return dataclasses.replace(self, **changes)


def init_params(key: jax.Array, kind: str, n_features: int, n_hidden: int) -> Params:
    """Xavier-normal weights, std sqrt(2 / (n + m)), one model at a time; zero bias.

    The notebook calls torch's xavier_normal_ on the stacked (K, n, m) tensor, whose std
    depends on the number of instances K (docs/paper.md, training recipe): an artefact of batching that
    would break the rule that an instance does not depend on its batch. Here every model
    gets the Xavier std of its own (m, n) matrix.
    """
    n, m = n_features, n_hidden
    std = (2.0 / (n + m)) ** 0.5
    k_w, k_w2 = jax.random.split(key)
    W = std * jax.random.normal(k_w, (m, n), jnp.float32)
    W2 = std * jax.random.normal(k_w2, (n, m), jnp.float32) if kind == "abs" else None
    return Params(W=W, b=jnp.zeros((n,), jnp.float32), W2=W2)


def forward(kind: str, params: Params, x: jax.Array) -> jax.Array:
    """The model's output for a feature-major batch x (n, B)."""
    W, b = params.W, params.b[:, None]
    if kind == "relu_output":
        return jax.nn.relu(W.T @ (W @ x) + b)
    if kind == "linear":
        return W.T @ (W @ x) + b
    if kind == "relu_hidden":
        return jax.nn.relu(W.T @ jax.nn.relu(W @ x) + b)
    if kind == "abs":
        return jax.nn.relu(params.W2 @ jax.nn.relu(W @ x) + b)
    raise ValueError(f"unknown model kind {kind!r}; expected one of {KINDS}")


def target(kind: str, x: jax.Array) -> jax.Array:
    """What the model must reproduce: x itself, or |x| for the abs model."""
    return jnp.abs(x) if kind == "abs" else x


def loss(kind: str, params: Params, x: jax.Array, importance: jax.Array) -> jax.Array:
    """Importance-weighted MSE, mean over batch and features (the notebook's reduction).

    importance has shape (n,). Summing this over instances gives the notebook's loss; each
    instance's gradient is that of its own mean.
    """
    error = importance[:, None] * (target(kind, x) - forward(kind, params, x)) ** 2
    return jnp.mean(error)
