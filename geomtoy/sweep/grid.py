"""Grid axes and grid points: an axis's values, the grid's size limits, one point's leaves.

An axis (`[grid]` entry) is a list of values or `{logspace|linspace = [a, b, k]}`, each value
checked by its field. A grid point's per-instance hyperparameters (feature probability and
importance vectors, lr, weight decay) are resolved on the host as float64 NumPy arrays.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from collections.abc import Mapping
from typing import Any

import numpy as np

from geomtoy.checks import INT32_MAX, Bad, is_int, is_number, show, unknown_key
from geomtoy.errors import SweepError
from geomtoy.registry import DECAY_RULES, INITS_B, INITS_W
from geomtoy.spec import FIELDS


@dataclasses.dataclass(frozen=True)
class Axis:
    """One grid axis: a dotted key and its values (validated, plain Python)."""

    key: str
    values: tuple
    origin: str

    def column(self) -> np.ndarray | list:
        """The instances-table column type of this axis: numbers, strings, else JSON."""
        vs = self.values
        if all(is_int(v) for v in vs):
            return np.asarray(vs, np.int64)
        if all(is_number(v) for v in vs):
            return np.asarray(vs, np.float64)
        if all(isinstance(v, str) for v in vs):
            return list(vs)
        return [json.dumps(v, sort_keys=True) for v in vs]


def _spaced(key: str, v: dict, field, file: str, origin: str) -> list:
    """The values of a `{logspace|linspace = [a, b, k]}` axis, rounded for integer keys."""
    kind, args = next(iter(v.items()))
    where = f"{origin}.{kind}"
    if not (
        isinstance(args, list)
        and len(args) == 3
        and all(is_number(a) for a in args[:2])
        and is_int(args[2])
        and args[2] >= 1
    ):
        reason = f"expected [a, b, k] with k an integer >= 1, got {show(args)}"
        raise SweepError(file, where, reason)
    a, b, k = args
    if not (math.isfinite(a) and math.isfinite(b)):
        raise SweepError(file, where, f"{kind} needs finite a and b, got {a:g}, {b:g}")
    if kind == "logspace" and not (a > 0 and b > 0):
        raise SweepError(file, where, f"logspace needs a, b > 0, got {a:g}, {b:g}")
    check_grid_size(k, file, where)  # before materialising k values
    gen = np.geomspace(a, b, k) if kind == "logspace" else np.linspace(a, b, k)
    if not getattr(field.check, "integer", False):
        return [float(x) for x in gen]
    raw = [int(round(x)) for x in gen]
    if len(set(raw)) != len(raw):
        raise SweepError(file, origin, f"integer key {key}: values {raw} repeat after rounding")
    return raw


def expand_axis(key: str, value: Any, origin: str, file: str, fields: Mapping) -> Axis:
    """Validate a [grid] entry (`value`, given at `origin`) and list its values."""

    def fail(reason: str, where: str = origin):
        raise SweepError(file, where, reason)

    shape_hint = "an axis is a list or {logspace|linspace = [a, b, k]}"
    if key not in fields:
        fail("axis on an " + unknown_key(key, list(fields)))
    field = fields[key]
    if not field.axis:
        fail(f"{key} cannot be a grid axis (one value per sweep)")
    if isinstance(value, dict):
        if len(value) != 1 or next(iter(value)) not in ("logspace", "linspace"):
            fail(f"{shape_hint}, got {show(value)}")
        raw = _spaced(key, value, field, file, origin)
    elif isinstance(value, list):
        if not value:
            fail("an axis needs at least one value")
        raw = list(value)
    else:
        fail(f"{shape_hint}, got {show(value)}")
    values, seen = [], {}
    for i, x in enumerate(raw):
        try:
            values.append(field.check(x))
        except Bad as e:
            fail(str(e), f"{origin}[{i}]")
        text = json.dumps(values[-1], sort_keys=True)
        if text in seen:
            fail(f"value {text} repeats entry {seen[text]}", f"{origin}[{i}]")
        seen[text] = i
    return Axis(key, tuple(values), origin)


def axis_length(value: Any) -> int:
    """How many values an axis will have, without listing them (1 if malformed: the
    axis's own check then says what is wrong)."""
    if isinstance(value, list):
        return max(len(value), 1)
    if isinstance(value, dict) and len(value) == 1:
        args = next(iter(value.values()))
        if isinstance(args, list) and len(args) == 3 and is_int(args[2]) and args[2] >= 1:
            return args[2]
    return 1


def thin(values: list) -> list:
    """At most three values of an axis (first, middle, last): the smoke scale's grid."""
    if len(values) <= 3:
        return values
    return [values[0], values[len(values) // 2], values[-1]]


HOST_BYTES_PER_INSTANCE = 1024
"""Host memory one planned instance takes at least (its grid point, rows of the tables)."""


def host_memory() -> int:
    """Physical memory of this machine in bytes."""
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):  # not POSIX: assume plenty
        return 2**40


def check_grid_size(
    n_instances: int, file: str, origin: str, per_instance: int = HOST_BYTES_PER_INSTANCE
) -> None:
    """Refuse a grid whose instance count does not fit int32 ids or the host's memory
    (`per_instance` bytes each), before anything is materialised."""
    if n_instances > INT32_MAX:
        reason = f"{n_instances:.3g} instances do not fit int32 instance ids (at most {INT32_MAX})"
        raise SweepError(file, origin, reason)
    need, have = n_instances * per_instance, host_memory()
    if need > have // 2:
        reason = (
            f"{n_instances:.3g} instances need about {need / 2**30:.0f} GiB of host memory to "
            f"plan, more than half of the {have / 2**30:.0f} GiB here; split the sweep"
        )
        raise SweepError(file, origin, reason)


# ---------------------------------------------------------------- one grid point


def power_law(n: int, alpha: float, density: float = 0.0) -> np.ndarray:
    """Liu, Liu and Gore's feature probabilities: q_i = i^-(1+alpha) / sum_j j^-(1+alpha)
    (i = 1..n, summing to 1: one feature present per sample on average), then
    p_i = q_i (1 + density (1/q_1 - 1)), so density 1 makes feature 1 always present."""
    q = np.arange(1, n + 1, dtype=np.float64) ** -(1.0 + alpha)
    q /= q.sum()
    return q * (1.0 + density * (1.0 / q[0] - 1.0))


EXTRA_LEAVES = {  # key -> HParams leaf (Liu et al.'s recipe; defaults give the notebook's)
    "train.lr_b": "lr_b",
    "train.weight_decay_b": "weight_decay_b",
    "train.decay_rule": "decay_rule",
    "train.min_lr_ratio": "min_lr_ratio",
    "model.init_W": "init_W",
    "model.init_b": "init_b",
}
"""Per-instance leaves beyond (fp, importance, lr, wd): named choices become their index in
the registry tuple, lr_b and weight_decay_b default to lr and weight_decay."""
_CHOICES = {
    "train.decay_rule": DECAY_RULES,
    "model.init_W": INITS_W,
    "model.init_b": INITS_B,
}


def extra_leaves(point: dict) -> dict:
    """The EXTRA_LEAVES of one grid point, as numbers."""
    out = {}
    for key, leaf in EXTRA_LEAVES.items():
        value = point[key]
        if key in _CHOICES:
            value = _CHOICES[key].index(value)
        elif value is None:  # lr_b, weight_decay_b: W's value
            value = point[key[: -len("_b")]]
        out[leaf] = value
    return out


def resolve_point(point: dict, origins: dict, file: str):
    """Per-instance leaves of one grid point: (fp (n,), importance (n,), lr, wd, extras)."""
    n = point["model.n_features"]

    def vector(key, value):
        if isinstance(value, dict):
            return power_law(n, **value["power_law"])
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
    return fp, imp, point["train.lr"], point["train.weight_decay"], extra_leaves(point)


def check_hierarchy(fp: np.ndarray, set_size: int, file) -> None:
    """Hierarchical sets: a parent and at least one child, whose probabilities given the
    parent sum to at most 1 (the children are mutually exclusive)."""
    if set_size < 2:
        raise SweepError(
            file, "data.set_size", "hierarchical sets need a parent and a child (>= 2)"
        )
    worst = fp.reshape(-1, set_size)[:, 1:].sum(axis=1).max()
    if worst > 1 + 1e-9:
        reason = f"the children's probabilities of one hierarchical set sum to {worst:g} > 1"
        raise SweepError(file, "data.feature_probability", reason)


def check_finite_recipe(point: dict, file: str) -> None:
    """Finite training sets (geomtoy.engine.fullbatch) train with one lr and weight decay
    for W and b, decoupled decay and Xavier init: refuse the EXTRA_LEAVES keys there."""
    for key in EXTRA_LEAVES:
        if point[key] is not None and point[key] != FIELDS[key].default:
            reason = "finite training sets (data.n_samples > 0) do not take this key"
            raise SweepError(file, key, reason)
