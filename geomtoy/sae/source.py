"""What an SAE reads: the hidden activations of a toy model, or of a synthetic dictionary.

Sources: the tied toy model kinds without a privileged hidden basis (`is_source`, read
from the model-kind registry: relu_output and linear), whose hidden vector is h = W x
(W of shape (m, n), columns are the features), and `synthetic`, a dictionary of n random
unit directions in m dimensions (`synthetic_dictionary`) under the same sparse feature
distribution, with no readout (its downstream loss is NaN). Kinds with a privileged
hidden basis (relu_hidden, abs) are not sources: their hidden vector ReLU(W x) does not
hold the features as directions.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from geomtoy.engine import models
from geomtoy.engine.models import Params
from geomtoy.sae.model import unit_columns

SYNTHETIC = "synthetic"


def is_source(kind: str) -> bool:
    """Whether an SAE can read this toy model kind (or the synthetic dictionary)."""
    if kind == SYNTHETIC:
        return True
    k = models.MODELS.get(kind)
    return k is not None and not (k.privileged_hidden or k.untied)


SOURCES = (*(k for k in models.MODELS if is_source(k)), SYNTHETIC)


def synthetic_dictionary(seed: int, n_hidden: int, n_features: int) -> np.ndarray:
    """n random unit directions in m dimensions (m, n), a pure function of the seed."""
    D = jax.random.normal(jax.random.key(seed), (n_hidden, n_features), jnp.float32)
    return np.asarray(unit_columns(D))


def hidden(toy: Params, x: jax.Array) -> jax.Array:
    """The toy model's hidden activations h = W x (m, B) of a feature-major batch x."""
    return toy.W @ x


def readout(source: str, toy: Params, h: jax.Array, activation: str = "relu") -> jax.Array:
    """The toy model's output from a hidden vector h: f(W^T h + b), f its output
    nonlinearity (models.ACTIVATIONS) if its kind has one."""
    z = toy.W.T @ h + toy.b[:, None]
    return models.ACTIVATIONS[activation](z) if models.MODELS[source].output_activation else z
