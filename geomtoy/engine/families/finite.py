"""The finite-data family: each instance draws its training set once and every step sees
all of it (full batch; math in geomtoy.engine.fullbatch and geomtoy.engine.finite). A sweep
group is this family's when data.n_samples > 0; its tables are the toy tables plus
samples.parquet (geomtoy.engine.families.toy.assemble)."""

from __future__ import annotations

import dataclasses

import jax
import numpy as np

from geomtoy.engine import finite, fullbatch
from geomtoy.engine.families import Family, is_diverged, register, toy, weights
from geomtoy.geometry.samples import block_arrays
from geomtoy.spec import Shape


def finish(shape, state, hp, evaluation, curves) -> dict[str, np.ndarray]:
    """A finite block's arrays: the test loss, the exact full-batch training loss, the
    weights and the measurements of the training set (geometry.samples.block_arrays)."""
    measures = {name: np.asarray(value) for name, value in evaluation.items()}
    params = jax.device_get(state.params)
    diverged = is_diverged(measures["test_loss"], params)
    loss = np.where(diverged, np.nan, measures["test_loss"])
    out = {"loss": loss, "diverged": diverged, "train_loss": measures["train_loss"]}
    return out | weights(params) | block_arrays(measures, len(loss))


def step_bytes(shape, batch: int | None = None) -> int:
    """fullbatch.step_bytes; a plan's Shape (slots not yet known) with the most slots a
    sample can need (all n features present), so the bound holds for any block."""
    if not isinstance(shape, fullbatch.FiniteShape):
        most = min(finite.MAX_SLOTS, shape.n_features)
        shape = dataclasses.replace(fullbatch.finite_shape(shape, None), slots=most)
    return fullbatch.step_bytes(shape, batch)


def state_bytes(shape) -> int:
    """Weights, two Adam moments and the step counter of one instance."""
    return 4 * (3 * (shape.n_hidden + 1) * shape.n_features + 1)


FAMILY = register(
    Family(
        name="finite",
        shape_type=(Shape, fullbatch.FiniteShape),
        hparams_type=fullbatch.HParams,
        init_one=fullbatch.init_one,
        step_one=None,
        chunk_one=fullbatch.chunk_one,
        evaluate_one=fullbatch.evaluate_one,
        step_bytes=step_bytes,
        state_bytes=state_bytes,
        hparams=toy.hparams,
        finish=finish,
        assemble=toy.assemble,
        label=toy.label,
        accepts=lambda shape: isinstance(shape, fullbatch.FiniteShape) or shape.n_samples > 0,
        resolve=fullbatch.finite_shape,
        load=toy.load,
        cpu_block_bytes=1 << 22,
        min_block=1,
        eval_cpu_block=1,
    )
)
