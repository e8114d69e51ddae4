"""The sweep-file schema: every key, its check and default, the enumerations, the static shape.

One field list (`FIELDS`) says, for every TOML key, how it is checked, its default, whether it
may be a grid axis and what it means; `STATIC_KEYS` says which keys fix the compiled program
(the rest are per-instance array leaves). `Shape` is the static configuration of one compiled
program, shared by the sweep planner and the training engine. The enumerations (model kinds
and their flags, activations, samplers, structures, magnitudes, optimizers, schedules) come
from the JAX-free geomtoy.registry, against which the math in geomtoy.engine.models, data and optim
is checked. No JAX, no I/O. Users: docs/sweep-file.md.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from typing import Any

from geomtoy.checks import (
    UINT32_MAX,
    Bad,
    block_size,
    boolean,
    choice,
    dir_name,
    feature_probability,
    importance,
    integer,
    is_int,
    number,
    probability,
    text,
)
from geomtoy.errors import SweepError as SweepError  # the bad-input error, re-exported
from geomtoy.registry import (
    ACTIVATIONS,
    DECAY_RULES,
    INITS_B,
    INITS_W,
    MAGNITUDES,
    MODEL_KINDS,
    OPTIMIZERS,
    REPRESENTATIONS,
    SAMPLERS,
    SCHEDULES,
    STRUCTURES,
    ModelKind,
)

KINDS = tuple(MODEL_KINDS)
SCALES = ("smoke", "default", "paper")
SECTIONS = ("model", "data", "train")

EVAL_BATCH = 8192
"""Largest evaluation batch (samples): bounds the evaluation's temporaries."""

AUTO_BLOCK_BYTES = 2**30
"""Memory budget of one block's per-step temporaries when train.block_size = "auto"."""

SNAPSHOT_BYTES = 2**31
"""Largest total size of the weight snapshots of one sweep (train.snapshots = true)."""

SMOKE_LIMITS = {
    "train.steps": 100,
    "train.chunk_steps": 50,
    "train.batch_size": 256,
    "train.eval_samples": 8192,
    "train.seeds": 2,
}
"""The generic smoke shrink: upper bounds on these keys (axes are also thinned to 3)."""


REQUIRED = object()


def unit_interval(v):
    v = number(0.0)(v)
    if v > 1.0:
        raise Bad(f"must be in [0, 1], got {v:g}")
    return v


unit_interval.type = "number in [0, 1]"


@dataclasses.dataclass(frozen=True)
class Field:
    """One sweep key: its check, its default, and whether it may be a grid axis."""

    check: Callable[[Any], Any]
    default: Any
    axis: bool
    doc: str


FIELDS: dict[str, Field] = {
    "name": Field(dir_name, REQUIRED, False, "the sweep's name; results/<name> by default"),
    "description": Field(text, "", False, "free text"),
    "root_seed": Field(integer(0, UINT32_MAX, "uint32"), 0, False, "root of every random key"),
    "model.kind": Field(
        choice(KINDS),
        "relu_output",
        True,
        "model kind (geomtoy.engine.models.MODELS): "
        + "; ".join(f"{k.name}: {k.doc}" for k in MODEL_KINDS.values()),
    ),
    "model.n_features": Field(integer(1), REQUIRED, True, "n, number of features"),
    "model.n_hidden": Field(integer(1), REQUIRED, True, "m, hidden dimensions"),
    "model.activation": Field(
        choice(ACTIVATIONS),
        "relu",
        True,
        "output nonlinearity of the kinds that have one: relu (the paper) or gelu (exact, "
        "x Phi(x)); linear has none",
    ),
    "model.init_W": Field(
        choice(INITS_W),
        "xavier_normal",
        True,
        "initial W: xavier_normal, std sqrt(2 / (n + m)) (the paper's notebook), or normal_m, "
        "N(0, 1/m) (Liu, Liu and Gore 2025)",
    ),
    "model.init_b": Field(
        choice(INITS_B), "zeros", True, "initial b: zeros, or normal, N(0, 1) (Liu et al.)"
    ),
    "data.feature_probability": Field(
        feature_probability,
        REQUIRED,
        True,
        "1 - S: one for all features, a list of n, or {power_law = {alpha = a, density = s}}: "
        "p_i = q_i (1 + s (1/q_1 - 1)), q_i = i^-(1+a) / sum_j j^-(1+a) (Liu et al.: one "
        "feature present per sample on average at s = 0, feature 1 always at s = 1)",
    ),
    "data.importance": Field(importance, 1.0, True, "per-feature loss weight"),
    "data.structure": Field(
        choice(STRUCTURES),
        "independent",
        True,
        "feature sets: independent features, or "
        "consecutive sets of data.set_size that switch on together (correlated), one at a "
        "time (anticorrelated), or a parent and its mutually exclusive children, which fire "
        "only with it (hierarchical; a child's probability is given its parent)",
    ),
    "data.set_size": Field(
        integer(1), 1, True, "features per correlated/anticorrelated/hierarchical set"
    ),
    "data.magnitude": Field(
        choice(MAGNITUDES),
        "uniform",
        True,
        "value of a present feature: uniform on [0, 1) (the paper), half_normal, |N(0, 1)| "
        "(signed inputs of abs: uniform on [-1, 1), or N(0, 1)), or uniform_2 on [0, 2) "
        "(Liu et al.)",
    ),
    "data.varied_feature": Field(integer(), -1, True, "index of the varied feature"),
    "data.varied_importance": Field(number(0.0), None, True, "its importance"),
    "data.varied_feature_probability": Field(probability, None, True, "its probability"),
    "data.n_samples": Field(
        integer(0),
        0,
        True,
        "T: a finite training set of T unit-norm samples drawn once per instance, every step "
        "on all of it (full batch, train.batch_size unused; geomtoy.engine.fullbatch); 0: fresh "
        "samples every step",
    ),
    "data.representation": Field(
        choice(REPRESENTATIONS),
        "auto",
        True,
        "how a finite training set is held: sparse (index/value slots), dense (n x T), or "
        "auto (dense when n x T float32 fits in 4 MiB)",
    ),
    "train.steps": Field(integer(1), 10_000, True, "optimizer steps"),
    "train.batch_size": Field(integer(1), 1024, True, "fresh samples per step"),
    "train.lr": Field(number(0.0, strict=True), 1e-3, True, "learning rate (of W, W2)"),
    "train.lr_b": Field(number(0.0, strict=True), None, True, "learning rate of b; none: lr"),
    "train.optimizer": Field(choice(OPTIMIZERS), "adamw", True, "optimizer"),
    "train.weight_decay": Field(
        number(),
        0.01,
        True,
        "weight decay of W (and W2); negative grows the weights (see train.decay_rule)",
    ),
    "train.weight_decay_b": Field(number(), None, True, "weight decay of b; none: weight_decay"),
    "train.decay_rule": Field(
        choice(DECAY_RULES),
        "decoupled",
        True,
        "decoupled: AdamW's p <- p - lr wd p for any sign of wd (negative: exponential growth); "
        "unit_norm (Liu et al.): the same for wd >= 0, and for wd < 0 each feature's vector "
        "w_i <- w_i + lr wd (1 - 1/(|w_i| + 1e-8)) w_i, pulled towards norm 1",
    ),
    "train.schedule": Field(choice(SCHEDULES), "constant", True, "learning-rate schedule"),
    "train.min_lr_ratio": Field(
        unit_interval,
        0.0,
        True,
        "linear, cosine and warmup_cosine decay to this fraction of lr (Liu et al.: 0.05)",
    ),
    "train.warmup_steps": Field(
        integer(0),
        0,
        True,
        "warmup_cosine: linear warm-up steps from 0 to lr, then cosine to min_lr_ratio x lr",
    ),
    "train.seeds": Field(integer(1), 1, False, "instances per grid point"),
    "train.eval_samples": Field(integer(1), 2**17, True, "samples of the final loss"),
    "train.sampler": Field(choice(SAMPLERS), "hash", True, "uniform sampler (geomtoy.engine.data)"),
    "train.chunk_steps": Field(integer(1), 500, False, "steps per compiled chunk"),
    "train.checkpoint_every": Field(integer(1), 4, False, "chunks between checkpoints"),
    "train.block_size": Field(block_size, "auto", False, "instances trained at once"),
    "train.snapshots": Field(boolean, False, False, "record W, b at the end of every chunk"),
}
TOP_LEVEL = ("name", "description", "root_seed")
HASH_EXCLUDED = ("description",)
OMITTED_AT_DEFAULT = (
    "train.snapshots",
    "data.structure",
    "data.set_size",
    "model.activation",
    "data.magnitude",
    "data.n_samples",
    "data.representation",
    "train.warmup_steps",
    "model.init_W",
    "model.init_b",
    "train.lr_b",
    "train.weight_decay_b",
    "train.decay_rule",
    "train.min_lr_ratio",
)
"""Keys added after results format 1: in the resolved spec only when not at their
default, so the fingerprints of sweeps that do not use them do not change."""


class ShapeError(ValueError):
    """Values that are each valid but cannot be trained together (`Shape.problem`)."""

    def __init__(self, key: str, reason: str):
        super().__init__(f"{key}: {reason}")
        self.key, self.reason = key, reason


def check_shape(shape, choices: dict[str, tuple], positive: tuple[str, ...]) -> None:
    """The one validator of every family's static shape: each field in `choices` one of
    its options, each in `positive` a positive integer (ValueError otherwise)."""
    for name, options in choices.items():
        if getattr(shape, name) not in options:
            raise ValueError(f"{name} {getattr(shape, name)!r} is not one of {options}")
    for name in positive:
        value = getattr(shape, name)
        if not is_int(value) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")


def _static(key: str):
    """A Shape field for the sweep key `key`: its default from `FIELDS`, the key in its
    metadata (`STATIC_KEYS`)."""
    default = FIELDS[key].default
    if default is REQUIRED:
        return dataclasses.field(metadata={"key": key})
    return dataclasses.field(default=default, metadata={"key": key})


@dataclasses.dataclass(frozen=True, kw_only=True)
class Shape:
    """Static configuration: everything that fixes an array shape or the compiled program.

    Two instances share one compiled program only if their Shapes are equal; a sweep has
    one group per distinct Shape (the `STATIC_KEYS`). Hashable, so a jit static argument.
    """

    kind: str = _static("model.kind")
    n_features: int = _static("model.n_features")
    n_hidden: int = _static("model.n_hidden")
    batch_size: int = _static("train.batch_size")
    steps: int = _static("train.steps")
    optimizer: str = _static("train.optimizer")
    schedule: str = _static("train.schedule")
    eval_samples: int = _static("train.eval_samples")
    sampler: str = _static("train.sampler")
    structure: str = _static("data.structure")  # independent | (anti)correlated | hierarchical
    set_size: int = _static("data.set_size")  # consecutive features per set (not independent)
    activation: str = _static("model.activation")  # output nonlinearity (models.ACTIVATIONS)
    magnitude: str = _static("data.magnitude")  # value of a present feature (data.MAGNITUDES)
    n_samples: int = _static("data.n_samples")  # T > 0: a finite set, full batch (fullbatch)
    representation: str = _static("data.representation")  # finite set: auto | dense | sparse
    warmup_steps: int = _static("train.warmup_steps")  # warmup_cosine: linear warm-up steps

    def __post_init__(self):
        check_shape(
            self,
            {
                "kind": KINDS,
                "optimizer": OPTIMIZERS,
                "structure": STRUCTURES,
                "activation": ACTIVATIONS,
                "magnitude": MAGNITUDES,
                "sampler": SAMPLERS,
                "schedule": SCHEDULES,
                "representation": REPRESENTATIONS,
            },
            ("n_features", "n_hidden", "batch_size", "steps", "eval_samples", "set_size"),
        )
        if problem := self.problem():
            raise ShapeError(*problem)

    def problem(self) -> tuple[str, str] | None:
        """(sweep key, reason) why these valid values cannot be trained together, or None:
        one rule for the sweep planner (a SweepError naming the key) and the engine."""
        if self.structure != "independent" and self.n_features % self.set_size:
            reason = f"{self.set_size} does not divide model.n_features = {self.n_features}"
            return "data.set_size", reason
        if problem := self._finite_problem():
            return "data.n_samples", problem
        return None

    def _finite_problem(self) -> str | None:
        if self.n_samples < 0 or self.warmup_steps < 0:
            return "data.n_samples and train.warmup_steps must be >= 0"
        if self.warmup_steps >= self.steps and self.schedule == "warmup_cosine":
            return f"train.warmup_steps {self.warmup_steps} must be < train.steps {self.steps}"
        finite_recipe = ("relu_output", "independent", "relu", "uniform")
        if self.n_samples and (
            (self.kind, self.structure, self.activation, self.magnitude) != finite_recipe
        ):
            return (
                "finite training sets (data.n_samples > 0) train the relu_output model "
                "(relu activation) on independent, uniform-magnitude features"
            )
        return None

    @property
    def model(self) -> ModelKind:
        """The registry entry of this shape's model kind (its flags; the math is
        geomtoy.engine.models.MODELS[kind])."""
        return MODEL_KINDS[self.kind]

    @property
    def weight_rows(self) -> int:
        """Rows of the weights per feature column: m, or 2m with the untied W2 (abs)."""
        return self.n_hidden * (2 if self.model.untied else 1)

    @property
    def eval_batch(self) -> int:
        """Samples per evaluation batch: bounded so evaluation memory stays small."""
        return min(self.eval_samples, EVAL_BATCH)

    @property
    def eval_batches(self) -> int:
        return math.ceil(self.eval_samples / self.eval_batch)


STATIC_KEYS = tuple(f.metadata["key"] for f in dataclasses.fields(Shape))
"""Keys that fix a shape or the compiled program (the fields of `Shape`): one group per
distinct combination; the other keys are per-instance array leaves."""


def chunk_schedule(steps: int, chunk_steps: int) -> list[int]:
    """Steps per compiled chunk: full chunks, then the remainder (at most two programs)."""
    c = min(chunk_steps, steps)
    full, rest = divmod(steps, c)
    return [c] * full + ([rest] if rest else [])
