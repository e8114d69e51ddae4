"""Model families: one contract (`Family`), one registry (`FAMILIES`).

A family is a model trained thousands at once: its static shape (a frozen dataclass, a jit
static argument: one compile per value) and its swept per-instance leaves (a registered
dataclass whose every leaf has a leading instance axis) split one field list the way
rejax and evosax mark theirs; its one-instance init, step and evaluate, which
geomtoy.engine.train vmaps, scans and loops; its bytes per instance (the memory model the
dry run, the refusal bound and the CPU block rule read); and what its block files hold and
how its tables are assembled, which geomtoy.runs.runner reads. The runner, train, budget
and checkpoint iterate over families instead of switching on them. A new family is one
module that calls `register` (toy.py, finite.py here; geomtoy.sae.family).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import jax
import numpy as np

from geomtoy import registry


def _always(shape) -> bool:
    return True


def _same(shape, hp):
    return shape


@dataclasses.dataclass(frozen=True)
class Family:
    """One model family. Engine side (one instance; train adds the instance axis):

    init_one(shape, root_seed, hp) -> state (with a `step` counter)
    step_one(shape, stream, hp, state) -> (state, loss): one optimizer step on the batch
        of `stream` (data.stream of the step's key)
    chunk_one(shape, n_steps, root_seed, hp, state) -> (state, mean loss): replaces the
        stream scan for a family whose steps read something fixed (a finite dataset)
    chunk_block(shape, n_steps, root_seed, hp, state) -> (state, mean loss (I,)): the
        same for a whole block of instances (a leading instance axis; it vmaps itself),
        used where shares_batches(shape): instances that read one batch per step (SAEs
        of one source) draw it once per block
    evaluate_one(shape, root_seed, params, hp) -> loss or {name: value}

    Memory (one model per family, read by the dry run, the refusal bound, the accelerator
    block fit and, through step_bytes, the CPU block rule; XLA's memory analysis of the
    compiled programs overrides it on accelerators, geomtoy.runs.budget):
    state_bytes(shape) -> one instance's weights, optimizer state and leaves
    temp_bytes(shape, batch) -> device bytes of one instance's temporaries in a training
        step (batch None) or an evaluation batch of `batch` samples (None: step_bytes)
    step_bytes(shape, batch) -> the CPU block rule's bytes of one instance's temporaries
        (its cache budget; kept as the blocks were chosen, since blocks are compiled in)
    resolve(shape, hp) -> the engine's shape for a block (hp None: for its init)

    Run side (geomtoy.runs.runner):
    hparams(sweep, group, rows, mesh) -> the block's leaves, placed on `mesh`
    evaluate(state, hp, shape, root_seed) -> the block's evaluation, dispatched behind
        its last chunk (None: train.evaluate's program over evaluate_one)
    finish(shape, state, hp, evaluation, curves) -> {name: (I, ...)} for its block file:
        loss, diverged, train_loss, the weights and the family's arrays (`block_keys`)
    assemble(sweep, rd) -> writes the tables from the block files
    label(shape) -> str; meta(sweep) -> dict added to meta.json; load(meta, path) -> the
    sweep meta.json records; plan_lines(sweep, ...) -> what --dry-run prints (None: the
    toy report of geomtoy.runs.budget)
    """

    name: str
    shape_type: type
    hparams_type: type
    init_one: Callable
    step_one: Callable | None
    evaluate_one: Callable | None
    step_bytes: Callable
    state_bytes: Callable
    hparams: Callable
    finish: Callable
    assemble: Callable
    label: Callable
    block_keys: tuple[str, ...] = ("W", "b")
    chunk_one: Callable | None = None
    chunk_block: Callable | None = None
    shares_batches: Callable = lambda shape: False
    evaluate: Callable | None = None
    accepts: Callable = _always
    resolve: Callable = _same
    meta: Callable = lambda sweep: {}
    load: Callable | None = None  # (meta, path) -> sweep: `geomtoy merge` rebuilds it
    plan_lines: Callable | None = None  # (sweep, platform, devices, memory): --dry-run
    temp_bytes: Callable | None = None
    cpu_block_bytes: int = 1 << 20  # CPU: instances step in blocks of about this many bytes
    min_block: int = 2
    eval_cpu_block: int | None = None  # CPU: a fixed evaluation block (None: by bytes)


FAMILIES: dict[str, Family] = {}
"""The model families by name (registry.MODEL_FAMILIES), in registration order."""


def register(family: Family) -> Family:
    """Add `family` (its name one of registry.MODEL_FAMILIES, registered once)."""
    if family.name not in registry.MODEL_FAMILIES:
        raise ValueError(f"model family {family.name!r} is not in registry.MODEL_FAMILIES")
    if family.name in FAMILIES:
        raise ValueError(f"the model family {family.name!r} is already registered")
    FAMILIES[family.name] = family
    return family


def family_of(shape) -> Family:
    """The family that trains `shape` (its type, then the family's `accepts`)."""
    for family in FAMILIES.values():
        if isinstance(shape, family.shape_type) and family.accepts(shape):
            return family
    raise TypeError(f"no model family trains a {type(shape).__name__}")


def of_sweep(sweep) -> Family:
    """The family whose runner hooks a sweep uses: its first group's (a toy sweep's
    finite groups share the toy tables)."""
    return family_of(sweep.groups[0].shape)


def by_name(name: str) -> Family:
    try:
        return FAMILIES[name]
    except KeyError:
        raise ValueError(f"no model family {name!r}") from None


def weights(params) -> dict[str, np.ndarray]:
    """The weights a block file holds: every field of a params dataclass that is set."""
    fields = {name: getattr(params, name) for name in type(params).__dataclass_fields__}
    return {name: np.asarray(a) for name, a in fields.items() if a is not None}


def is_diverged(loss, params) -> np.ndarray:
    """Instances whose loss or weights hold a NaN or inf."""
    bad = ~np.isfinite(np.asarray(loss))
    for leaf in jax.tree.leaves(params):
        a = np.asarray(leaf)
        bad |= ~np.isfinite(a.reshape(a.shape[0], -1)).all(axis=1)
    return bad


def temp_bytes(shape, batch: int | None = None) -> int:
    """Device bytes of one instance's temporaries (its family's `temp_bytes`)."""
    family = family_of(shape)
    return (family.temp_bytes or family.step_bytes)(shape, batch)


def state_bytes(shape) -> int:
    """Bytes of one instance's weights, optimizer state and leaves (its family's)."""
    return family_of(shape).state_bytes(shape)
