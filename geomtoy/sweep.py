"""Sweep files: TOML + scale + --set overrides -> validated spec -> grid -> groups -> blocks.

`load` reads a sweep file (the format is described in docs/sweep-file.md), applies a scale
and the overrides, validates every value against `geomtoy.spec.FIELDS` and expands the grid
into instances. Instances that share a static `Shape` form a group (one compiled program);
a group is trained in blocks of bounded size. Every error is a `SweepError` naming the
file, the key and the reason, raised before anything touches the disk.
"""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import json
import math
import os
import tomllib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from geomtoy.spec import (
    AUTO_BLOCK_BYTES,
    FIELDS,
    HASH_EXCLUDED,
    INT32_MAX,
    OMITTED_AT_DEFAULT,
    REQUIRED,
    SCALES,
    SECTIONS,
    SMOKE_LIMITS,
    SNAPSHOT_BYTES,
    STATIC_KEYS,
    TOP_LEVEL,
    Bad,
    Shape,
    SweepError,
    chunk_schedule,
    is_int,
    is_number,
    show,
    unknown_key,
)

# ---------------------------------------------------------------- reading a document


@dataclasses.dataclass(frozen=True)
class Schema:
    """What a family of sweep files may hold: its field list, its tables, its top-level
    keys, its generic smoke limits and the keys left out of the spec at their default.
    The toy models' schema is `TOY`; the SAE sweeps (geomtoy.sae.sweep) have their own,
    read with the same grammar (`parse`)."""

    fields: Mapping[str, Any]
    sections: tuple[str, ...]
    top_level: tuple[str, ...]
    smoke_limits: Mapping[str, int]
    omitted_at_default: tuple[str, ...] = ()


TOY = Schema(FIELDS, SECTIONS, TOP_LEVEL, SMOKE_LIMITS, OMITTED_AT_DEFAULT)


@dataclasses.dataclass
class _Value:
    value: Any
    origin: str  # where it came from, for error messages: "train.steps", "--set train.lr"


def _flatten(doc: Mapping, file: str, prefix: str, *, allow_name: bool, schema: Schema = TOY):
    """A sweep document (or a scale table) as ({key: _Value}, {axis key: _Value})."""
    values: dict[str, _Value] = {}
    axes: dict[str, _Value] = {}
    sections = schema.sections + ("grid",)
    for top, item in doc.items():
        origin = prefix + top
        if top in sections:
            if not isinstance(item, dict):
                raise SweepError(file, origin, f"expected a table [{top}], got {show(item)}")
            if top == "grid":
                for key, spec in item.items():
                    if key in schema.sections and isinstance(spec, dict):  # data.x = [...]
                        pairs = [(f"{key}.{sub}", s) for sub, s in spec.items()]
                    else:
                        pairs = [(key, spec)]
                    for k, s in pairs:
                        if k in axes:  # "data.x" = ... and data.x = ...: both spell one axis
                            reason = f"axis {k} given twice (quoted and bare key)"
                            raise SweepError(file, f'{origin}."{k}"', reason)
                        axes[k] = _Value(s, f'{origin}."{k}"')
                continue
            for sub, v in item.items():
                key = f"{top}.{sub}"
                if key not in schema.fields:
                    known = [k.split(".", 1)[1] for k in schema.fields if k.startswith(top + ".")]
                    raise SweepError(file, f"{origin}.{sub}", unknown_key(sub, known))
                values[key] = _Value(v, f"{origin}.{sub}")
        elif top == "name" and not allow_name:
            raise SweepError(file, origin, "the name cannot change with the scale")
        elif top in schema.top_level:
            values[top] = _Value(item, origin)
        else:
            known = list(schema.top_level) + list(sections) + (["scale"] if not prefix else [])
            raise SweepError(file, origin, unknown_key(top, known))
    return values, axes


def _set_override(text: str, file: str, schema: Schema = TOY):
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
    if key == "name" or key not in schema.fields:
        if key == "name":
            raise SweepError(file, "--set name", "the name cannot be overridden")
        raise SweepError(file, f"--set {key}", unknown_key(key, list(schema.fields)))
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
        if all(is_int(v) for v in vs):
            return np.asarray(vs, np.int64)
        if all(is_number(v) for v in vs):
            return np.asarray(vs, np.float64)
        if all(isinstance(v, str) for v in vs):
            return list(vs)
        return [json.dumps(v, sort_keys=True) for v in vs]


def _expand_axis(key: str, spec: _Value, file: str, schema: Schema = TOY) -> Axis:
    """Validate a [grid] entry and list its values."""

    def fail(reason: str, where: str = spec.origin):
        raise SweepError(file, where, reason)

    shape_hint = "an axis is a list or {logspace|linspace = [a, b, k]}"
    if key not in schema.fields:
        fail("axis on an " + unknown_key(key, list(schema.fields)))
    field = schema.fields[key]
    if not field.axis:
        fail(f"{key} cannot be a grid axis (one value per sweep)")
    v = spec.value
    if isinstance(v, dict):
        if len(v) != 1 or next(iter(v)) not in ("logspace", "linspace"):
            fail(f"{shape_hint}, got {show(v)}")
        kind, args = next(iter(v.items()))
        where = f"{spec.origin}.{kind}"
        if not (
            isinstance(args, list)
            and len(args) == 3
            and all(is_number(a) for a in args[:2])
            and is_int(args[2])
            and args[2] >= 1
        ):
            fail(f"expected [a, b, k] with k an integer >= 1, got {show(args)}", where)
        a, b, k = args
        if not (math.isfinite(a) and math.isfinite(b)):
            fail(f"{kind} needs finite a and b, got {a:g}, {b:g}", where)
        if kind == "logspace" and not (a > 0 and b > 0):
            fail(f"logspace needs a, b > 0, got {a:g}, {b:g}", where)
        check_grid_size(k, file, where)  # before materialising k values
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
        fail(f"{shape_hint}, got {show(v)}")
    values, seen = [], {}
    for i, x in enumerate(raw):
        try:
            values.append(field.check(x))
        except Bad as e:
            fail(str(e), f"{spec.origin}[{i}]")
        text = json.dumps(values[-1], sort_keys=True)
        if text in seen:
            fail(f"value {text} repeats entry {seen[text]}", f"{spec.origin}[{i}]")
        seen[text] = i
    return Axis(key, tuple(values), spec.origin)


def _axis_length(spec: _Value) -> int:
    """How many values an axis will have, without listing them (1 if malformed: the
    axis's own check then says what is wrong)."""
    v = spec.value
    if isinstance(v, list):
        return max(len(v), 1)
    if isinstance(v, dict) and len(v) == 1:
        args = next(iter(v.values()))
        if isinstance(args, list) and len(args) == 3 and is_int(args[2]) and args[2] >= 1:
            return args[2]
    return 1


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


def _thin(values: list) -> list:
    if len(values) <= 3:
        return values
    return [values[0], values[len(values) // 2], values[-1]]


# ---------------------------------------------------------------- the expanded sweep


@dataclasses.dataclass(frozen=True)
class Group:
    """Instances sharing one Shape; leaves are host NumPy arrays, one row each.

    `instance` holds global instance ids (the rows of instances.parquet), which feed the
    random keys, so a group or any block of it trains exactly as inside the full sweep.
    """

    index: int
    shape: Shape
    instance: np.ndarray  # (Ig,) int64
    seed: np.ndarray  # (Ig,) int64
    feature_probability: np.ndarray  # (Ig, n) float64
    importance: np.ndarray  # (Ig, n)
    lr: np.ndarray  # (Ig,)
    weight_decay: np.ndarray  # (Ig,)
    block_size: int

    def __len__(self) -> int:
        return len(self.instance)

    def leaves(self, rows: np.ndarray) -> dict[str, Any]:
        """The per-instance hyperparameters of rows of this group, as the keyword
        arguments of `geomtoy.train.HParams.create`."""
        return dict(
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
        spec = {k: v for k, v in self.spec.items() if k not in HASH_EXCLUDED}
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
            per_snapshot = m * n * (2 if g.shape.model.untied else 1) + n
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


def auto_block_size(shape: Shape) -> int:
    """Instances per block so one step's temporaries stay near `AUTO_BLOCK_BYTES`.

    A step holds a few (n, B) and (m, B) float32 arrays per instance (uniforms, x, h,
    x_hat and their gradients); evaluation uses batches of at most 8192 samples.
    """
    batch = max(shape.batch_size, min(shape.eval_samples, 8192))
    if shape.n_samples:  # full batch: the (n, T) output and x, or the sparse loss blocks
        batch = max(min(shape.n_samples, 2**20 // shape.n_features), min(shape.eval_samples, 4096))
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
    p = parse(text, file, scale, sets)
    return _expand(file, text, scale, tuple(sets), p.spec, p.resolved, p.origins, p.axes)


@dataclasses.dataclass(frozen=True)
class Parsed:
    """A sweep document after scale, overrides and checks, before grid expansion."""

    resolved: dict[str, Any]  # every scalar key, checked, defaults filled
    origins: dict[str, str]
    axes: tuple[Axis, ...]
    spec: dict  # the resolved spec document (meta.json, fingerprint)


def parse(
    text: str, file: str, scale: str, sets: Sequence[str] = (), schema: Schema = TOY
) -> Parsed:
    """The shared grammar of sweep files: TOML, [scale.X] tables, --set, checks, axes."""
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise SweepError(file, None, f"TOML syntax error: {e}") from None
    if scale not in SCALES:
        raise SweepError(file, "--scale", f"unknown scale {scale!r}; one of {', '.join(SCALES)}")

    scales = doc.pop("scale", {})
    if not isinstance(scales, dict):
        raise SweepError(file, "scale", f"expected [scale.<name>] tables, got {show(scales)}")
    for s, table in scales.items():
        if s not in SCALES:
            raise SweepError(file, f"scale.{s}", unknown_key(s, SCALES))
        if not isinstance(table, dict):
            raise SweepError(file, f"scale.{s}", f"expected a table, got {show(table)}")

    values, axes = _flatten(doc, file, "", allow_name=True, schema=schema)
    # Check every scale table (not only the chosen one) so a typo is caught at any scale.
    scale_tables = {
        s: _flatten(t, file, f"scale.{s}.", allow_name=False, schema=schema)
        for s, t in scales.items()
    }

    if scale == "smoke":
        _generic_smoke(values, axes, file, schema)
    if scale in scale_tables:
        s_values, s_axes = scale_tables[scale]
        for key, v in s_values.items():
            values[key] = v
            axes.pop(key, None)
        axes.update(s_axes)
    for text_ in sets:
        key, v, is_axis = _set_override(text_, file, schema)
        if is_axis:
            axes[key] = v
        else:
            values[key] = v
            axes.pop(key, None)

    # Validate every scalar, fill defaults.
    resolved: dict[str, Any] = {}
    origins: dict[str, str] = {}
    for key, field in schema.fields.items():
        if key in values:
            try:
                resolved[key] = field.check(values[key].value)
            except Bad as e:
                raise SweepError(file, values[key].origin, str(e)) from None
            origins[key] = values[key].origin
        elif field.default is REQUIRED:
            if key in axes:
                continue
            raise SweepError(file, key, "required key is missing")
        else:
            resolved[key] = field.default
            origins[key] = key
    seeds = resolved.get("train.seeds", 1)
    n_instances = math.prod(_axis_length(v) for v in axes.values()) * seeds
    check_grid_size(n_instances, file, "grid" if axes else origins.get("train.seeds", "grid"))
    expanded = tuple(_expand_axis(key, spec, file, schema) for key, spec in axes.items())
    n_axis = next((a.values for a in expanded if a.key == "model.n_features"), ())
    n_max = max((*n_axis, resolved.get("model.n_features") or 1))
    if n_max > 1:  # per-feature hyperparameters, (I, n) float64, are on the host
        where = next((a.origin for a in expanded if a.key == "model.n_features"), None)
        where = where or origins.get("model.n_features", "grid")
        check_grid_size(n_instances, file, where, HOST_BYTES_PER_INSTANCE + 48 * n_max)
    spec = _spec_document(resolved, {k: v.value for k, v in axes.items()}, schema)
    return Parsed(resolved, origins, expanded, spec)


def _generic_smoke(values: dict, axes: dict, file: str, schema: Schema = TOY) -> None:
    for key, limit in schema.smoke_limits.items():
        current = values[key].value if key in values else schema.fields[key].default
        if is_int(current) and current > limit:
            values[key] = _Value(limit, f"scale smoke (generic) {key}")
    for key, spec in list(axes.items()):
        axis = _expand_axis(key, spec, file, schema)
        thinned = list(axis.values)
        if key in schema.smoke_limits:
            thinned = list(dict.fromkeys(min(v, schema.smoke_limits[key]) for v in thinned))
        axes[key] = _Value(_thin(thinned), spec.origin + " (smoke: thinned)")


def _spec_document(resolved: dict, grid: dict, schema: Schema = TOY) -> dict:
    doc: dict[str, Any] = {k: resolved[k] for k in schema.top_level if k in resolved}
    for section in schema.sections:
        doc[section] = {
            k.split(".", 1)[1]: v
            for k, v in resolved.items()
            if k.startswith(section + ".")
            and v is not None
            and k not in grid
            and not (k in schema.omitted_at_default and v == schema.fields[k].default)
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


def _check_hierarchy(fp: np.ndarray, set_size: int, file) -> None:
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


def _expand(file, source, scale, sets, spec, resolved, origins, axes: tuple[Axis, ...]) -> Sweep:
    seeds = resolved["train.seeds"]
    block_setting = resolved["train.block_size"]
    group_keys: dict[Shape, int] = {}
    members: list[list] = []  # per group: list of (point, fp, imp, lr, wd)
    point_group = []
    for p, combo in enumerate(itertools.product(*(enumerate(a.values) for a in axes))):
        point = dict(resolved)
        point_origins = dict(origins)
        for axis, (i, value) in zip(axes, combo):
            point[axis.key] = value
            point_origins[axis.key] = f"{axis.origin}[{i}]"
        static = {k.split(".", 1)[1]: point[k] for k in STATIC_KEYS}
        if static["structure"] != "independent" and static["n_features"] % static["set_size"]:
            reason = (
                f"{static['set_size']} does not divide model.n_features = {static['n_features']}"
            )
            raise SweepError(file, "data.set_size", reason)
        try:
            shape = Shape(**static)
        except ValueError as e:  # finite-data combinations (spec.Shape.finite_problem)
            raise SweepError(file, "data.n_samples", str(e)) from None
        leaves = _resolve_point(point, point_origins, file)
        if static["structure"] == "hierarchical":
            _check_hierarchy(leaves[0], static["set_size"], file)
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
