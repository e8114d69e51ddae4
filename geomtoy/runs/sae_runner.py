"""Run an SAE sweep into a results directory: blocks, resume, tables.

The directory has the toy sweeps' layout (meta.json, instances.parquet, features.parquet,
params.npz, curves.npz; geomtoy.results.store.open_results reads it), with SAE columns:

instances.parquet, one row per SAE: instance, seed, point, group, toy (the source
    instance it reads), the source's columns prefixed "toy." (its grid axes, loss,
    geometry...), one column per SAE grid axis, and mse, explained_variance, l0, l1,
    dead, dense (latent counts), n_true (represented true features), mmcs,
    recovered_0.9, recovered_0.99 (shares of true features), toy_loss, spliced_loss (the
    toy's loss with h replaced by h_hat), loss (the SAE's training objective over its
    last chunk), best (lowest loss among the seeds of its grid point), diverged,
    geometry (the toy's summary); the ground-truth scores of geomtoy.sae.evaluate (mcc,
    uniqueness, precision, recall, f1, shrinkage, absorption, true_l0) and the seed
    statistics of geomtoy.sae.scores.seed_columns (pw_mcc, pw_mcc_toy,
    <score>_seed_mean, <score>_seed_std).
features.parquet, one row per (SAE, true feature): instance, feature, recovery (best
    decoder cosine, NaN if the toy does not represent the feature), polytope (the toy's
    label of the feature), recovered_0.9, recovered_0.99, and evaluate's per-feature
    scores without their feature_ prefix (mcc, latents, precision, recall, f1,
    absorption).
params.npz: W_enc (I, width, m), b_enc, W_dec (I, m, width), b_dec, threshold (I,),
    frequency (I, width: each latent's firing rate on the evaluation samples), and the
    toy model each SAE reads: W (I, m, n), b, feature_probability, importance, n_features,
    n_hidden. Groups of other widths are zero-padded to the largest width (`width` (I,)
    says how many latents are real; frequency NaN).
curves.npz: step (I, C), loss (I, C): the mean training objective of each chunk.

Each block of SAEs trains in geomtoy.engine.train's chunk loop, as a toy block does: it is
checkpointed every train.checkpoint_every chunks and written when it ends (blocks/), so an
interrupted run resumes from the block's checkpoint (SIGTERM, SIGHUP and Ctrl-C write one
at once); the tables are assembled when all blocks are there.
"""

from __future__ import annotations

import contextlib
import functools
import shutil
import time
from pathlib import Path

import jax
import numpy as np

from geomtoy import spec
from geomtoy.engine import parallel, train
from geomtoy.geometry import recovery
from geomtoy.results import store as results
from geomtoy.runs import checkpoint, signals
from geomtoy.runs import runner as toy_runner
from geomtoy.runs.progress import Progress
from geomtoy.sae import evaluate, scores
from geomtoy.sae import train as sae_train
from geomtoy.sae.sweep import SAESweep

PARAMS = ("W_enc", "b_enc", "W_dec", "b_dec")


def _hparams(sweep: SAESweep, rows: np.ndarray, mesh) -> sae_train.SAEHParams:
    t = sweep.toy_of[rows]
    toys = sweep.toys
    return sae_train.SAEHParams.create(
        toys.W[t], toys.b[t], feature_probability=toys.feature_probability[t],
        importance=toys.importance[t], l1_coefficient=sweep.values["l1"][rows],
        k=sweep.values["k"][rows], lr=sweep.values["lr"][rows], seed=sweep.seed[rows],
        instance_id=rows, mesh=mesh, target_l0=sweep.values["target_l0"][rows],
        dist=None if toys.dist is None else jax.tree.map(lambda a: a[t], toys.dist),
    )  # fmt: skip


def _train_block(sweep: SAESweep, index, group, rows, rd, fingerprint, progress, mesh) -> None:
    """Train one block of SAEs in train's chunk loop, checkpointed every
    train.checkpoint_every chunks (a resumed run continues from the checkpoint), and
    write its block file."""
    signals.check()  # a signal between blocks: the last one is written, stop here
    shape, root, n = group.shape, sweep.resolved["root_seed"], len(rows)
    pad = -n % parallel.instance_multiple(mesh)  # every device gets an equal share
    padded = np.concatenate([rows, np.repeat(rows[-1:], pad)])
    hp = _hparams(sweep, padded, mesh)
    chunks = spec.chunk_schedule(shape.steps, sweep.resolved["train.chunk_steps"])
    structure = functools.partial(jax.eval_shape, lambda h: train.init_state(shape, h, root), hp)
    ckpt = checkpoint.load(rd.checkpoint(index), padded, fingerprint, structure)
    if ckpt is None:
        state, done, curves = train.init_state(shape, hp, root, mesh=mesh), 0, []
    else:
        state, done, curves, _ = ckpt
    progress.block(index, n, steps=shape.steps, step=sum(chunks[:done]))

    def on_chunk(chunk: train.Chunk) -> None:
        progress.chunk(step=chunk.step, model_steps=n * chunk.n_steps, losses=chunk.loss[:n])
        curves.append(chunk.loss)

    def on_checkpoint(state, chunks_done: int) -> None:
        checkpoint.save(rd.checkpoint(index), padded, fingerprint, state, chunks_done, curves)

    state = train.run_chunks(
        state, hp, shape, chunks, root, start=done, on_chunk=on_chunk,
        checkpoint_every=sweep.resolved["train.checkpoint_every"], on_checkpoint=on_checkpoint,
        checkpoint_now=lambda: signals.pending() is not None, on_stop=signals.check, mesh=mesh,
    )  # fmt: skip
    stats = evaluate.evaluate(state.params, state.threshold, hp, shape, root)
    params = jax.tree.map(lambda a: np.asarray(a)[:n], state.params)
    curve = np.stack(curves)[:, :n]
    stats = {k: v[:n] for k, v in stats.items()}
    rec = recovery.feature_recovery(sweep.toys.W[sweep.toy_of[rows]], params.W_dec)
    diverged = ~np.isfinite(curve[-1]) | ~np.isfinite(stats["mse"])
    progress.block_end(int(diverged.sum()))
    arrays = {name: getattr(params, name) for name in PARAMS}
    arrays |= {f"stat_{k}": v for k, v in stats.items()}
    results.atomic_save_npz(rd.block(index), arrays | {
        "rows": rows, "threshold": np.asarray(state.threshold)[:n], "recovery": rec,
        "diverged": diverged, "curve_step": np.cumsum(chunks), "curve_loss": curve,
        "fingerprint": np.asarray(fingerprint),
    })  # fmt: skip
    with contextlib.suppress(FileNotFoundError):
        rd.checkpoint(index).unlink()


def _done(path: Path, fingerprint: str) -> bool:
    if not path.exists():
        return False
    try:
        with np.load(path, allow_pickle=False) as z:
            ok = str(z["fingerprint"]) == fingerprint
    except Exception:  # a damaged block file is retrained, never trusted
        ok = False
    if not ok:
        path.unlink()
    return ok


def run(
    sweep: SAESweep, out, *, command="", resume=False, overwrite=False, progress=None, mesh=None
):
    """Train every unfinished block of an SAE sweep into `out` over `mesh`, then assemble
    the tables. Returns a runner.RunReport; SweepError before writing anything if refused."""
    mesh = parallel.current_mesh(mesh)
    out = Path(out)
    plan = toy_runner.plan_run(sweep, out, resume=resume, overwrite=overwrite)
    rd = results.ResultsDir(out)
    if plan.action == "complete":
        return toy_runner.RunReport(out, "complete", 0, True, 0.0)
    t0 = time.perf_counter()
    fingerprint = sweep.fingerprint()
    meta = plan.meta if plan.action == "resume" else _new_meta(sweep, command, fingerprint)
    meta["runs"] = [*meta.get("runs", []), {"command": command, "started": results.now()}]
    out.mkdir(parents=True, exist_ok=True)
    results.atomic_write_json(rd.meta, meta)
    if plan.overwrite:
        for name in results.TABLES:
            with contextlib.suppress(FileNotFoundError):
                rd.table(name).unlink()
        shutil.rmtree(rd.blocks, ignore_errors=True)
    rd.blocks.mkdir(parents=True, exist_ok=True)
    blocks = sweep.blocks()
    todo = [b for b in blocks if not _done(rd.block(b[0]), fingerprint)]
    progress = progress or Progress(stream=None)
    total = sum(len(rows) * g.shape.steps for _, g, rows in todo)
    done = len(blocks) - len(todo)
    progress.start(sweep.name, total=total, n_blocks=len(blocks), done_blocks=done)
    for index, group, rows in todo:
        _train_block(sweep, index, group, rows, rd, fingerprint, progress, mesh)
    progress.note("assembling tables")
    assemble(sweep, rd, blocks)
    meta |= {"status": "complete", "updated": results.now()}
    meta["wall_time_s"] = round(meta.get("wall_time_s", 0.0) + time.perf_counter() - t0, 3)
    results.atomic_write_json(rd.meta, meta)
    shutil.rmtree(rd.blocks, ignore_errors=True)
    progress.close()
    return toy_runner.RunReport(out, plan.action, len(todo), True, time.perf_counter() - t0)


def _new_meta(sweep: SAESweep, command: str, fingerprint: str) -> dict:
    return {
        "format": results.FORMAT, "family": "sae", "name": sweep.name, "status": "running",
        "fingerprint": fingerprint, "file": sweep.file, "scale": sweep.scale,
        "sets": list(sweep.sets), "command": command, "spec": sweep.spec,
        "axes": {a.key: list(a.values) for a in sweep.axes}, "n_instances": sweep.n_instances,
        "seeds": sweep.seeds, "source_fingerprint": sweep.toys.fingerprint,
        "created": results.now(), "wall_time_s": 0.0, "source": sweep.source, "runs": [],
        "versions": {"jax": jax.__version__},
    }  # fmt: skip


def _pad(a: np.ndarray, axis: int, size: int) -> np.ndarray:
    widths = [(0, 0)] * a.ndim
    widths[axis] = (0, size - a.shape[axis])
    return np.pad(a, widths)


def assemble(sweep: SAESweep, rd: results.ResultsDir, blocks) -> None:
    """Join the block files into the four tables (see the module docstring)."""
    parts = [dict(np.load(rd.block(i), allow_pickle=False)) for i, _, _ in blocks]
    I = sweep.n_instances
    width = np.zeros(I, np.int64)
    for (_, g, rows), _p in zip(blocks, parts):
        width[rows] = g.shape.width
    W = int(width.max())
    order = np.argsort(np.concatenate([p["rows"] for p in parts]))

    def joined(name, pad_axis=None):
        arrays = [p[name] if pad_axis is None else _pad(p[name], pad_axis, W) for p in parts]
        return np.concatenate(arrays)[order]

    params = {"W_enc": joined("W_enc", 1), "b_enc": joined("b_enc", 1),
              "W_dec": joined("W_dec", 2), "b_dec": joined("b_dec"),
              "threshold": joined("threshold"), "width": width}  # fmt: skip
    t = sweep.toy_of
    toys = sweep.toys
    params |= {"W": toys.W[t], "b": toys.b[t], "feature_probability": toys.feature_probability[t],
               "importance": toys.importance[t], "n_features": np.full(I, toys.W.shape[2]),
               "n_hidden": np.full(I, toys.W.shape[1])}  # fmt: skip
    names = [k for k in parts[0] if k.startswith("stat_")]
    stats = {k[5:]: joined(k, 1 if k == "stat_frequency" else None) for k in names}
    rec = joined("recovery")
    freq = np.where(np.arange(W)[None, :] < width[:, None], stats.pop("frequency"), np.nan)
    per_feature = {k: stats.pop(k) for k in list(stats) if k.startswith("feature_")}
    cols = _instance_columns(sweep)
    cols |= stats
    cols |= recovery.summary(rec, _real(freq))
    cols |= scores.seed_columns(cols, params["W_dec"], width, sweep.point, _toy_group(sweep))
    params["frequency"] = freq
    cols["loss"] = np.concatenate([p["curve_loss"][-1] for p in parts])[order]
    cols["diverged"] = joined("diverged")
    bad = np.where(cols["diverged"], np.inf, cols["loss"])
    cols["best"] = results.best_of_point(bad, sweep.point)
    results.atomic_write_parquet(rd.table("instances.parquet"), cols)
    features = _feature_columns(sweep, rec) | {k[8:]: v.ravel() for k, v in per_feature.items()}
    results.atomic_write_parquet(rd.table("features.parquet"), features)
    results.atomic_save_npz(rd.table("params.npz"), params)
    loss = np.concatenate([p["curve_loss"] for p in parts], axis=1)[:, order].T
    steps = np.broadcast_to(parts[0]["curve_step"], loss.shape)
    results.atomic_save_npz(rd.table("curves.npz"), {"step": steps, "loss": loss})


def _toy_group(sweep: SAESweep) -> np.ndarray:
    """(I,) one id per (toy grid point, SAE grid point, SAE seed): the SAEs that differ
    only in the toy model's seed (-1 everywhere when the source has no toy grid)."""
    toy_point = sweep.toys.columns.get("toy.point")
    if toy_point is None:
        return np.full(sweep.n_instances, -1)
    keys = np.stack([np.asarray(toy_point)[sweep.toy_of], sweep.point % _n_combos(sweep),
                     sweep.seed])  # fmt: skip
    return np.unique(keys, axis=1, return_inverse=True)[1].ravel()


def _real(freq: np.ndarray) -> np.ndarray:
    """Firing frequencies with padded latents (NaN) counted as neither dead nor dense."""
    return np.where(np.isnan(freq), 0.25, freq)


def _instance_columns(sweep: SAESweep) -> dict:
    I = sweep.n_instances
    t = sweep.toy_of
    cols = {"instance": np.arange(I), "seed": sweep.seed, "point": sweep.point,
            "group": np.zeros(I, np.int64), "toy": sweep.toys.ids[t]}  # fmt: skip
    for g in sweep.groups:
        cols["group"][g.rows] = g.index
    for key, col in sweep.toys.columns.items():
        cols[key] = np.asarray(col, dtype=object if np.asarray(col).dtype == object else None)[t]
    combos = sweep.point % _n_combos(sweep)
    for j, axis in enumerate(sweep.axes):
        idx = _axis_index(sweep, combos, j)
        cols[axis.key] = [axis.values[i] for i in idx]
    geometry = sweep.toys.columns.get("toy.geometry", np.full(len(sweep.toys.ids), "synthetic"))
    cols["geometry"] = np.asarray(geometry, dtype=object)[t]
    return cols


def _n_combos(sweep: SAESweep) -> int:
    n = 1
    for a in sweep.axes:
        n *= len(a.values)
    return n


def _axis_index(sweep: SAESweep, combo: np.ndarray, j: int) -> np.ndarray:
    """Index into axis j's values of each instance's grid combination (first axis slowest)."""
    inner = 1
    for a in sweep.axes[j + 1 :]:
        inner *= len(a.values)
    return (combo // inner) % len(sweep.axes[j].values)


def _feature_columns(sweep: SAESweep, rec: np.ndarray) -> dict:
    I, n = rec.shape
    cols = {"instance": np.repeat(np.arange(I), n), "feature": np.tile(np.arange(n), I),
            "recovery": rec.ravel(), "polytope": sweep.toys.polytope[sweep.toy_of].ravel()}  # fmt: skip
    for th in recovery.THRESHOLDS:
        cols[f"recovered_{th}"] = (np.nan_to_num(rec, nan=-1.0) > th).ravel()
    return cols
