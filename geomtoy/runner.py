"""Run a sweep into a results directory: plan, train blocks, checkpoint, resume, assemble.

A sweep is trained as a sequence of blocks (`geomtoy.sweep.Sweep.blocks`): rows of one
static shape group, at most `train.block_size` instances, so memory stays bounded for any
grid. Each block is written to blocks/ when it ends and is skipped by a resumed run; the
block in training is checkpointed every `train.checkpoint_every` chunks and a resumed run
continues from the checkpoint. An instance's random stream depends only on (root seed,
instance id, seed, step) (geomtoy.rng), so a resumed run ends with the same tables as one
never interrupted. Block files are also the per-process part files of a multi-host run:
process p trains blocks b with b % process_count == p, and the tables are assembled once
every block is there (`finish`).

Snapshots (train.snapshots, paper §6): the weights at the end of each chunk are copied on
device (train_chunk donates the state) and fetched with that chunk's loss, after the next
chunk is dispatched, so a chunk still costs one host sync. They are kept in the checkpoint
and the block file, so a resumed run gives the same curves.npz.

Every check of the output directory happens before anything is written, so a refused run
leaves it byte-identical; tables are written before meta.json says `complete`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import platform
import shlex
import shutil
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import jaxlib
import numpy as np
import optax
import pyarrow as pa

import geomtoy
from geomtoy import parallel, spec, train
from geomtoy.geometry.tables import geometry_tables
from geomtoy.progress import Progress
from geomtoy.results import (
    FORMAT,
    GEOMETRY_COLUMNS,
    TABLES,
    Results,
    ResultsDir,
    atomic_save_npz,
    atomic_write_json,
    atomic_write_parquet,
    gather,
    load_npz,
    now,
    open_results,
    write_tables,
)
from geomtoy.spec import SweepError
from geomtoy.sweep import Block, Group, Sweep, loads

# ---------------------------------------------------------------- deciding what to do


@dataclasses.dataclass(frozen=True)
class Plan:
    """What a run will do with its output directory, decided before writing anything."""

    action: str  # "fresh" | "resume" | "complete" (nothing to train)
    meta: dict | None  # the existing meta.json, if any
    overwrite: bool


def _flat(document: Mapping) -> dict[str, Any]:
    """A spec document as {dotted key: value}; grid axes as "grid.<key>"."""
    out = {}
    for k, v in document.items():
        if k in (*spec.SECTIONS, "grid") and isinstance(v, dict):
            out |= {f"{k}.{kk}": vv for kk, vv in v.items()}
        else:
            out[k] = v
    return out


def _first_difference(old: dict, new: dict) -> str:
    """The first key whose value differs between two spec documents, for messages."""
    a, b = _flat(old), _flat(new)
    for key in list(b) + [k for k in a if k not in b]:
        there, here = (json.dumps(d.get(key, "<absent>")) for d in (a, b))
        if there != here:
            return f"{key}: {there} there, {here} here"
    return "same spec, different fingerprint (another geomtoy version?)"


def plan_run(sweep: Sweep, out: Path, *, resume: bool = False, overwrite: bool = False) -> Plan:
    """Check the output directory against the sweep; SweepError (exit 2) if refused.

    Fresh directory (absent, empty, or only blocks/ written by other processes of a
    multi-host run, whose block files carry the fingerprint): train. Same sweep, status
    running: resume. Same sweep, complete, all tables present: nothing to do. A
    different sweep, or a non-empty directory that is not a results directory: refused,
    unless `overwrite` (only for results directories). `resume` requires a run to resume.
    """
    out = Path(out)
    rd = ResultsDir(out)
    if out.exists() and not out.is_dir():
        raise SweepError(out, None, "exists and is not a directory")
    meta = rd.read_meta() if out.is_dir() else None
    if meta is None:
        if out.is_dir() and any(p.name != "blocks" for p in out.iterdir()):
            reason = "not a geomtoy results directory (non-empty, no meta.json); use another --out"
            raise SweepError(out, "meta.json", reason)
        if resume:
            raise SweepError(out, None, "--resume: no run to resume here")
        return Plan("fresh", None, overwrite)
    if overwrite:
        return Plan("fresh", meta, True)
    if meta["fingerprint"] != sweep.fingerprint():
        why = _first_difference(meta.get("spec", {}), sweep.spec)
        if meta.get("scale") != sweep.scale:
            why = f"scale {meta.get('scale')} there, {sweep.scale} here; {why}"
        reason = f"holds a different sweep ({why}); use another --out, or --overwrite to replace it"
        raise SweepError(out, "meta.json", reason)
    if meta["status"] == "complete":
        missing = [t for t in TABLES if not rd.table(t).exists()]
        if missing:
            raise SweepError(out, missing[0], "missing from a complete run; rerun with --overwrite")
        return Plan("complete", meta, False)
    return Plan("resume", meta, False)


# ---------------------------------------------------------------- running


@dataclasses.dataclass(frozen=True)
class RunReport:
    """What `run_sweep` did."""

    path: Path
    action: str  # fresh | resume | complete
    trained_blocks: int
    complete: bool
    wall_time_s: float


def _environment() -> dict:
    return {
        "versions": {
            "python": platform.python_version(),
            "jax": jax.__version__,
            "jaxlib": jaxlib.__version__,
            "geomtoy": geomtoy.__version__,
            "numpy": np.__version__,
            "optax": optax.__version__,
            "pyarrow": pa.__version__,
        },
        "backend": jax.default_backend(),
        "devices": [str(d) for d in jax.devices()],
        "host": platform.node(),
    }


def _new_meta(sweep: Sweep, command: str) -> dict:
    return {
        "format": FORMAT,
        "name": sweep.name,
        "status": "running",
        "fingerprint": sweep.fingerprint(),
        "file": sweep.file,
        "scale": sweep.scale,
        "sets": list(sweep.sets),
        "command": command,
        "spec": sweep.spec,
        "axes": {a.key: list(a.values) for a in sweep.axes},
        "n_instances": sweep.n_instances,
        "n_points": sweep.n_points,
        "seeds": sweep.seeds,
        "groups": [
            {"shape": dataclasses.asdict(g.shape), "instances": len(g), "block_size": g.block_size}
            for g in sweep.groups
        ],
        "n_blocks": len(sweep.blocks()),
        "blocks_done": 0,
        "created": now(),
        "updated": now(),
        "wall_time_s": 0.0,
        "runs": [],
        "source": sweep.source,
    }


def run_sweep(
    sweep: Sweep,
    out: str | Path,
    *,
    command: str = "",
    resume: bool = False,
    overwrite: bool = False,
    progress: Progress | None = None,
    process_index: int = 0,
    process_count: int = 1,
) -> RunReport:
    """Train every unfinished block of `sweep` into `out` and assemble the tables.

    Refusals raise SweepError before anything is written. `process_index/process_count`
    select this process's blocks (block b goes to process b % process_count); only
    process 0 writes meta.json and assembles the tables, and only once all blocks are
    there (else `finish` does it later).
    """
    out = Path(out)
    plan = plan_run(sweep, out, resume=resume, overwrite=overwrite)
    rd = ResultsDir(out)
    if plan.action == "complete":
        return RunReport(out, "complete", 0, True, 0.0)

    started, t0 = now(), time.perf_counter()
    env = _environment()
    leader = process_index == 0
    meta = _new_meta(sweep, command) if plan.action == "fresh" else plan.meta
    meta |= env
    this_run = {"command": command, "started": started, "wall_time_s": 0.0}
    this_run["devices"] = env["devices"]
    meta["runs"] = [*meta["runs"], this_run]
    # Blocks padded to a multiple of the device count, so every device gets a share;
    # the rows of each block do not depend on it, only the padding.
    blocks = sweep.blocks(multiple=parallel.instance_multiple())

    def save_meta(status: str, wall: float) -> None:
        if not leader:
            return
        this_run["wall_time_s"] = round(wall, 3)
        meta["status"] = status
        meta["updated"] = now()
        meta["blocks_done"] = sum(rd.block(b.index).exists() for b in blocks)
        meta["wall_time_s"] = round(sum(r["wall_time_s"] for r in meta["runs"]), 3)
        atomic_write_json(rd.meta, meta)

    out.mkdir(parents=True, exist_ok=True)
    save_meta("running", 0.0)
    if plan.overwrite and leader:  # after the new meta: stale files can no longer pass as results
        for name in TABLES:
            with contextlib.suppress(FileNotFoundError):
                rd.table(name).unlink()
        shutil.rmtree(rd.blocks, ignore_errors=True)
    rd.blocks.mkdir(parents=True, exist_ok=True)
    rd.remove_stale_temporaries()

    mine = [b for b in blocks if b.index % process_count == process_index]
    todo = [b for b in mine if not _block_done(rd, b, sweep)]
    progress = progress or Progress(stream=None)
    groups = list(dict.fromkeys(b.group for b in todo))  # in training order
    progress.start(
        sweep.name,
        total=sum(len(b.rows) * sweep.groups[b.group].shape.steps for b in todo),
        n_blocks=len(blocks),
        done_blocks=len(blocks) - len(todo) if process_count == 1 else None,
        instances=sweep.n_instances,
        n_groups=len(groups),
        out=out,
        log=rd.path / "progress.jsonl" if leader else None,
        fresh=plan.action == "fresh" or plan.overwrite,
    )

    started = set()
    for block in todo:
        if block.group not in started:  # its program compiles with this block
            started.add(block.group)
            s = sweep.groups[block.group].shape
            label = f"{s.kind}, n={s.n_features}, m={s.n_hidden}"
            progress.group(groups.index(block.group), len(groups), label)
        _train_block(sweep, block, rd, progress)
        save_meta("running", time.perf_counter() - t0)

    complete = False
    if leader and all(rd.block(b.index).exists() for b in blocks):
        progress.note("assembling tables")
        assemble(sweep, rd)
        save_meta("complete", time.perf_counter() - t0)
        shutil.rmtree(rd.blocks, ignore_errors=True)
        complete = True
    progress.close()
    return RunReport(out, plan.action, len(todo), complete, time.perf_counter() - t0)


def _block_done(rd: ResultsDir, block: Block, sweep: Sweep) -> bool:
    path = rd.block(block.index)
    if not path.exists():
        return False
    try:
        with np.load(path, allow_pickle=False) as z:
            ok = str(z["fingerprint"]) == sweep.fingerprint()
    except Exception:  # a damaged block file is retrained, never trusted
        ok = False
    if not ok:
        path.unlink()
    return ok


def finish(path: str | Path) -> Results:
    """Assemble the tables of a run whose blocks are all on disk, e.g. written by the
    processes of a multi-host run; a complete directory is returned as it is.

    The sweep is rebuilt from meta.json (source text, scale, overrides) and must still
    have the recorded fingerprint. SweepError if blocks are missing.
    """
    rd = ResultsDir(Path(path))
    meta = rd.read_meta()
    if meta is None:
        raise SweepError(rd.path, "meta.json", "not a geomtoy results directory")
    if meta["status"] != "complete":
        sweep = loads(meta["source"], file=meta["file"], scale=meta["scale"], sets=meta["sets"])
        if sweep.fingerprint() != meta["fingerprint"]:
            reason = "the recorded sweep no longer gives its fingerprint (another geomtoy version?)"
            raise SweepError(rd.meta, "fingerprint", reason)
        blocks = sweep.blocks()
        missing = [b for b in blocks if not _block_done(rd, b, sweep)]
        if missing:
            example = rd.block(missing[0].index).name
            reason = f"{len(missing)} of {len(blocks)} blocks missing, e.g. {example}"
            raise SweepError(rd.path, "blocks", reason)
        assemble(sweep, rd)
        meta |= {"status": "complete", "updated": now(), "blocks_done": len(blocks)}
        atomic_write_json(rd.meta, meta)
        shutil.rmtree(rd.blocks, ignore_errors=True)
    return open_results(rd.path)


def _train_block(sweep: Sweep, block: Block, rd: ResultsDir, progress: Progress) -> None:
    """Train one block to the end, checkpointing, and write its block file."""
    group: Group = sweep.groups[block.group]
    shape = group.shape
    rows = block.padded_rows
    ids = group.instance[rows]
    hp = train.HParams.create(**group.leaves(rows))
    chunks = sweep.chunks(group)
    root = sweep.root_seed
    fingerprint = sweep.fingerprint()

    structure = jax.eval_shape(lambda hp: train.init_state(shape, hp, root), hp)
    ckpt = _load_checkpoint(
        rd.checkpoint(block.index), ids, fingerprint, structure, sweep.snapshots
    )
    if ckpt is None:
        state, done, curves, snaps = train.init_state(shape, hp, root), 0, [], []
    else:
        state, done, curves, snaps = ckpt
    progress.block(block.index, len(block.rows), steps=shape.steps, step=sum(chunks[:done]))

    def fetch(pending) -> None:
        loss, snap = _report(progress, pending, chunks, len(block.rows))
        curves.append(loss)
        if snap is not None:
            snaps.append(snap)

    pending = None  # the previous chunk's loss (and snapshot), fetched after the next dispatch
    for k in range(done, len(chunks)):
        state, chunk_loss = train.train_chunk(state, hp, shape, chunks[k], root)
        # A device copy: the next train_chunk donates (invalidates) state.params.
        snap = jax.tree.map(jnp.copy, state.params) if sweep.snapshots else None
        if pending is not None:
            fetch(pending)
        pending = (k, chunk_loss, snap)
        if (k + 1) % sweep.checkpoint_every == 0 and k + 1 < len(chunks):
            fetch(pending)
            pending = None
            _save_checkpoint(
                rd.checkpoint(block.index), ids, fingerprint, state, k + 1, curves, snaps
            )
    if pending is not None:
        fetch(pending)

    loss = np.asarray(train.evaluate(state.params, hp, shape, root))
    params = jax.device_get(state.params)
    diverged = train.is_diverged(loss, params)
    n = len(block.rows)
    arrays = {
        "fingerprint": np.asarray(fingerprint),
        "instance": ids[:n],
        "loss": loss[:n],
        "diverged": diverged[:n],
        "train_loss": curves[-1][:n],
        "curve_loss": np.stack(curves, axis=1)[:n],
        "curve_step": np.cumsum(chunks),
        "W": np.asarray(params.W)[:n],
        "b": np.asarray(params.b)[:n],
    }
    if params.W2 is not None:
        arrays["W2"] = np.asarray(params.W2)[:n]
    if sweep.snapshots:
        arrays |= {f"snapshot_{k}": v[:n] for k, v in _stack_snapshots(snaps).items()}
    atomic_save_npz(rd.block(block.index), arrays)
    with contextlib.suppress(FileNotFoundError):
        rd.checkpoint(block.index).unlink()
    progress.block_end(int(np.sum(diverged[:n])))


SNAPSHOT_FIELDS = ("W", "b", "W2")
"""Params fields recorded by train.snapshots, as snapshot_<field> in curves.npz."""


def _report(progress: Progress, pending, chunks: list[int], n_real: int):
    """Fetch one chunk's losses and snapshot (the one host sync of a chunk), report them.

    Returns (losses (I,), snapshot {name: (I, ...)} or None)."""
    k, chunk_loss, snap = pending
    losses, snap = jax.device_get((chunk_loss, snap))
    losses = np.asarray(losses)
    if snap is not None:
        snap = {
            f: np.asarray(getattr(snap, f)) for f in SNAPSHOT_FIELDS if getattr(snap, f) is not None
        }
    step, model_steps = sum(chunks[: k + 1]), chunks[k] * n_real
    progress.chunk(step=step, model_steps=model_steps, losses=losses[:n_real])
    return losses, snap


def _stack_snapshots(snaps: list[dict]) -> dict[str, np.ndarray]:
    """Per-chunk snapshots [{field: (I, ...)}] as {field: (I, S, ...)}."""
    if not snaps:
        return {}
    return {f: np.stack([s[f] for s in snaps], axis=1) for f in snaps[0]}


def _save_checkpoint(
    path: Path, ids, fingerprint: str, state, chunks_done: int, curves, snaps=()
) -> None:
    leaves = jax.device_get(jax.tree_util.tree_leaves(state))
    arrays = {f"leaf_{i:03d}": np.asarray(a) for i, a in enumerate(leaves)}
    arrays |= {
        "fingerprint": np.asarray(fingerprint),
        "instance": np.asarray(ids),
        "chunks_done": np.asarray(chunks_done),
        "curve_loss": np.stack(curves, axis=1),
    }
    arrays |= {f"snapshot_{k}": v for k, v in _stack_snapshots(list(snaps)).items()}
    atomic_save_npz(path, arrays)


def _load_checkpoint(path: Path, ids, fingerprint: str, structure, snapshots: bool = False):
    """(state, chunks_done, curves, snapshots) from a checkpoint matching this block, else
    None.

    `structure` is the state's pytree of ShapeDtypeStructs (jax.eval_shape of
    init_state): a checkpoint whose leaves do not match it is discarded, and so is one
    without a snapshot per chunk done when `snapshots` is on.
    """
    if not path.exists():
        return None
    try:
        z = load_npz(path)
        leaves, treedef = jax.tree_util.tree_flatten(structure)
        saved = [z[f"leaf_{i:03d}"] for i in range(len(leaves))]
        ok = (
            str(z["fingerprint"]) == fingerprint
            and np.array_equal(z["instance"], ids)
            and all(s.shape == a.shape and s.dtype == a.dtype for s, a in zip(saved, leaves))
            and f"leaf_{len(leaves):03d}" not in z
        )
        done = int(z["chunks_done"])
        stacked = {k[len("snapshot_") :]: v for k, v in z.items() if k.startswith("snapshot_")}
        if snapshots:
            ok = (
                ok
                and "W" in stacked
                and all(v.shape[:2] == (len(ids), done) for v in stacked.values())
            )
    except Exception:  # unreadable: train the block from the start
        ok = False
    if not ok:
        path.unlink()
        return None
    state = jax.tree_util.tree_unflatten(treedef, [jnp.asarray(a) for a in saved])
    curves = list(z["curve_loss"].T)
    snaps = [{f: v[:, j] for f, v in stacked.items()} for j in range(done)] if snapshots else []
    return state, done, curves, snaps


def assemble(sweep: Sweep, rd: ResultsDir) -> None:
    """Join all block files into the four tables, with the geometry of the weights."""
    params, columns, curves = gather(sweep, rd)
    instances, features = geometry_tables(params, columns, columns["diverged"])
    write_tables(rd, params, curves, instances, features)


def analyze_dir(path: str | Path) -> Results:
    """Recompute the geometry columns of instances.parquet and all of features.parquet
    from params.npz (e.g. after the geometry module changed); other columns are kept."""
    res = open_results(path)
    rd = ResultsDir(res.path)
    names = res.instances.column_names
    kept = {c: res.instances.column(c) for c in names if c not in GEOMETRY_COLUMNS}
    diverged = res.column("diverged").astype(bool)
    instances, features = geometry_tables(res.params, kept, diverged)
    order = [c for c in names if c in instances]
    instances = {c: instances[c] for c in order} | instances
    atomic_write_parquet(rd.table("features.parquet"), features)
    atomic_write_parquet(rd.table("instances.parquet"), instances)
    atomic_write_json(rd.meta, res.meta | {"analyzed": now()})
    return open_results(path)


def command_line(argv: list[str]) -> str:
    """argv as one shell-quoted line, for meta.json."""
    return " ".join(shlex.quote(a) for a in argv)
