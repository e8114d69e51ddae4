"""Sweep files: parse and validate TOML, apply a scale and overrides, expand the grid.

A sweep file (docs/design.md, "Sweep files") declares one experiment. Every scalar has a
default (the paper notebook's recipe, docs/paper.md, training recipe) except `name`, `model.n_features`,
`model.n_hidden` and `data.feature_probability`::

    name = "pentagon"                 # results go to results/<name> by default
    description = "..."               # optional, free text (not part of the spec hash)
    root_seed = 0                     # root of every random key (geomtoy.rng)

    [model]
    kind = "relu_output"              # relu_output | linear | relu_hidden | abs
    n_features = 5                    # n
    n_hidden = 2                      # m

    [data]
    feature_probability = 0.05        # 1 - S: a number in (0, 1] or a list of n numbers
    importance = 1.0                  # number >= 0, list of n numbers, or {decay = 0.9}: 0.9**i
    varied_feature = -1               # index of "the varied feature" (negative: from the end)
    varied_importance = 2.0           # optional: importance of the varied feature only (§4)
    varied_feature_probability = 0.02 # optional: probability of the varied feature only (§5.2)
    structure = "independent"         # independent | correlated | anticorrelated (§5.2)
    set_size = 2                      # consecutive features per set (structure != independent)

    [train]
    steps = 10000
    batch_size = 1024
    lr = 1e-3
    optimizer = "adamw"               # adamw | adam | sgd
    weight_decay = 0.01
    schedule = "constant"             # constant | linear | cosine (learning-rate schedule)
    seeds = 8                         # independent instances per grid point
    eval_samples = 131072             # fresh samples for the final loss (shared by all)
    sampler = "hash"                  # hash | threefry: how uniforms are drawn (geomtoy.data)
    chunk_steps = 500                 # steps per compiled chunk = one progress line
    checkpoint_every = 4              # chunks between checkpoints of the block in training
    block_size = "auto"               # instances trained at once, or "auto" (about 1 GiB)
    snapshots = false                 # true: W and b of every instance at the end of every
                                      # chunk, in curves.npz (§6 learning dynamics)

    [grid]                            # axes; instances = product of the axes x seeds
    "data.feature_probability" = { logspace = [1.0, 0.01, 12] }  # 12 values from 1 to 0.01
    "train.lr" = { linspace = [1e-3, 1e-2, 4] }
    "model.kind" = ["linear", "relu_output"]                      # or a list of values
    "data.importance" = [{ decay = 0.7 }, { decay = 0.9 }]        # any value a key accepts

    [scale.smoke]                     # optional, per scale: keys that replace the above
    train.steps = 200
    grid."data.feature_probability" = { logspace = [1.0, 0.05, 3] }

Grid axes: any key of [model], [data] and [train] except train.seeds, chunk_steps,
checkpoint_every, block_size and snapshots; the key quoted ("data.x") or not (data.x). An axis is
a list of values, or ``{logspace = [a, b, k]}`` (k values from a to b, evenly spaced in
log; a, b > 0) or ``{linspace = [a, b, k]}``; integer keys round generated values.
Axes vary in file order, the first slowest; the seeds of one grid point are consecutive
instances. An axis on a key that fixes a shape or the program (`STATIC_KEYS`: model.kind,
n_features, n_hidden; train.steps, batch_size, optimizer, schedule, eval_samples,
sampler) splits the sweep into groups, one compiled program each; every other axis is
an array leaf of one program. An axis wins over the scalar of the same key; an override
of a key (in a scale table or by --set) removes its axis.

Snapshots (`train.snapshots = true`, paper §6): the weights of every instance are
recorded at the end of every chunk, so `train.chunk_steps` is the snapshot spacing
(chunk_steps = 50 over 10,000 steps gives 200 snapshots); curves.npz then holds
`snapshot_step` (S,), `snapshot_W` (I, S, m, n), `snapshot_b` (I, S, n) (and
`snapshot_W2` for abs models). All groups must share one chunk schedule (so S and the
steps are the same for every instance), and the snapshots of a sweep may take at most
`SNAPSHOT_BYTES` (2 GiB); otherwise the sweep is refused. The key is not a shape key: it
changes what is recorded, not what is trained. Like every key added after results
format 1 it enters the resolved spec (and the fingerprint) only when it differs from its
default, so sweeps that leave it off keep their fingerprints.

The varied feature (`data.varied_*`) is how the phase diagrams vary "the extra feature"
(§4: the last feature, the default index -1) and the non-uniform pentagon varies one
feature's density (§5.2) while the others keep `importance` and `feature_probability`.

Scales (``--scale smoke|default|paper``, default "default"): the file's own values are
the full experiment. Scale X then applies the optional table ``[scale.X]``, a partial
sweep file (any of root_seed, model, data, train, grid) whose keys replace the file's.
"smoke" (seconds, for tests) first applies a generic shrink so any sweep file has a smoke
scale: steps <= 100, chunk_steps <= 50, batch_size <= 256, eval_samples <= 8192,
seeds <= 2, and every axis thinned to its first, middle and last value; the file's
``[scale.smoke]`` then applies on top. Finally each ``--set key=value`` (value in TOML
syntax; bare words are strings; ``grid.<key>=...`` sets an axis) applies in order. The
scale, the overrides and the resolved spec are recorded in meta.json.

Every error is a `SweepError` naming the file, the key and the reason, raised before
anything touches the disk.
"""

from __future__ import annotations

import dataclasses
import difflib
import hashlib
import itertools
import json
import math
import re
import tomllib
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

KINDS = ("relu_output", "linear", "relu_hidden", "abs")
OPTIMIZERS = ("adamw", "adam", "sgd")
SCHEDULES = ("constant", "linear", "cosine")
SAMPLERS = ("hash", "threefry")
STRUCTURES = ("independent", "correlated", "anticorrelated")
SCALES = ("smoke", "default", "paper")
SECTIONS = ("model", "data", "train")
STATIC_KEYS = (
    "model.kind",
    "model.n_features",
    "model.n_hidden",
    "train.batch_size",
    "train.steps",
    "train.optimizer",
    "train.schedule",
    "train.eval_samples",
    "train.sampler",
    "data.structure",
    "data.set_size",
)
"""Keys that fix a shape or the compiled program: one group per distinct combination."""

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

_REQUIRED = object()


class SweepError(ValueError):
    """Bad input: one line naming the file, the key and the reason."""

    def __init__(self, file: str | Path, key: str | None, reason: str):
        self.file, self.key, self.reason = str(file), key, reason
        parts = [self.file] + ([key] if key else []) + [reason]
        super().__init__(": ".join(" ".join(str(p).split()) for p in parts))


class _Bad(Exception):
    """A value failed validation; the caller adds the file and the key."""


# ---------------------------------------------------------------- value checks


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _int(lo: int | None = None) -> Callable:
    def check(v):
        if not _is_int(v):
            raise _Bad(f"expected an integer, got {_show(v)}")
        if lo is not None and v < lo:
            raise _Bad(f"must be >= {lo}, got {v}")
        return v

    check.integer = True
    return check


def _float(lo: float | None = None, strict: bool = False) -> Callable:
    def check(v):
        if not _is_number(v):
            raise _Bad(f"expected a number, got {_show(v)}")
        v = float(v)
        if not math.isfinite(v):
            raise _Bad(f"must be finite, got {v}")
        if lo is not None and (v <= lo if strict else v < lo):
            raise _Bad(f"must be {'>' if strict else '>='} {lo:g}, got {v:g}")
        return v

    return check


def _probability(v):
    if not _is_number(v):
        raise _Bad(f"expected a probability, got {_show(v)}")
    v = float(v)
    if not (0.0 < v <= 1.0):
        raise _Bad(f"probability {v:g} outside (0, 1]")
    return v


def _choice(options: Sequence[str]) -> Callable:
    def check(v):
        if not isinstance(v, str):
            raise _Bad(f"expected one of {', '.join(options)}; got {_show(v)}")
        if v not in options:
            hint = difflib.get_close_matches(v, options, n=1)
            more = f" (did you mean {hint[0]!r}?)" if hint else ""
            raise _Bad(f"unknown value {v!r}; expected one of {', '.join(options)}{more}")
        return v

    return check


def _per_feature(element: Callable, what: str) -> Callable:
    """A number, or a list of numbers (one per feature; the length is checked later)."""

    def check(v):
        if isinstance(v, list):
            if not v:
                raise _Bad(f"expected a {what} or a list of n of them, got []")
            out = []
            for i, x in enumerate(v):
                try:
                    out.append(element(x))
                except _Bad as e:
                    raise _Bad(f"entry {i}: {e}") from None
            return out
        return element(v)

    return check


def _importance(v):
    if isinstance(v, dict):
        if set(v) != {"decay"}:
            raise _Bad(f"a table here must be {{decay = d}} (importance d**i), got {_show(v)}")
        try:
            return {"decay": _float(0.0, strict=True)(v["decay"])}
        except _Bad as e:
            raise _Bad(f"decay: {e}") from None
    return _per_feature(_float(0.0), "importance >= 0")(v)


def _name(v):
    if not isinstance(v, str) or not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.+-]*", v):
        raise _Bad(f"expected a directory name (letters, digits, _.+-), got {_show(v)}")
    return v


def _text(v):
    if not isinstance(v, str):
        raise _Bad(f"expected a string, got {_show(v)}")
    return v


def _bool(v):
    if not isinstance(v, bool):
        raise _Bad(f"expected true or false, got {_show(v)}")
    return v


def _block_size(v):
    if v == "auto":
        return v
    if not _is_int(v) or v < 1:
        raise _Bad(f'expected an integer >= 1 or "auto", got {_show(v)}')
    return v


def _show(v) -> str:
    if isinstance(v, bool):
        return f"boolean {str(v).lower()}"
    if isinstance(v, str):
        return f"string {v!r}"
    if isinstance(v, dict):
        return "table {" + ", ".join(f"{k} = {_show(x)}" for k, x in v.items()) + "}"
    return repr(v)


@dataclasses.dataclass(frozen=True)
class Field:
    """One sweep key: its check, its default, and whether it may be a grid axis."""

    check: Callable[[Any], Any]
    default: Any
    axis: bool
    doc: str


FIELDS: dict[str, Field] = {
    "name": Field(_name, _REQUIRED, False, "the sweep's name; results/<name> by default"),
    "description": Field(_text, "", False, "free text"),
    "root_seed": Field(_int(0), 0, False, "root of every random key"),
    "model.kind": Field(_choice(KINDS), "relu_output", True, "model kind"),
    "model.n_features": Field(_int(1), _REQUIRED, True, "n, number of features"),
    "model.n_hidden": Field(_int(1), _REQUIRED, True, "m, hidden dimensions"),
    "data.feature_probability": Field(
        _per_feature(_probability, "probability in (0, 1]"), _REQUIRED, True, "1 - S"
    ),
    "data.importance": Field(_importance, 1.0, True, "per-feature loss weight"),
    "data.structure": Field(
        _choice(STRUCTURES),
        "independent",
        True,
        "feature sets: independent features, or "
        "consecutive sets of data.set_size that switch on together (correlated) or one at a "
        "time (anticorrelated)",
    ),
    "data.set_size": Field(_int(1), 1, True, "features per correlated/anticorrelated set"),
    "data.varied_feature": Field(_int(), -1, True, "index of the varied feature"),
    "data.varied_importance": Field(_float(0.0), None, True, "its importance"),
    "data.varied_feature_probability": Field(_probability, None, True, "its probability"),
    "train.steps": Field(_int(1), 10_000, True, "optimizer steps"),
    "train.batch_size": Field(_int(1), 1024, True, "fresh samples per step"),
    "train.lr": Field(_float(0.0, strict=True), 1e-3, True, "learning rate"),
    "train.optimizer": Field(_choice(OPTIMIZERS), "adamw", True, "optimizer"),
    "train.weight_decay": Field(_float(0.0), 0.01, True, "weight decay"),
    "train.schedule": Field(_choice(SCHEDULES), "constant", True, "learning-rate schedule"),
    "train.seeds": Field(_int(1), 1, False, "instances per grid point"),
    "train.eval_samples": Field(_int(1), 2**17, True, "samples of the final loss"),
    "train.sampler": Field(_choice(SAMPLERS), "hash", True, "uniform sampler (geomtoy.data)"),
    "train.chunk_steps": Field(_int(1), 500, False, "steps per compiled chunk"),
    "train.checkpoint_every": Field(_int(1), 4, False, "chunks between checkpoints"),
    "train.block_size": Field(_block_size, "auto", False, "instances trained at once"),
    "train.snapshots": Field(_bool, False, False, "record W, b at the end of every chunk"),
}
_TOP_LEVEL = ("name", "description", "root_seed")
_HASH_EXCLUDED = ("description",)
_OMITTED_AT_DEFAULT = ("train.snapshots", "data.structure", "data.set_size")
"""Keys added after results format 1: in the resolved spec only when not at their
default, so the fingerprints of sweeps that do not use them do not change."""


def _unknown_key(key: str, known: Sequence[str]) -> str:
    hint = difflib.get_close_matches(key, known, n=1, cutoff=0.6)
    return "unknown key" + (f" (did you mean {hint[0]!r}?)" if hint else "")


# ---------------------------------------------------------------- reading a document


@dataclasses.dataclass
class _Value:
    value: Any
    origin: str  # where it came from, for error messages: "train.steps", "--set train.lr"


def _flatten(doc: Mapping, file: str, prefix: str, *, allow_name: bool):
    """A sweep document (or a scale table) as ({key: _Value}, {axis key: _Value})."""
    values: dict[str, _Value] = {}
    axes: dict[str, _Value] = {}
    sections = SECTIONS + ("grid",)
    for top, item in doc.items():
        origin = prefix + top
        if top in sections:
            if not isinstance(item, dict):
                raise SweepError(file, origin, f"expected a table [{top}], got {_show(item)}")
            if top == "grid":
                for key, spec in item.items():
                    if key in SECTIONS and isinstance(spec, dict):  # unquoted: data.x = [...]
                        for sub, s in spec.items():
                            axes[f"{key}.{sub}"] = _Value(s, f'{origin}."{key}.{sub}"')
                    else:
                        axes[key] = _Value(spec, f'{origin}."{key}"')
                continue
            for sub, v in item.items():
                key = f"{top}.{sub}"
                if key not in FIELDS:
                    known = [k.split(".", 1)[1] for k in FIELDS if k.startswith(top + ".")]
                    raise SweepError(file, f"{origin}.{sub}", _unknown_key(sub, known))
                values[key] = _Value(v, f"{origin}.{sub}")
        elif top == "name" and not allow_name:
            raise SweepError(file, origin, "the name cannot change with the scale")
        elif top in _TOP_LEVEL:
            values[top] = _Value(item, origin)
        else:
            known = list(_TOP_LEVEL) + list(sections) + (["scale"] if not prefix else [])
            raise SweepError(file, origin, _unknown_key(top, known))
    return values, axes


def _set_override(text: str, file: str):
    """Parse one --set KEY=VALUE into (key, value, is_axis)."""
    origin = f"--set {text}"
    if "=" not in text:
        raise SweepError(file, origin, "expected KEY=VALUE")
    key, raw = (s.strip() for s in text.split("=", 1))
    try:
        value = tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw  # a bare word, such as model.kind=linear
    if key.startswith("grid."):
        return key[5:], _Value(value, f"--set {key}"), True
    if key == "name" or key not in FIELDS:
        if key == "name":
            raise SweepError(file, "--set name", "the name cannot be overridden")
        raise SweepError(file, f"--set {key}", _unknown_key(key, list(FIELDS)))
    return key, _Value(value, f"--set {key}"), False


# ---------------------------------------------------------------- axes


@dataclasses.dataclass(frozen=True)
class Axis:
    """One grid axis: a dotted key and its values (validated, plain Python)."""

    key: str
    values: tuple
    origin: str

    def column(self) -> np.ndarray | list:
        """The instances-table column type of this axis: numbers, strings, else JSON."""
        vs = self.values
        if all(_is_int(v) for v in vs):
            return np.asarray(vs, np.int64)
        if all(_is_number(v) for v in vs):
            return np.asarray(vs, np.float64)
        if all(isinstance(v, str) for v in vs):
            return list(vs)
        return [json.dumps(v, sort_keys=True) for v in vs]


def _expand_axis(key: str, spec: _Value, file: str) -> Axis:
    """Validate a [grid] entry and list its values."""

    def fail(reason: str, where: str = spec.origin):
        raise SweepError(file, where, reason)

    shape_hint = "an axis is a list or {logspace|linspace = [a, b, k]}"
    if key not in FIELDS:
        fail("axis on an " + _unknown_key(key, list(FIELDS)))
    field = FIELDS[key]
    if not field.axis:
        fail(f"{key} cannot be a grid axis (one value per sweep)")
    v = spec.value
    if isinstance(v, dict):
        if len(v) != 1 or next(iter(v)) not in ("logspace", "linspace"):
            fail(f"{shape_hint}, got {_show(v)}")
        kind, args = next(iter(v.items()))
        where = f"{spec.origin}.{kind}"
        if not (
            isinstance(args, list)
            and len(args) == 3
            and all(_is_number(a) for a in args[:2])
            and _is_int(args[2])
            and args[2] >= 1
        ):
            fail(f"expected [a, b, k] with k an integer >= 1, got {_show(args)}", where)
        a, b, k = args
        if kind == "logspace" and not (a > 0 and b > 0):
            fail(f"logspace needs a, b > 0, got {a:g}, {b:g}", where)
        gen = np.geomspace(a, b, k) if kind == "logspace" else np.linspace(a, b, k)
        if getattr(field.check, "integer", False):
            raw = [int(round(x)) for x in gen]
            if len(set(raw)) != len(raw):
                fail(f"integer key {key}: values {raw} repeat after rounding")
        else:
            raw = [float(x) for x in gen]
    elif isinstance(v, list):
        if not v:
            fail("an axis needs at least one value")
        raw = list(v)
    else:
        fail(f"{shape_hint}, got {_show(v)}")
    values = []
    for i, x in enumerate(raw):
        try:
            values.append(field.check(x))
        except _Bad as e:
            fail(str(e), f"{spec.origin}[{i}]")
    return Axis(key, tuple(values), spec.origin)


def _thin(values: list) -> list:
    if len(values) <= 3:
        return values
    return [values[0], values[len(values) // 2], values[-1]]


# ---------------------------------------------------------------- the expanded sweep


@dataclasses.dataclass(frozen=True)
class StaticShape:
    """The static part of a group (mirrors `geomtoy.train.Shape`): one compiled program."""

    kind: str
    n_features: int
    n_hidden: int
    batch_size: int
    steps: int
    optimizer: str
    schedule: str
    eval_samples: int
    sampler: str
    structure: str = "independent"
    set_size: int = 1

    def engine(self):
        """The engine's `Shape` (imports JAX)."""
        from geomtoy.train import Shape

        return Shape(**dataclasses.asdict(self))


@dataclasses.dataclass(frozen=True)
class Group:
    """Instances sharing one StaticShape; leaves are host NumPy arrays, one row each.

    `instance` holds global instance ids (the rows of instances.parquet), which feed the
    random keys, so a group or any block of it trains exactly as inside the full sweep.
    """

    index: int
    shape: StaticShape
    instance: np.ndarray  # (Ig,) int64
    seed: np.ndarray  # (Ig,) int64
    feature_probability: np.ndarray  # (Ig, n) float64
    importance: np.ndarray  # (Ig, n)
    lr: np.ndarray  # (Ig,)
    weight_decay: np.ndarray  # (Ig,)
    block_size: int

    def __len__(self) -> int:
        return len(self.instance)

    def hparams(self, rows: np.ndarray):
        """The engine's HParams for rows of this group (imports JAX)."""
        from geomtoy.train import HParams

        return HParams.create(
            n_instances=len(rows),
            n_features=self.shape.n_features,
            feature_probability=self.feature_probability[rows],
            importance=self.importance[rows],
            lr=self.lr[rows],
            weight_decay=self.weight_decay[rows],
            seed=self.seed[rows],
            instance_id=self.instance[rows],
        )


@dataclasses.dataclass(frozen=True)
class Block:
    """Instances trained at once: rows of one group, padded to `size` by repeating the
    last row (padding trains a duplicate of a real instance and is dropped), so that all
    blocks of a group but none other share one compiled program."""

    index: int
    group: int
    rows: np.ndarray  # rows of the group, (n_real,)
    size: int

    @property
    def padded_rows(self) -> np.ndarray:
        return np.concatenate([self.rows, np.full(self.size - len(self.rows), self.rows[-1])])


@dataclasses.dataclass(frozen=True)
class Sweep:
    """A validated, expanded sweep: the spec, the instance table and its groups.

    Instance ids run over grid points in axis order (first axis slowest) and, within a
    grid point, over seeds 0..seeds-1.
    """

    name: str
    file: str
    source: str  # the sweep file's text (kept in meta.json)
    scale: str
    sets: tuple[str, ...]
    spec: dict  # resolved document: defaults filled, overrides applied (meta.json)
    axes: tuple[Axis, ...]
    root_seed: int
    seeds: int
    chunk_steps: int
    checkpoint_every: int
    point: np.ndarray  # (I,) grid point of each instance
    seed: np.ndarray  # (I,) seed within its grid point
    group_of: np.ndarray  # (I,) group index of each instance
    row_of: np.ndarray  # (I,) row inside its group
    groups: tuple[Group, ...]
    snapshots: bool = False  # train.snapshots: W, b at the end of every chunk

    @property
    def n_instances(self) -> int:
        return len(self.point)

    @property
    def n_points(self) -> int:
        return math.prod(len(a.values) for a in self.axes)

    def fingerprint(self) -> str:
        """Hash of the resolved spec: two runs with equal fingerprints give equal results."""
        spec = {k: v for k, v in self.spec.items() if k not in _HASH_EXCLUDED}
        return hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:16]

    def axis_index(self) -> np.ndarray:
        """(I, n_axes): index of each instance's value along each axis."""
        shape = [len(a.values) for a in self.axes]
        if not shape:
            return np.zeros((self.n_instances, 0), np.int64)
        return np.stack(np.unravel_index(self.point, shape), axis=1)

    def instance_columns(self) -> dict[str, Any]:
        """instance, seed, point, group and one column per axis named by its key."""
        cols: dict[str, Any] = {
            "instance": np.arange(self.n_instances, dtype=np.int64),
            "seed": self.seed.astype(np.int64),
            "point": self.point.astype(np.int64),
            "group": self.group_of.astype(np.int64),
        }
        idx = self.axis_index()
        for j, axis in enumerate(self.axes):
            col = axis.column()
            if isinstance(col, np.ndarray):
                cols[axis.key] = col[idx[:, j]]
            else:
                cols[axis.key] = [col[i] for i in idx[:, j]]
        return cols

    def chunks(self, group: Group) -> list[int]:
        """Steps of each chunk of a group: full chunks, then the remainder."""
        return chunk_schedule(group.shape.steps, self.chunk_steps)

    def snapshot_steps(self) -> np.ndarray:
        """(S,) the step at which each snapshot is taken: the end of every chunk.

        Only for sweeps with snapshots, whose groups share one chunk schedule."""
        return np.cumsum(self.chunks(self.groups[0]), dtype=np.int64)

    def snapshot_bytes(self) -> int:
        """Bytes of float32 weight snapshots (W, b, and W2 for abs) of the whole sweep."""
        total = 0
        for g in self.groups:
            n, m = g.shape.n_features, g.shape.n_hidden
            per_snapshot = m * n * (2 if g.shape.kind == "abs" else 1) + n
            total += 4 * len(g) * len(self.chunks(g)) * per_snapshot
        return total

    def blocks(self, multiple: int = 1) -> list[Block]:
        """The sweep's blocks, group by group, each of nearly equal size within a group.

        `multiple`: pad every block to a multiple of this (e.g. the device count).
        """
        out = []
        for g in self.groups:
            n_blocks = math.ceil(len(g) / g.block_size)
            size = math.ceil(len(g) / n_blocks)
            size = math.ceil(size / multiple) * multiple
            for rows in np.array_split(np.arange(len(g)), n_blocks):
                out.append(Block(len(out), g.index, rows, size))
        return out


def chunk_schedule(steps: int, chunk_steps: int) -> list[int]:
    """Steps per compiled chunk: full chunks, then the remainder (at most two programs)."""
    c = min(chunk_steps, steps)
    full, rest = divmod(steps, c)
    return [c] * full + ([rest] if rest else [])


def auto_block_size(shape: StaticShape) -> int:
    """Instances per block so one step's temporaries stay near `AUTO_BLOCK_BYTES`.

    A step holds a few (n, B) and (m, B) float32 arrays per instance (uniforms, x, h,
    x_hat and their gradients); evaluation uses batches of at most 8192 samples.
    """
    batch = max(shape.batch_size, min(shape.eval_samples, 8192))
    per_instance = 4 * batch * (6 * shape.n_features + 3 * shape.n_hidden)
    return int(max(1, min(65536, AUTO_BLOCK_BYTES // per_instance)))


def load(
    path: str | Path,
    scale: str = "default",
    sets: Sequence[str] = (),
) -> Sweep:
    """Read, validate and expand a sweep file at a scale with --set overrides.

    Raises SweepError (file, key, reason) for any bad input.
    """
    file = str(path)
    try:
        text = Path(path).read_text()
    except OSError as e:
        raise SweepError(file, None, f"cannot read: {e.strerror or e}") from None
    except UnicodeDecodeError:
        raise SweepError(file, None, "not a text file") from None
    return loads(text, file=file, scale=scale, sets=sets)


def loads(
    text: str,
    file: str = "<string>",
    scale: str = "default",
    sets: Sequence[str] = (),
) -> Sweep:
    """Like `load`, from the text of a sweep file."""
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise SweepError(file, None, f"TOML syntax error: {e}") from None
    if scale not in SCALES:
        raise SweepError(file, "--scale", f"unknown scale {scale!r}; one of {', '.join(SCALES)}")

    scales = doc.pop("scale", {})
    if not isinstance(scales, dict):
        raise SweepError(file, "scale", f"expected [scale.<name>] tables, got {_show(scales)}")
    for s, table in scales.items():
        if s not in SCALES:
            raise SweepError(file, f"scale.{s}", _unknown_key(s, SCALES))
        if not isinstance(table, dict):
            raise SweepError(file, f"scale.{s}", f"expected a table, got {_show(table)}")

    values, axes = _flatten(doc, file, "", allow_name=True)
    # Check every scale table (not only the chosen one) so a typo is caught at any scale.
    scale_tables = {
        s: _flatten(t, file, f"scale.{s}.", allow_name=False) for s, t in scales.items()
    }

    if scale == "smoke":
        _generic_smoke(values, axes, file)
    if scale in scale_tables:
        s_values, s_axes = scale_tables[scale]
        for key, v in s_values.items():
            values[key] = v
            axes.pop(key, None)
        axes.update(s_axes)
    for text_ in sets:
        key, v, is_axis = _set_override(text_, file)
        if is_axis:
            axes[key] = v
        else:
            values[key] = v
            axes.pop(key, None)

    # Validate every scalar, fill defaults.
    resolved: dict[str, Any] = {}
    origins: dict[str, str] = {}
    for key, field in FIELDS.items():
        if key in values:
            try:
                resolved[key] = field.check(values[key].value)
            except _Bad as e:
                raise SweepError(file, values[key].origin, str(e)) from None
            origins[key] = values[key].origin
        elif field.default is _REQUIRED:
            if key in axes:
                continue
            raise SweepError(file, key, "required key is missing")
        else:
            resolved[key] = field.default
            origins[key] = key
    expanded = tuple(_expand_axis(key, spec, file) for key, spec in axes.items())

    spec = _spec_document(resolved, {k: v.value for k, v in axes.items()})
    return _expand(file, text, scale, tuple(sets), spec, resolved, origins, expanded)


def _generic_smoke(values: dict, axes: dict, file: str) -> None:
    for key, limit in SMOKE_LIMITS.items():
        current = values[key].value if key in values else FIELDS[key].default
        if _is_int(current) and current > limit:
            values[key] = _Value(limit, f"scale smoke (generic) {key}")
    for key, spec in list(axes.items()):
        axis = _expand_axis(key, spec, file)
        thinned = list(axis.values)
        if key in SMOKE_LIMITS:
            thinned = list(dict.fromkeys(min(v, SMOKE_LIMITS[key]) for v in thinned))
        axes[key] = _Value(_thin(thinned), spec.origin + " (smoke: thinned)")


def _spec_document(resolved: dict, grid: dict) -> dict:
    doc: dict[str, Any] = {k: resolved[k] for k in _TOP_LEVEL if k in resolved}
    for section in SECTIONS:
        doc[section] = {
            k.split(".", 1)[1]: v
            for k, v in resolved.items()
            if k.startswith(section + ".")
            and v is not None
            and k not in grid
            and not (k in _OMITTED_AT_DEFAULT and v == FIELDS[k].default)
        }
    doc["grid"] = dict(grid)
    return doc


def _resolve_point(point: dict, origins: dict, file: str):
    """Per-instance leaves of one grid point: (fp (n,), importance (n,), lr, wd)."""
    n = point["model.n_features"]

    def vector(key, value):
        if isinstance(value, list):
            if len(value) != n:
                where = origins["model.n_features"]
                at = "" if where == "model.n_features" else f" (n_features from {where})"
                reason = f"a list needs n_features = {n} entries, got {len(value)}{at}"
                raise SweepError(file, origins[key], reason)
            return np.asarray(value, np.float64)
        return np.full(n, float(value))

    fp = vector("data.feature_probability", point["data.feature_probability"])
    imp = point["data.importance"]
    if isinstance(imp, dict):
        imp = imp["decay"] ** np.arange(n, dtype=np.float64)
    else:
        imp = vector("data.importance", imp)
    j = point["data.varied_feature"]
    if not -n <= j < n:
        where = origins["data.varied_feature"]
        raise SweepError(file, where, f"index {j} outside the {n} features")
    if point["data.varied_importance"] is not None:
        imp[j] = point["data.varied_importance"]
    if point["data.varied_feature_probability"] is not None:
        fp[j] = point["data.varied_feature_probability"]
    return fp, imp, point["train.lr"], point["train.weight_decay"]


def _expand(file, source, scale, sets, spec, resolved, origins, axes: tuple[Axis, ...]) -> Sweep:
    seeds = resolved["train.seeds"]
    block_setting = resolved["train.block_size"]
    group_keys: dict[StaticShape, int] = {}
    members: list[list] = []  # per group: list of (point, fp, imp, lr, wd)
    point_group = []
    for p, combo in enumerate(itertools.product(*(enumerate(a.values) for a in axes))):
        point = dict(resolved)
        point_origins = dict(origins)
        for axis, (i, value) in zip(axes, combo):
            point[axis.key] = value
            point_origins[axis.key] = f"{axis.origin}[{i}]"
        shape = StaticShape(**{k.split(".", 1)[1]: point[k] for k in STATIC_KEYS})
        if shape.structure != "independent" and shape.n_features % shape.set_size:
            reason = f"{shape.set_size} does not divide model.n_features = {shape.n_features}"
            raise SweepError(file, "data.set_size", reason)
        leaves = _resolve_point(point, point_origins, file)
        g = group_keys.setdefault(shape, len(group_keys))
        if g == len(members):
            members.append([])
        members[g].append((p, *leaves))
        point_group.append(g)

    n_points = len(point_group)
    point = np.repeat(np.arange(n_points), seeds)
    seed = np.tile(np.arange(seeds), n_points)
    group_of = np.repeat(np.asarray(point_group, np.int64), seeds)
    row_of = np.zeros(len(point), np.int64)
    groups = []
    for shape, g in group_keys.items():
        rows = members[g]
        pts = np.asarray([r[0] for r in rows], np.int64)
        instance = (pts[:, None] * seeds + np.arange(seeds)[None, :]).reshape(-1)
        row_of[instance] = np.arange(len(instance))

        def stack(j, rows=rows):
            return np.repeat(np.stack([np.asarray(r[j], np.float64) for r in rows]), seeds, axis=0)

        block = auto_block_size(shape) if block_setting == "auto" else block_setting
        groups.append(
            Group(
                index=g,
                shape=shape,
                instance=instance,
                seed=np.tile(np.arange(seeds), len(rows)),
                feature_probability=stack(1),
                importance=stack(2),
                lr=stack(3),
                weight_decay=stack(4),
                block_size=min(block, len(instance)),
            )
        )
    sweep = Sweep(
        name=resolved["name"],
        file=file,
        source=source,
        scale=scale,
        sets=sets,
        spec=spec,
        axes=axes,
        root_seed=resolved["root_seed"],
        seeds=seeds,
        chunk_steps=resolved["train.chunk_steps"],
        checkpoint_every=resolved["train.checkpoint_every"],
        point=point,
        seed=seed,
        group_of=group_of,
        row_of=row_of,
        groups=tuple(groups),
        snapshots=resolved["train.snapshots"],
    )
    if sweep.snapshots:
        _check_snapshots(sweep, file, origins["train.snapshots"])
    return sweep


def _check_snapshots(sweep: Sweep, file: str, origin: str) -> None:
    """Snapshots need one chunk schedule for all groups and must fit SNAPSHOT_BYTES."""
    schedules = {tuple(sweep.chunks(g)) for g in sweep.groups}
    if len(schedules) > 1:
        steps = sorted({g.shape.steps for g in sweep.groups})
        reason = (
            f"snapshots need the same train.steps for every instance (one chunk "
            f"schedule), got steps {steps}"
        )
        raise SweepError(file, origin, reason)
    size = sweep.snapshot_bytes()
    if size > SNAPSHOT_BYTES:
        reason = (
            f"snapshots would take {size / 2**30:.1f} GiB (instances x snapshots x "
            f"(m n + n) floats), more than {SNAPSHOT_BYTES / 2**30:.0f} GiB; raise "
            f"train.chunk_steps or run fewer instances"
        )
        raise SweepError(file, origin, reason)
