"""Run a sweep into a results directory: plan, train blocks, checkpoint, resume, assemble.

A sweep is trained as a sequence of blocks (`geomtoy.sweep.Sweep.blocks`): rows of one
static shape group, at most `train.block_size` instances, so memory stays bounded for any
grid. Each block is written to blocks/ when it ends and is skipped by a resumed run; the
block in training is checkpointed every `train.checkpoint_every` chunks and a resumed run
continues from the checkpoint. An instance's random stream depends only on (root seed,
instance id, seed, step) (geomtoy.engine.rng), so a resumed run ends with the same tables as one
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
import functools
import importlib.util
import platform
import shlex
import threading
import time
from pathlib import Path

import jax
import jaxlib
import numpy as np
import optax
import pyarrow as pa

import geomtoy
from geomtoy import sae  # noqa: F401  (registers the SAE family)
from geomtoy.engine import parallel, train
from geomtoy.engine.families import by_name, family_of, of_sweep
from geomtoy.geometry.tables import geometry_tables
from geomtoy.results import integrity
from geomtoy.results.store import (
    FORMAT,
    GEOMETRY_COLUMNS,
    Results,
    ResultsDir,
    atomic_save_npz,
    atomic_write_json,
    atomic_write_parquet,
    existing_directory,
    now,
    open_results,
)
from geomtoy.runs import budget, checkpoint, jobs, lock, memory, signals
from geomtoy.runs.directory import Writer, block_problem, leftovers, merge, plan_run
from geomtoy.runs.progress import Progress
from geomtoy.spec import SweepError
from geomtoy.sweep.plan import Block, Sweep

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
    } | of_sweep(sweep).meta(sweep)


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
    worker: jobs.Worker | None = None,
    mesh=None,
) -> RunReport:
    """Train every unfinished block of `sweep` that is this process's into `out`, and
    assemble the tables if it finds every block done (geomtoy.runs.directory).

    Refusals raise SweepError before anything is written. `worker=(K, N)` (a job-array
    task) or `process_index/process_count` (a jax.distributed job) select the blocks
    b % N == K; the run then shares the directory with the other tasks. `mesh`: the
    instance mesh to train over (parallel.setup's; None: one device or jax.set_mesh's).
    """
    mesh = parallel.current_mesh(mesh)
    out = Path(out)
    if worker is None and process_count > 1:
        worker = (process_index, process_count)
    plan = plan_run(sweep, out, resume=resume, overwrite=overwrite, worker=worker)
    rd = ResultsDir(out)
    if plan.action == "complete" and not leftovers(rd):
        return RunReport(out, "complete", 0, True, 0.0)
    sweep = device_blocks(sweep, mesh)  # on an accelerator: from its memory
    # Blocks padded to a multiple of the device count, so every device gets a share;
    # the rows of each block do not depend on it, only the padding.
    blocks = sweep.blocks(multiple=parallel.instance_multiple(mesh))
    check_memory(sweep, blocks, mesh)
    signals.check()
    t0 = time.perf_counter()
    _import_in_background("pandas")
    env = _environment()
    record = {"command": command, "started": now(), "wall_time_s": 0.0, "devices": env["devices"]}
    if worker is not None:
        record["worker"] = f"{worker[0]}/{worker[1]}"
    with Writer(sweep, out, plan, worker=worker, command=command) as writer:
        if writer.start(lambda: _new_meta(sweep, command) | env, record) is None:
            return RunReport(out, "complete", 0, True, 0.0)
        mine = [b for b in blocks if jobs.owns(b.index, worker)]
        progress = progress or Progress(stream=None)
        todo, groups = _begin(sweep, rd, blocks, mine, progress, worker, plan)
        done = len(mine) - len(todo)
        for k in _train_blocks(sweep, rd, todo, groups, progress, mesh):
            writer.update(time.perf_counter() - t0, done + k)
        complete = writer.finish(
            time.perf_counter() - t0, lambda: of_sweep(sweep).assemble(sweep, rd), sweep.blocks()
        )
    progress.close()
    return RunReport(out, plan.action, len(todo), complete, time.perf_counter() - t0)


def _import_in_background(name: str) -> None:
    """Import `name` (if installed) in a thread while the blocks train: pyarrow imports
    pandas at its first table, 0.3-0.4 s a short run would otherwise wait for at its end."""
    if importlib.util.find_spec(name) is not None:
        threading.Thread(target=_import_quietly, args=(name,)).start()


def _import_quietly(name: str) -> None:
    with contextlib.suppress(Exception):  # a broken install fails where it is used
        importlib.import_module(name)


def _train_blocks(sweep, rd: ResultsDir, todo, groups, progress: Progress, mesh):
    """Train the blocks still to do in order, naming each group as its program compiles
    (with its first block); yields k after the k-th block but the last."""
    started = set()
    for i, block in enumerate(todo):
        if block.group not in started:  # its program compiles with this block
            started.add(block.group)
            shape = sweep.groups[block.group].shape
            label = family_of(shape).label(shape)
            progress.group(groups.index(block.group), len(groups), label)
        _train_block(sweep, block, rd, progress, mesh)
        if i + 1 < len(todo):
            yield i + 1


def _begin(sweep, rd: ResultsDir, blocks, mine, progress: Progress, worker, plan):
    """This process's blocks still to train (a damaged one is named) and their groups in
    training order; the progress header."""
    problems = {b.index: block_problem(rd, b, sweep) for b in mine}
    todo = [b for b in mine if problems[b.index] is not None]
    groups = list(dict.fromkeys(b.group for b in todo))
    progress.start(
        sweep.name,
        total=sum(len(b.rows) * sweep.groups[b.group].shape.steps for b in todo),
        n_blocks=len(blocks),
        done_blocks=len(mine) - len(todo),
        instances=sweep.n_instances,
        n_groups=len(groups),
        out=rd.path,
        log=rd.path / "progress.jsonl" if jobs.owns(0, worker) else None,
        fresh=plan.action == "fresh" or plan.overwrite,
    )
    for b in todo:
        if problems[b.index] != "missing":
            progress.note(f"{rd.block(b.index).name}: {problems[b.index]}; training it again")
    return todo, groups


def backend() -> str:
    """The platform training runs on ("cpu", "gpu", "tpu")."""
    return jax.default_backend()


def device_blocks(sweep: Sweep, mesh=None, *, platform: str | None = None, memory=None) -> Sweep:
    """The sweep with the block sizes it trains in on these devices. On an accelerator
    (GPU, TPU), train.block_size = "auto" becomes the size whose programs fill
    cost.DEVICE_MEMORY_FRACTION of one device's memory (`memory` bytes, default the
    allocator's limit; bytes per instance from the compiled programs' memory analysis
    where the backend gives it, else cost's model: budget.fit_blocks), so that no block
    of any sweep, 10^6 instances or more, exceeds device memory. On CPU, and for a block
    size the sweep sets, the sweep's own blocks (cache-sized sub-blocks run inside)."""
    platform = platform or backend()
    return budget.fit_blocks(sweep, platform, parallel.instance_multiple(mesh), memory)


def recorded_blocks(sweep: Sweep, meta: dict) -> Sweep:
    """The sweep with the block sizes meta.json records (those it was trained in)."""
    sizes = [g.get("block_size") for g in meta.get("groups", [])]
    if len(sizes) != len(sweep.groups) or not all(sizes):
        return sweep
    groups = tuple(dataclasses.replace(g, block_size=s) for g, s in zip(sweep.groups, sizes))
    return dataclasses.replace(sweep, groups=groups)


def check_memory(sweep: Sweep, blocks: list[Block] | None = None, mesh=None) -> None:
    """Refuse (SweepError) a sweep one of whose blocks cannot fit on its devices."""
    n_devices = parallel.instance_multiple(mesh)
    blocks = blocks or sweep.blocks(multiple=n_devices)
    limit, what = memory.device_memory()
    platform = backend()
    for shape, size in {(sweep.groups[b.group].shape, b.size) for b in blocks}:
        per_device = -(-size // n_devices)
        at_once = train.instance_block(shape, per_device, platform) or per_device
        why = memory.block_problem(shape, per_device, at_once, limit, what)
        if why:
            raise SweepError(sweep.file, "train.block_size", why)


def finish(path: str | Path) -> Results:
    """`geomtoy merge`: assemble the tables of a run whose block files were written by
    other processes (geomtoy.runs.directory.merge); returns the complete results."""

    def rebuild(meta: dict) -> Sweep:
        sweep = by_name(meta.get("family", "toy")).load(meta, Path(path))
        if sweep.fingerprint() != meta["fingerprint"]:
            reason = "the recorded sweep no longer gives its fingerprint (another geomtoy version?)"
            raise SweepError(Path(path) / "meta.json", "fingerprint", reason)
        return recorded_blocks(sweep, meta)  # the blocks its processes trained

    path = existing_directory(path)
    merge(path, rebuild, lambda sweep, rd: of_sweep(sweep).assemble(sweep, rd))
    return open_results(path)


def _train_block(sweep: Sweep, block: Block, rd: ResultsDir, progress: Progress, mesh) -> None:
    """Train one block of any family to the end, checkpointing, and write its block file."""
    signals.check()  # a signal between blocks: the last one is written, stop here
    group = sweep.groups[block.group]
    family = family_of(group.shape)
    ids = group.instance[block.padded_rows]
    hp = family.hparams(sweep, group, block.padded_rows, mesh)
    shape = train.resolve(group.shape, hp)  # the engine's static shape of this block
    chunks, root, fingerprint = sweep.chunks(group), sweep.root_seed, sweep.fingerprint()

    structure = functools.partial(jax.eval_shape, lambda h: train.init_state(shape, h, root), hp)
    ckpt = checkpoint.load(rd.checkpoint(block.index), ids, fingerprint, structure, sweep.snapshots)
    if ckpt is None:
        state, done, curves, snaps = train.init_state(shape, hp, root), 0, [], []
    else:
        state, done, curves, snaps = ckpt
    progress.block(block.index, len(block.rows), steps=shape.steps, step=sum(chunks[:done]))

    def on_chunk(chunk: train.Chunk) -> None:
        n_real = len(block.rows)
        progress.chunk(
            step=chunk.step, model_steps=chunk.n_steps * n_real, losses=chunk.loss[:n_real]
        )
        curves.append(chunk.loss)
        if chunk.snapshot is not None:
            snaps.append(chunk.snapshot)

    def on_checkpoint(state, chunks_done: int) -> None:
        checkpoint.save(
            rd.checkpoint(block.index), ids, fingerprint, state, chunks_done, curves, snaps
        )

    evaluation = {}

    def dispatch_evaluation(state) -> None:  # behind the last chunk, before its fetch
        evaluate = family.evaluate or (lambda s, *a: train.evaluate(s.params, *a))
        evaluation["out"] = evaluate(state, hp, shape, root)

    state = train.run_chunks(
        state,
        hp,
        shape,
        chunks,
        root,
        start=done,
        snapshots=sweep.snapshots,
        on_chunk=on_chunk,
        checkpoint_every=sweep.checkpoint_every,
        on_checkpoint=on_checkpoint,
        checkpoint_now=lambda: signals.pending() is not None,  # SIGTERM, SIGHUP, Ctrl-C
        on_stop=signals.check,  # checkpointed: stop here
        before_last_fetch=dispatch_evaluation,
    )
    arrays = family.finish(shape, state, hp, evaluation["out"], curves)
    _write_block(rd, block, sweep, ids, arrays, curves, snaps, progress)


def _write_block(rd, block: Block, sweep: Sweep, ids, arrays, curves, snaps, progress) -> None:
    """Write a trained block's file: the family's arrays (`Family.finish`) and the common
    ones, of its real (unpadded) instances, with a content checksum; the checkpoint goes."""
    n = len(block.rows)
    arrays = {name: np.asarray(a)[:n] for name, a in arrays.items()}
    arrays |= {
        "fingerprint": np.asarray(sweep.fingerprint()),
        "instance": ids[:n],
        "curve_loss": np.stack(curves, axis=1)[:n],
        "curve_step": np.cumsum(sweep.chunks(sweep.groups[block.group])),
    }
    if sweep.snapshots:
        arrays |= {f"snapshot_{k}": v[:n] for k, v in checkpoint.stack_snapshots(snaps).items()}
    atomic_save_npz(rd.block(block.index), integrity.with_checksum(arrays))
    with contextlib.suppress(FileNotFoundError):
        rd.checkpoint(block.index).unlink()
    progress.block_end(int(np.sum(arrays["diverged"])))


def analyze_dir(path: str | Path) -> Results:
    """Recompute the geometry columns of instances.parquet and all of features.parquet
    from params.npz (e.g. after the geometry module changed); other columns are kept."""
    res = open_results(path)
    rd = ResultsDir(res.path)
    held = lock.run_lock(rd.path, command="geomtoy analyze")  # it rewrites two tables
    try:
        _reanalyze(res, rd)
    finally:
        lock.release_all(held)
    return open_results(path)


def _reanalyze(res: Results, rd: ResultsDir) -> None:
    names = res.instances.column_names
    kept = {c: res.instances.column(c) for c in names if c not in GEOMETRY_COLUMNS}
    diverged = res.column("diverged").astype(bool)
    instances, features = geometry_tables(res.params, kept, diverged)
    order = [c for c in names if c in instances]
    instances = {c: instances[c] for c in order} | instances
    atomic_write_parquet(rd.table("features.parquet"), features)
    atomic_write_parquet(rd.table("instances.parquet"), instances)
    atomic_write_json(rd.meta, res.meta | {"analyzed": now()})


def command_line(argv: list[str]) -> str:
    """argv as one shell-quoted line, for meta.json."""
    return " ".join(shlex.quote(a) for a in argv)
