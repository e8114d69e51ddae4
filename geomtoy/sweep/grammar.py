"""The grammar of sweep files: TOML, [scale.X] tables, --set overrides, checks, axes.

`parse` reads a document against a `Schema` (a field list, its tables and top-level keys)
and returns every scalar checked with its default filled, where each value came from
(for error messages), the grid axes and the resolved spec document. The toy models' schema
is `TOY`; the SAE sweeps (geomtoy.sae.sweep) read their own schema with the same grammar.
"""

from __future__ import annotations

import dataclasses
import math
import tomllib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from geomtoy.checks import Bad, is_int, show, unknown_key
from geomtoy.spec import (
    FIELDS,
    OMITTED_AT_DEFAULT,
    REQUIRED,
    SCALES,
    SECTIONS,
    SMOKE_LIMITS,
    TOP_LEVEL,
    SweepError,
)
from geomtoy.sweep.grid import (
    HOST_BYTES_PER_INSTANCE,
    Axis,
    axis_length,
    check_grid_size,
    expand_axis,
    thin,
)


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


@dataclasses.dataclass(frozen=True)
class Parsed:
    """A sweep document after scale, overrides and checks, before grid expansion."""

    resolved: dict[str, Any]  # every scalar key, checked, defaults filled
    origins: dict[str, str]
    axes: tuple[Axis, ...]
    spec: dict  # the resolved spec document (meta.json, fingerprint)


def read_text(path) -> str:
    """The text of a sweep file; SweepError (one line) if it cannot be read as text."""
    try:
        return Path(path).read_text()
    except OSError as e:
        raise SweepError(str(path), None, f"cannot read: {e.strerror or e}") from None
    except UnicodeDecodeError:
        raise SweepError(str(path), None, "not a text file") from None


def is_sae_sweep(path) -> bool:
    """Whether a sweep file trains SAEs (it has an `[sae]` table, docs/sae.md); a file that
    cannot be read is not, and the toy loader reports it."""
    try:
        return "\n[sae]" in "\n" + Path(path).read_text()
    except (OSError, UnicodeDecodeError):
        return False


MAX_DEPTH = 32
"""The deepest nesting of tables and arrays a sweep file or --set value may have (a
sweep needs four; a deeper one is refused in one line, never a RecursionError)."""


def _check_depth(value, file: str, key: str | None) -> None:
    """SweepError if `value` nests tables or arrays deeper than MAX_DEPTH (iterative)."""
    stack = [(value, 0)]
    while stack:
        v, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise SweepError(file, key, f"nested more than {MAX_DEPTH} levels deep")
        if isinstance(v, dict):
            stack.extend((x, depth + 1) for x in v.values())
        elif isinstance(v, list):
            stack.extend((x, depth + 1) for x in v)


def parse(
    text: str, file: str, scale: str, sets: Sequence[str] = (), schema: Schema = TOY
) -> Parsed:
    """The shared grammar of sweep files: TOML, [scale.X] tables, --set, checks, axes."""
    try:
        return _parse(text, file, scale, sets, schema)
    except RecursionError:  # a value nested within the depth limit, still too deep here
        raise SweepError(file, None, "nested too deeply to read") from None


def _parse(text: str, file: str, scale: str, sets: Sequence[str], schema: Schema) -> Parsed:
    doc, scales = _read(text, file, scale)
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
    resolved, origins = _resolve(values, axes, file, schema)
    expanded = _expand_axes(resolved, origins, axes, file, schema)
    spec = _spec_document(resolved, {k: v.value for k, v in axes.items()}, schema)
    return Parsed(resolved, origins, expanded, spec)


def _read(text: str, file: str, scale: str) -> tuple[dict, dict]:
    """The TOML document without its [scale.X] tables, and those tables (checked)."""
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise SweepError(file, None, f"TOML syntax error: {e}") from None
    except RecursionError:
        raise SweepError(file, None, "TOML nested too deeply to read") from None
    _check_depth(doc, file, None)
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
    return doc, scales


def _grid_axes(item: dict, origin: str, file: str, schema: Schema, axes: dict) -> None:
    """Add the entries of a [grid] table to `axes` (data.x = [...] or "data.x" = [...])."""
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
                _grid_axes(item, origin, file, schema, axes)
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
    except RecursionError:
        raise SweepError(file, origin, "nested too deeply to read") from None
    _check_depth(value, file, origin)
    if key.startswith("grid."):
        return key[5:], _Value(value, f"--set {key}"), True
    if key == "name" or key not in schema.fields:
        if key == "name":
            raise SweepError(file, "--set name", "the name cannot be overridden")
        raise SweepError(file, f"--set {key}", unknown_key(key, list(schema.fields)))
    return key, _Value(value, f"--set {key}"), False


def _resolve(values: dict, axes: dict, file: str, schema: Schema):
    """Every scalar checked, defaults filled: ({key: value}, {key: origin})."""
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
    return resolved, origins


def _expand_axes(resolved, origins, axes: dict, file: str, schema: Schema) -> tuple[Axis, ...]:
    """The checked axes, after refusing a grid too large for int32 ids or the host."""
    seeds = resolved.get("train.seeds", 1)
    n_instances = math.prod(axis_length(v.value) for v in axes.values()) * seeds
    check_grid_size(n_instances, file, "grid" if axes else origins.get("train.seeds", "grid"))
    expanded = tuple(
        expand_axis(key, v.value, v.origin, file, schema.fields) for key, v in axes.items()
    )
    n_axis = next((a.values for a in expanded if a.key == "model.n_features"), ())
    n_max = max((*n_axis, resolved.get("model.n_features") or 1))
    if n_max > 1:  # per-feature hyperparameters, (I, n) float64, are on the host
        where = next((a.origin for a in expanded if a.key == "model.n_features"), None)
        where = where or origins.get("model.n_features", "grid")
        check_grid_size(n_instances, file, where, HOST_BYTES_PER_INSTANCE + 48 * n_max)
    return expanded


def _generic_smoke(values: dict, axes: dict, file: str, schema: Schema = TOY) -> None:
    for key, limit in schema.smoke_limits.items():
        current = values[key].value if key in values else schema.fields[key].default
        if is_int(current) and current > limit:
            values[key] = _Value(limit, f"scale smoke (generic) {key}")
    for key, spec in list(axes.items()):
        axis = expand_axis(key, spec.value, spec.origin, file, schema.fields)
        thinned = list(axis.values)
        if key in schema.smoke_limits:
            thinned = list(dict.fromkeys(min(v, schema.smoke_limits[key]) for v in thinned))
        axes[key] = _Value(thin(thinned), spec.origin + " (smoke: thinned)")


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
