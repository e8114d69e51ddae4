"""Sweep files: TOML + scale + --set overrides -> validated spec -> grid -> groups -> blocks.

`load` reads a sweep file (the format is described in docs/sweep-file.md), applies a scale
and the overrides, validates every value against `geomtoy.spec.FIELDS` (geomtoy.sweep.grammar)
and expands the grid into instances (geomtoy.sweep.grid). Instances that share a static `Shape`
form a group (one compiled program); a group is trained in blocks of bounded size
(geomtoy.sweep.plan). Every error is a `SweepError` naming the file, the key and the reason,
raised before anything touches the disk.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from geomtoy.spec import STATIC_KEYS, Shape, ShapeError, SweepError
from geomtoy.sweep.grammar import TOY, Parsed, Schema, parse, read_text
from geomtoy.sweep.grid import (
    EXTRA_LEAVES,
    Axis,
    check_finite_recipe,
    check_hierarchy,
    resolve_point,
)
from geomtoy.sweep.plan import Block, Group, Sweep, auto_block_size, check_snapshots

__all__ = [  # the front of the pipeline: its types are importable from here
    "TOY",
    "Axis",
    "Block",
    "Group",
    "Parsed",
    "Schema",
    "Sweep",
    "auto_block_size",
    "load",
    "loads",
    "parse",
]


def load(
    path: str | Path,
    scale: str = "default",
    sets: Sequence[str] = (),
) -> Sweep:
    """Read, validate and expand a sweep file at a scale with --set overrides.

    Raises SweepError (file, key, reason) for any bad input.
    """
    return loads(read_text(path), file=str(path), scale=scale, sets=sets)


def loads(
    text: str,
    file: str = "<string>",
    scale: str = "default",
    sets: Sequence[str] = (),
) -> Sweep:
    """Like `load`, from the text of a sweep file."""
    return _expand(file, text, scale, tuple(sets), parse(text, file, scale, sets))


def _point_shape(point: dict, file: str) -> Shape:
    """The static shape of one grid point (its group's compiled program)."""
    try:
        return Shape(**{k.split(".", 1)[1]: point[k] for k in STATIC_KEYS})
    except ShapeError as e:  # valid values that do not go together (Shape.problem)
        raise SweepError(file, e.key, e.reason) from None


def _group_points(file: str, p: Parsed):
    """Every grid point's group: ({Shape: group}, per group [(point, fp, imp, lr, wd)],
    the group of each point), points in axis order (first axis slowest)."""
    group_keys: dict[Shape, int] = {}
    members: list[list] = []
    point_group = []
    for i_point, combo in enumerate(itertools.product(*(enumerate(a.values) for a in p.axes))):
        point = dict(p.resolved)
        point_origins = dict(p.origins)
        for axis, (i, value) in zip(p.axes, combo):
            point[axis.key] = value
            point_origins[axis.key] = f"{axis.origin}[{i}]"
        shape = _point_shape(point, file)
        leaves = resolve_point(point, point_origins, file)
        if shape.structure == "hierarchical":
            check_hierarchy(leaves[0], shape.set_size, file)
        if shape.n_samples:
            check_finite_recipe(point, file)
        g = group_keys.setdefault(shape, len(group_keys))
        if g == len(members):
            members.append([])
        members[g].append((i_point, *leaves))
        point_group.append(g)
    return group_keys, members, point_group


def _group(g: int, shape: Shape, rows: list, seeds: int, block_setting) -> Group:
    """Group g: its grid points' rows, each repeated for every seed."""
    pts = np.asarray([r[0] for r in rows], np.int64)
    instance = (pts[:, None] * seeds + np.arange(seeds)[None, :]).reshape(-1)

    def stack(j):
        return np.repeat(np.stack([np.asarray(r[j], np.float64) for r in rows]), seeds, axis=0)

    block = auto_block_size(shape) if block_setting == "auto" else block_setting
    return Group(
        index=g,
        shape=shape,
        instance=instance,
        seed=np.tile(np.arange(seeds), len(rows)),
        feature_probability=stack(1),
        importance=stack(2),
        lr=stack(3),
        weight_decay=stack(4),
        block_size=min(block, len(instance)),
        extra={
            leaf: np.repeat(np.asarray([r[5][leaf] for r in rows]), seeds)
            for leaf in EXTRA_LEAVES.values()
        },
    )


def _expand(file: str, source: str, scale: str, sets: tuple, p: Parsed) -> Sweep:
    resolved = p.resolved
    seeds = resolved["train.seeds"]
    group_keys, members, point_group = _group_points(file, p)
    n_points = len(point_group)
    row_of = np.zeros(n_points * seeds, np.int64)
    groups = []
    for shape, g in group_keys.items():
        group = _group(g, shape, members[g], seeds, resolved["train.block_size"])
        row_of[group.instance] = np.arange(len(group))
        groups.append(group)
    sweep = Sweep(
        name=resolved["name"],
        file=file,
        source=source,
        scale=scale,
        sets=sets,
        spec=p.spec,
        axes=p.axes,
        root_seed=resolved["root_seed"],
        seeds=seeds,
        chunk_steps=resolved["train.chunk_steps"],
        checkpoint_every=resolved["train.checkpoint_every"],
        point=np.repeat(np.arange(n_points), seeds),
        seed=np.tile(np.arange(seeds), n_points),
        group_of=np.repeat(np.asarray(point_group, np.int64), seeds),
        row_of=row_of,
        groups=tuple(groups),
        snapshots=resolved["train.snapshots"],
    )
    if sweep.snapshots:
        check_snapshots(sweep, file, p.origins["train.snapshots"])
    return sweep
