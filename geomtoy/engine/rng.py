"""Random keys: every key is a fold_in of its parent, never a chained split.

An instance's key is derived from (root seed, instance id, seed) and a step's key from
(instance key, step). Instance i therefore draws the same initial weights and the same
training batches whether it trains alone, in a batch of 100,000, split into other
chunks, on another device or host, or after a resume (docs/design.md, invariants).

Models that read one data source may share its stream instead (`source_key`: root seed,
source id, step), so their batches are drawn once per step.

Evaluation batches come from the root seed alone, so every instance of a run is scored
on the same samples (common random numbers): comparing the seeds of one grid point is
then not noise.
"""

import jax
import numpy as np

_TRAIN, _EVAL, _SOURCE = 0, 1, 2
_INIT, _DATA, _DATASET = 0, 1, 2


def seed_argument(root_seed) -> np.uint32:
    """The root seed as the compiled programs take it: a NumPy uint32 scalar (converting
    it with jnp would compile a program of its own in every run)."""
    return np.uint32(root_seed)


def root_key(root_seed) -> jax.Array:
    """The run's root key; root_seed may be a traced integer."""
    return jax.random.key(root_seed)


def instance_key(root_seed, instance_id, seed) -> jax.Array:
    """Key of one model instance: depends on nothing but its three arguments."""
    key = jax.random.fold_in(root_key(root_seed), _TRAIN)
    key = jax.random.fold_in(key, instance_id)
    return jax.random.fold_in(key, seed)


def source_key(root_seed, source_id) -> jax.Array:
    """Key of a data source's stream, shared by every model that reads that source (SAEs
    of one dictionary train on one stream of batches, as SynthSAEBench's do); its step
    keys come from step_key."""
    return jax.random.fold_in(jax.random.fold_in(root_key(root_seed), _SOURCE), source_id)


def init_key(key: jax.Array) -> jax.Array:
    """Key for an instance's initial weights."""
    return jax.random.fold_in(key, _INIT)


def step_key(key: jax.Array, step) -> jax.Array:
    """Key for an instance's training batch at a given step."""
    return jax.random.fold_in(jax.random.fold_in(key, _DATA), step)


def dataset_key(key: jax.Array) -> jax.Array:
    """Key for an instance's finite training set (drawn once, geomtoy.engine.finite)."""
    return jax.random.fold_in(key, _DATASET)


def eval_key(root_seed, batch) -> jax.Array:
    """Key for evaluation batch number `batch`, shared by all instances of a run."""
    key = jax.random.fold_in(root_key(root_seed), _EVAL)
    return jax.random.fold_in(key, batch)
