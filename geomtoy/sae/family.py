"""The SAE family: its registration (`FAMILY`) and the sweep plan the one runner reads.

geomtoy.runs.runner trains an SAE sweep as it does a toy sweep (locks, checksums,
move-aside, signals, checkpoints, resume, job arrays, merge, progress): `plan` gives the
runner's view of a geomtoy.sae.sweep.SAESweep (groups with instance ids, blocks, chunks),
`hparams` a block's leaves, `finish` its block file's arrays and `assemble` the tables:

instances.parquet, one row per SAE: instance, seed, point, group, toy (the source
    instance it reads), the source's columns prefixed "toy." (its grid axes, loss,
    geometry...), one column per SAE grid axis, and mse, explained_variance, l0, l1,
    dead, dense (latent counts), n_true (represented true features), mmcs,
    recovered_0.9, recovered_0.99 (shares of true features), toy_loss, spliced_loss (the
    toy's loss with h replaced by h_hat), loss (the SAE's training objective over its
    last chunk), best (lowest loss among the seeds of its grid point), diverged,
    geometry (the toy's summary).
features.parquet, one row per (SAE, true feature): instance, feature, recovery (best
    decoder cosine, NaN if the toy does not represent the feature), polytope (the toy's
    label of the feature), recovered_0.9, recovered_0.99.
params.npz: W_enc (I, width, m), b_enc, W_dec (I, m, width), b_dec, threshold (I,),
    frequency (I, width: each latent's firing rate on the evaluation samples), and the
    toy model each SAE reads: W (I, m, n), b, feature_probability, importance, n_features,
    n_hidden. Groups of other widths are zero-padded to the largest width (`width` (I,)
    says how many latents are real; frequency NaN).
curves.npz: step (I, C), loss (I, C): the mean training objective of each chunk.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import jax
import numpy as np

from geomtoy import spec
from geomtoy.engine.families import Family, register, weights
from geomtoy.geometry import recovery
from geomtoy.results import integrity
from geomtoy.results import store as results
from geomtoy.sae import evaluate, scores
from geomtoy.sae import sweep as sae_sweep
from geomtoy.sae import train as sae_train
from geomtoy.sweep.plan import cut_blocks


@dataclasses.dataclass(frozen=True)
class Group:
    """SAEs of one SAEShape, as the runner reads a group: global ids in `instance`."""

    index: int
    shape: sae_train.SAEShape
    instance: np.ndarray  # (Ig,) SAE ids (rows of instances.parquet)
    block_size: int

    def __len__(self) -> int:
        return len(self.instance)


@dataclasses.dataclass(frozen=True)
class Plan:
    """An SAE sweep as the runner reads a sweep (geomtoy.sweep.plan.Sweep's interface);
    everything else is the SAESweep's (`sae`)."""

    sae: sae_sweep.SAESweep
    groups: tuple[Group, ...]
    snapshots: bool = False

    def __getattr__(self, name: str):
        return getattr(self.sae, name)

    @property
    def root_seed(self) -> int:
        return self.sae.resolved["root_seed"]

    @property
    def chunk_steps(self) -> int:
        return self.sae.resolved["train.chunk_steps"]

    @property
    def checkpoint_every(self) -> int:
        return self.sae.resolved["train.checkpoint_every"]

    @property
    def n_points(self) -> int:
        return int(self.sae.point.max()) + 1

    def fingerprint(self) -> str:
        return self.sae.fingerprint()

    def chunks(self, group: Group) -> list[int]:
        return spec.chunk_schedule(group.shape.steps, self.chunk_steps)

    def blocks(self, multiple: int = 1):
        return cut_blocks(self.groups, multiple)


def plan(sweep: sae_sweep.SAESweep) -> Plan:
    groups = tuple(Group(g.index, g.shape, g.rows, g.block_size) for g in sweep.groups)
    return Plan(sweep, groups)


def load(path, scale: str = "default", sets=(), results_root=None) -> Plan:
    """Read, check and expand an SAE sweep file (geomtoy.sae.sweep.load) for the runner."""
    return plan(sae_sweep.load(path, scale=scale, sets=sets, results_root=results_root))


def _rebuild(meta: dict, path: Path) -> Plan:
    """The sweep a results directory's meta.json records (its source beside it)."""
    return plan(
        sae_sweep.loads(
            meta["source"], meta["file"], meta["scale"], meta["sets"], Path(path).parent
        )
    )


def hparams(sweep: Plan, group: Group, rows: np.ndarray, mesh) -> sae_train.SAEHParams:
    """The leaves of a block: each SAE's values and the toy model it reads."""
    ids, toys, values = group.instance[rows], sweep.toys, sweep.values
    t = sweep.toy_of[ids]
    return sae_train.SAEHParams.create(
        toys.W[t], toys.b[t], feature_probability=toys.feature_probability[t],
        importance=toys.importance[t], l1_coefficient=values["l1"][ids], k=values["k"][ids],
        lr=values["lr"][ids], seed=sweep.seed[ids], instance_id=ids, mesh=mesh,
        target_l0=values["target_l0"][ids], source_id=toys.ids[t],
        jumprelu_threshold=values["threshold"][ids],
        dist=None if toys.dist is None else jax.tree.map(lambda a: a[t], toys.dist),
    )  # fmt: skip


def _evaluate(state, hp, shape, root_seed) -> dict[str, np.ndarray]:
    return evaluate.evaluate(state.params, state.threshold, hp, shape, root_seed)


def finish(shape, state, hp, stats, curves) -> dict[str, np.ndarray]:
    """An SAE block's arrays: the last chunk's objective (its loss), the weights, the
    inference threshold and the evaluation statistics (stat_<name>)."""
    last = np.asarray(curves[-1])
    diverged = ~np.isfinite(last) | ~np.isfinite(stats["mse"])
    out = {"loss": last, "diverged": diverged, "train_loss": last}
    out |= weights(jax.device_get(state.params)) | {"threshold": np.asarray(state.threshold)}
    return out | {f"stat_{k}": v for k, v in stats.items()}


def _pad(a: np.ndarray, axis: int, size: int) -> np.ndarray:
    widths = [(0, 0)] * a.ndim
    widths[axis] = (0, size - a.shape[axis])
    return np.pad(a, widths)


def assemble(sweep: Plan, rd: results.ResultsDir) -> None:
    """Join the block files into the four tables (see the module docstring)."""
    blocks = sweep.blocks()
    parts = [integrity.read_npz(rd.block(b.index), checksum=True) for b in blocks]
    I, toys, t = sweep.n_instances, sweep.toys, sweep.toy_of
    width = np.zeros(I, np.int64)
    for b in blocks:
        g = sweep.groups[b.group]
        width[g.instance[b.rows]] = g.shape.width
    W = int(width.max())
    order = np.argsort(np.concatenate([p["instance"] for p in parts]))

    def joined(name, pad_axis=None):
        arrays = [p[name] if pad_axis is None else _pad(p[name], pad_axis, W) for p in parts]
        return np.concatenate(arrays)[order]

    params = {"W_enc": joined("W_enc", 1), "b_enc": joined("b_enc", 1),
              "W_dec": joined("W_dec", 2), "b_dec": joined("b_dec"),
              "threshold": joined("threshold"), "width": width}  # fmt: skip
    if "log_threshold" in parts[0]:  # JumpReLU's learned per-latent thresholds (log)
        params["log_threshold"] = joined("log_threshold", 1)
    params |= {"W": toys.W[t], "b": toys.b[t], "feature_probability": toys.feature_probability[t],
               "importance": toys.importance[t], "n_features": np.full(I, toys.W.shape[2]),
               "n_hidden": np.full(I, toys.W.shape[1])}  # fmt: skip
    names = [k for k in parts[0] if k.startswith("stat_")]
    stats = {k[5:]: joined(k, 1 if k == "stat_frequency" else None) for k in names}
    rec = [recovery.feature_recovery(toys.W[t[p["instance"]]], p["W_dec"]) for p in parts]
    rec = np.concatenate(rec)[order]
    freq = np.where(np.arange(W)[None, :] < width[:, None], stats.pop("frequency"), np.nan)
    per_feature = {k[8:]: stats.pop(k).ravel() for k in list(stats) if k.startswith("feature_")}
    cols = _instance_columns(sweep) | stats | recovery.summary(rec, _real(freq))
    cols |= scores.seed_columns(cols, params["W_dec"], width, sweep.point, _toy_group(sweep))
    params["frequency"] = freq
    cols["loss"] = joined("loss")
    cols["diverged"] = joined("diverged")
    cols["best"] = results.best_of_point(
        np.where(cols["diverged"], np.inf, cols["loss"]), sweep.point
    )
    results.atomic_write_parquet(rd.table("instances.parquet"), cols)
    features = _feature_columns(sweep, rec) | per_feature
    results.atomic_write_parquet(rd.table("features.parquet"), features)
    results.atomic_save_npz(rd.table("params.npz"), params)
    loss = joined("curve_loss")
    steps = np.broadcast_to(parts[0]["curve_step"], loss.shape)
    results.atomic_save_npz(rd.table("curves.npz"), {"step": steps, "loss": loss})


def _toy_group(sweep: Plan) -> np.ndarray:
    """(I,) one id per (toy grid point, SAE grid point, SAE seed): the SAEs that differ
    only in the toy model's seed (-1 everywhere when the source has no toy grid)."""
    toy_point = sweep.toys.columns.get("toy.point")
    if toy_point is None:
        return np.full(sweep.n_instances, -1)
    keys = np.stack([np.asarray(toy_point)[sweep.toy_of], _sae_point(sweep), sweep.seed])
    return np.unique(keys, axis=1, return_inverse=True)[1].ravel()


def _sae_point(sweep: Plan) -> np.ndarray:
    """(I,) each SAE's point of the SAE grid alone (its `point` runs over toy x SAE grid)."""
    return sweep.point % int(np.prod([len(a.values) for a in sweep.axes], dtype=np.int64))


def _real(freq: np.ndarray) -> np.ndarray:
    """Firing frequencies with padded latents (NaN) counted as neither dead nor dense."""
    return np.where(np.isnan(freq), 0.25, freq)


def _instance_columns(sweep: Plan) -> dict:
    I, t = sweep.n_instances, sweep.toy_of
    cols = {"instance": np.arange(I), "seed": sweep.seed, "point": sweep.point,
            "group": np.zeros(I, np.int64), "toy": sweep.toys.ids[t]}  # fmt: skip
    for g in sweep.groups:
        cols["group"][g.instance] = g.index
    for key, col in sweep.toys.columns.items():
        cols[key] = np.asarray(col, dtype=object if np.asarray(col).dtype == object else None)[t]
    shape = [len(a.values) for a in sweep.axes]
    index = np.unravel_index(_sae_point(sweep), shape) if shape else ()
    for axis, idx in zip(sweep.axes, index):  # first axis slowest
        cols[axis.key] = [axis.values[i] for i in idx]
    geometry = sweep.toys.columns.get("toy.geometry", np.full(len(sweep.toys.ids), "synthetic"))
    cols["geometry"] = np.asarray(geometry, dtype=object)[t]
    return cols


def _feature_columns(sweep: Plan, rec: np.ndarray) -> dict:
    I, n = rec.shape
    cols = {"instance": np.repeat(np.arange(I), n), "feature": np.tile(np.arange(n), I),
            "recovery": rec.ravel(), "polytope": sweep.toys.polytope[sweep.toy_of].ravel()}  # fmt: skip
    for th in recovery.THRESHOLDS:
        cols[f"recovered_{th}"] = (np.nan_to_num(rec, nan=-1.0) > th).ravel()
    return cols


def label(shape: sae_train.SAEShape) -> str:
    return f"{shape.activation} SAE, width {shape.width}, m={shape.n_hidden}"


def state_bytes(shape: sae_train.SAEShape) -> int:
    """Weights, two Adam moments, the firing counts and the toy model one SAE reads."""
    m, w, n = shape.n_hidden, shape.width, shape.n_features
    return 4 * (3 * (2 * w * m + w + m) + w + (m + 3) * n + 8)


FAMILY = register(
    Family(
        name="sae",
        shape_type=sae_train.SAEShape,
        hparams_type=sae_train.SAEHParams,
        init_one=sae_train.init_one,
        step_one=sae_train.step_one,
        chunk_block=sae_train.chunk_block,
        shares_batches=lambda shape: shape.shared_data,
        resolve=sae_train.resolve,
        evaluate_one=None,
        evaluate=_evaluate,
        step_bytes=sae_train.step_bytes,
        state_bytes=state_bytes,
        hparams=hparams,
        finish=finish,
        assemble=assemble,
        label=label,
        block_keys=("W_enc", "b_enc", "W_dec", "b_dec", "threshold"),
        meta=lambda sweep: {"family": "sae", "source_fingerprint": sweep.toys.fingerprint},
        load=_rebuild,
        plan_lines=lambda sweep, *args: sweep.sae.plan_lines(),
    )
)
