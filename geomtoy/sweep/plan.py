"""The expanded sweep: its instances, their groups (one compiled program each) and blocks.

A `Sweep` holds the instance table (grid point, seed, group and row of each instance) and its
`Group`s, whose per-instance hyperparameters are host NumPy arrays; `Sweep.blocks` cuts each
group into blocks of bounded size, `Sweep.chunks` gives a group's chunk schedule.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from typing import Any

import numpy as np

from geomtoy.spec import (
    AUTO_BLOCK_BYTES,
    HASH_EXCLUDED,
    SNAPSHOT_BYTES,
    Shape,
    SweepError,
    chunk_schedule,
)
from geomtoy.sweep.grid import Axis


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
    extra: dict[str, np.ndarray] = dataclasses.field(default_factory=dict)  # grid.EXTRA_LEAVES

    def __len__(self) -> int:
        return len(self.instance)

    def leaves(self, rows: np.ndarray) -> dict[str, Any]:
        """The per-instance hyperparameters of rows of this group, as the keyword
        arguments of `geomtoy.engine.train.HParams.create`."""
        return dict(
            n_instances=len(rows),
            n_features=self.shape.n_features,
            feature_probability=self.feature_probability[rows],
            importance=self.importance[rows],
            lr=self.lr[rows],
            weight_decay=self.weight_decay[rows],
            seed=self.seed[rows],
            instance_id=self.instance[rows],
        ) | {leaf: values[rows] for leaf, values in self.extra.items()}


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
            n = g.shape.n_features
            per_snapshot = g.shape.weight_rows * n + n
            total += 4 * len(g) * len(self.chunks(g)) * per_snapshot
        return total

    def blocks(self, multiple: int = 1) -> list[Block]:
        """The sweep's blocks (`cut_blocks`)."""
        return cut_blocks(self.groups, multiple)


def cut_blocks(groups, multiple: int = 1) -> list[Block]:
    """The blocks of `groups` (each with index, block_size and a length), group by group,
    each of nearly equal size within a group, padded to a multiple of `multiple` (e.g.
    the device count): the one block rule of every family's sweep."""
    out = []
    for g in groups:
        n_blocks = math.ceil(len(g) / g.block_size)
        size = math.ceil(len(g) / n_blocks)
        size = math.ceil(size / multiple) * multiple
        for rows in np.array_split(np.arange(len(g)), n_blocks):
            out.append(Block(len(out), g.index, rows, size))
    return out


def auto_block_size(shape: Shape) -> int:
    """Instances per block so one step's temporaries stay near `AUTO_BLOCK_BYTES`.

    A step holds a few (n, B) and (m, B) float32 arrays per instance (uniforms, x, h,
    x_hat and their gradients); evaluation uses batches of at most EVAL_BATCH samples.
    """
    batch = max(shape.batch_size, shape.eval_batch)
    if shape.n_samples:  # full batch: the (n, T) output and x, or the sparse loss blocks
        batch = max(min(shape.n_samples, 2**20 // shape.n_features), min(shape.eval_samples, 4096))
    per_instance = 4 * batch * (6 * shape.n_features + 3 * shape.n_hidden)
    return int(max(1, min(65536, AUTO_BLOCK_BYTES // per_instance)))


def check_snapshots(sweep: Sweep, file: str, origin: str) -> None:
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
