"""The sweep-file schema: every key, its check and default, the enumerations, the static shape.

One field list (`FIELDS`) says, for every TOML key, how it is checked, its default, whether it
may be a grid axis and what it means; `STATIC_KEYS` says which keys fix the compiled program
(the rest are per-instance array leaves). `Shape` is the static configuration of one compiled
program, shared by the sweep planner and the training engine. The enumerations (model kinds
and their flags, activations, samplers, structures, magnitudes, optimizers, schedules) come
from the JAX-free geomtoy.registry, against which the math in geomtoy.models, data and optim
is checked. No JAX, no I/O. Users: docs/sweep-file.md.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import re
from collections.abc import Callable, Sequence
from typing import Any

from geomtoy.errors import SweepError as SweepError  # the bad-input error, re-exported
from geomtoy.registry import (
    ACTIVATIONS,
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


class Bad(Exception):
    """A value failed validation; the caller adds the file and the key."""


# ---------------------------------------------------------------- value checks


def is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def is_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


INT32_MAX = 2**31 - 1
"""Counts (steps, samples, instances, sizes) are int32 on the device."""
UINT32_MAX = 2**32 - 1
"""The root seed is a uint32 key."""
FLOAT32_MAX = 3.4028234663852886e38  # np.finfo(np.float32).max
"""Hyperparameters are float32 on the device: larger values would be inf."""


def _int(lo: int | None = None, hi: int = INT32_MAX, what: str = "int32") -> Callable:
    def check(v):
        if not is_int(v):
            raise Bad(f"expected an integer, got {show(v)}")
        if lo is not None and v < lo:
            raise Bad(f"must be >= {lo}, got {v}")
        if v > hi or v < -hi - 1:
            raise Bad(f"{v} does not fit in {what} (at most {hi})")
        return v

    check.integer = True
    check.type = "integer" + (f" >= {lo}" if lo is not None else "")
    return check


def _float(lo: float | None = None, strict: bool = False) -> Callable:
    def check(v):
        if not is_number(v):
            raise Bad(f"expected a number, got {show(v)}")
        v = float(v)
        if not math.isfinite(v):
            raise Bad(f"must be finite, got {v}")
        if abs(v) > FLOAT32_MAX:
            raise Bad(f"{v:g} overflows float32 (at most {FLOAT32_MAX:.3g})")
        if lo is not None and (v <= lo if strict else v < lo):
            raise Bad(f"must be {'>' if strict else '>='} {lo:g}, got {v:g}")
        return v

    check.type = "number" + (f" {'>' if strict else '>='} {lo:g}" if lo is not None else "")
    return check


def _probability(v):
    if not is_number(v):
        raise Bad(f"expected a probability, got {show(v)}")
    v = float(v)
    if not (0.0 < v <= 1.0):
        raise Bad(f"probability {v:g} outside (0, 1]")
    return v


_probability.type = "probability in (0, 1]"


def _choice(options: Sequence[str]) -> Callable:
    def check(v):
        if not isinstance(v, str):
            raise Bad(f"expected one of {', '.join(options)}; got {show(v)}")
        if v not in options:
            hint = difflib.get_close_matches(v, options, n=1)
            more = f" (did you mean {hint[0]!r}?)" if hint else ""
            raise Bad(f"unknown value {v!r}; expected one of {', '.join(options)}{more}")
        return v

    check.type = " | ".join(options)
    return check


def _per_feature(element: Callable, what: str) -> Callable:
    """A number, or a list of numbers (one per feature; the length is checked later)."""

    def check(v):
        if isinstance(v, list):
            if not v:
                raise Bad(f"expected a {what} or a list of n of them, got []")
            out = []
            for i, x in enumerate(v):
                try:
                    out.append(element(x))
                except Bad as e:
                    raise Bad(f"entry {i}: {e}") from None
            return out
        return element(v)

    check.type = f"{element.type}, or a list of n"
    return check


def _importance(v):
    if isinstance(v, dict):
        if set(v) != {"decay"}:
            raise Bad(f"a table here must be {{decay = d}} (importance d**i), got {show(v)}")
        try:
            return {"decay": _float(0.0, strict=True)(v["decay"])}
        except Bad as e:
            raise Bad(f"decay: {e}") from None
    return _per_feature(_float(0.0), "importance >= 0")(v)


_importance.type = "number >= 0, a list of n, or {decay = d} (d**i)"


def _name(v):
    if not isinstance(v, str) or not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.+-]*", v):
        raise Bad(f"expected a directory name (letters, digits, _.+-), got {show(v)}")
    return v


_name.type = "name (letters, digits, _.+-)"


def _text(v):
    if not isinstance(v, str):
        raise Bad(f"expected a string, got {show(v)}")
    return v


_text.type = "string"


def _bool(v):
    if not isinstance(v, bool):
        raise Bad(f"expected true or false, got {show(v)}")
    return v


_bool.type = "boolean"


def _block_size(v):
    if v == "auto":
        return v
    if not is_int(v) or not 1 <= v <= INT32_MAX:
        raise Bad(f'expected an integer in 1..{INT32_MAX} or "auto", got {show(v)}')
    return v


_block_size.type = 'integer >= 1, or "auto"'


def show(v) -> str:
    if isinstance(v, bool):
        return f"boolean {str(v).lower()}"
    if isinstance(v, str):
        return f"string {v!r}"
    if isinstance(v, dict):
        return "table {" + ", ".join(f"{k} = {show(x)}" for k, x in v.items()) + "}"
    return repr(v)


@dataclasses.dataclass(frozen=True)
class Field:
    """One sweep key: its check, its default, and whether it may be a grid axis."""

    check: Callable[[Any], Any]
    default: Any
    axis: bool
    doc: str


FIELDS: dict[str, Field] = {
    "name": Field(_name, REQUIRED, False, "the sweep's name; results/<name> by default"),
    "description": Field(_text, "", False, "free text"),
    "root_seed": Field(_int(0, UINT32_MAX, "uint32"), 0, False, "root of every random key"),
    "model.kind": Field(
        _choice(KINDS),
        "relu_output",
        True,
        "model kind (geomtoy.models.MODELS): "
        + "; ".join(f"{k.name}: {k.doc}" for k in MODEL_KINDS.values()),
    ),
    "model.n_features": Field(_int(1), REQUIRED, True, "n, number of features"),
    "model.n_hidden": Field(_int(1), REQUIRED, True, "m, hidden dimensions"),
    "model.activation": Field(
        _choice(ACTIVATIONS),
        "relu",
        True,
        "output nonlinearity of the kinds that have one: relu (the paper) or gelu (exact, "
        "x Phi(x)); linear has none",
    ),
    "data.feature_probability": Field(
        _per_feature(_probability, "probability in (0, 1]"), REQUIRED, True, "1 - S"
    ),
    "data.importance": Field(_importance, 1.0, True, "per-feature loss weight"),
    "data.structure": Field(
        _choice(STRUCTURES),
        "independent",
        True,
        "feature sets: independent features, or "
        "consecutive sets of data.set_size that switch on together (correlated), one at a "
        "time (anticorrelated), or a parent and its mutually exclusive children, which fire "
        "only with it (hierarchical; a child's probability is given its parent)",
    ),
    "data.set_size": Field(
        _int(1), 1, True, "features per correlated/anticorrelated/hierarchical set"
    ),
    "data.magnitude": Field(
        _choice(MAGNITUDES),
        "uniform",
        True,
        "value of a present feature: uniform on [0, 1) (the paper), or half_normal, |N(0, 1)| "
        "(signed inputs of abs: uniform on [-1, 1), or N(0, 1))",
    ),
    "data.varied_feature": Field(_int(), -1, True, "index of the varied feature"),
    "data.varied_importance": Field(_float(0.0), None, True, "its importance"),
    "data.varied_feature_probability": Field(_probability, None, True, "its probability"),
    "data.n_samples": Field(
        _int(0),
        0,
        True,
        "T: a finite training set of T unit-norm samples drawn once per instance, every step "
        "on all of it (full batch, train.batch_size unused; geomtoy.fullbatch); 0: fresh "
        "samples every step",
    ),
    "data.representation": Field(
        _choice(REPRESENTATIONS),
        "auto",
        True,
        "how a finite training set is held: sparse (index/value slots), dense (n x T), or "
        "auto (dense when n x T float32 fits in 4 MiB)",
    ),
    "train.steps": Field(_int(1), 10_000, True, "optimizer steps"),
    "train.batch_size": Field(_int(1), 1024, True, "fresh samples per step"),
    "train.lr": Field(_float(0.0, strict=True), 1e-3, True, "learning rate"),
    "train.optimizer": Field(_choice(OPTIMIZERS), "adamw", True, "optimizer"),
    "train.weight_decay": Field(_float(0.0), 0.01, True, "weight decay"),
    "train.schedule": Field(_choice(SCHEDULES), "constant", True, "learning-rate schedule"),
    "train.warmup_steps": Field(
        _int(0), 0, True, "warmup_cosine: linear warm-up steps from 0 to lr, then cosine to 0"
    ),
    "train.seeds": Field(_int(1), 1, False, "instances per grid point"),
    "train.eval_samples": Field(_int(1), 2**17, True, "samples of the final loss"),
    "train.sampler": Field(_choice(SAMPLERS), "hash", True, "uniform sampler (geomtoy.data)"),
    "train.chunk_steps": Field(_int(1), 500, False, "steps per compiled chunk"),
    "train.checkpoint_every": Field(_int(1), 4, False, "chunks between checkpoints"),
    "train.block_size": Field(_block_size, "auto", False, "instances trained at once"),
    "train.snapshots": Field(_bool, False, False, "record W, b at the end of every chunk"),
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
)
"""Keys added after results format 1: in the resolved spec only when not at their
default, so the fingerprints of sweeps that do not use them do not change."""


def unknown_key(key: str, known: Sequence[str]) -> str:
    hint = difflib.get_close_matches(key, known, n=1, cutoff=0.6)
    return "unknown key" + (f" (did you mean {hint[0]!r}?)" if hint else "")


class ShapeError(ValueError):
    """Values that are each valid but cannot be trained together (`Shape.problem`)."""

    def __init__(self, key: str, reason: str):
        super().__init__(f"{key}: {reason}")
        self.key, self.reason = key, reason


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
        for name, options in (
            ("kind", KINDS),
            ("optimizer", OPTIMIZERS),
            ("structure", STRUCTURES),
            ("activation", ACTIVATIONS),
            ("magnitude", MAGNITUDES),
            ("sampler", SAMPLERS),
            ("schedule", SCHEDULES),
            ("representation", REPRESENTATIONS),
        ):
            if getattr(self, name) not in options:
                raise ValueError(f"{name} {getattr(self, name)!r} is not one of {options}")
        for name in ("n_features", "n_hidden", "batch_size", "steps", "eval_samples", "set_size"):
            value = getattr(self, name)
            if not is_int(value) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
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
        geomtoy.models.MODELS[kind])."""
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
