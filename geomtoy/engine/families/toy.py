"""The toy-model family: fresh samples every step (the paper's recipe; math in
geomtoy.engine.toy, models in geomtoy.engine.models), and the toy tables, which the
finite-data family shares (geomtoy.engine.families.finite)."""

from __future__ import annotations

import concurrent.futures

import jax
import numpy as np

from geomtoy.engine import toy
from geomtoy.engine.families import Family, is_diverged, register, weights
from geomtoy.geometry.samples import finite_tables
from geomtoy.geometry.tables import geometry_tables
from geomtoy.results import integrity
from geomtoy.results.store import (
    ResultsDir,
    atomic_write_parquet,
    gather,
    write_arrays,
    write_parquet_tables,
)
from geomtoy.spec import Shape
from geomtoy.sweep import loads


def hparams(sweep, group, rows: np.ndarray, mesh) -> toy.HParams:
    """The leaves of a block (rows of `group`), placed on `mesh`."""
    return toy.HParams.create(**group.leaves(rows), mesh=mesh)


def finish(shape, state, hp, evaluation, curves) -> dict[str, np.ndarray]:
    """A toy block's arrays: the evaluation loss (NaN where diverged: NaN weights can
    still evaluate to a finite loss), the last chunk's training loss, the weights."""
    params = jax.device_get(state.params)
    loss = np.asarray(evaluation)
    diverged = is_diverged(loss, params)
    out = {"loss": np.where(diverged, np.nan, loss), "diverged": diverged}
    return out | {"train_loss": curves[-1]} | weights(params)


def assemble(sweep, rd: ResultsDir) -> None:
    """Join all block files into the four tables, with the geometry of the weights
    (analysed while params.npz and curves.npz are written); samples.parquet too when a
    group trains on a finite set."""
    params, columns, curves = gather(sweep, rd)
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        written = pool.submit(write_arrays, rd, params, curves)
        instances, features = geometry_tables(params, columns, columns["diverged"])
        written.result()
    if any(g.shape.n_samples for g in sweep.groups):
        blocks = (integrity.read_npz(rd.block(b.index), checksum=True) for b in sweep.blocks())
        extra, samples = finite_tables(sweep.n_instances, blocks)
        instances |= extra
        atomic_write_parquet(rd.table("samples.parquet"), samples)
    write_parquet_tables(rd, instances, features)


def load(meta: dict, path):
    """The sweep a results directory's meta.json records."""
    return loads(meta["source"], file=meta["file"], scale=meta["scale"], sets=meta["sets"])


def label(shape) -> str:
    return f"{shape.kind}, n={shape.n_features}, m={shape.n_hidden}"


def state_bytes(shape: Shape) -> int:
    """Bytes per instance of weights, two Adam moments, counters and hyperparameters."""
    n = shape.n_features
    return 4 * (3 * (shape.weight_rows * n + n) + 2 * n + 6)


def temp_bytes(shape: Shape, batch: int | None = None) -> int:
    """Device bytes of one instance's temporaries, fitted to XLA's buffer assignment
    (`compiled.memory_analysis()`) over n = 2..20 and every model kind, within 0.9-1.3x
    (geomtoy.runs.cost): a training step holds 4 B (3.3 n + 1.5 m') bytes, an evaluation
    batch of `batch` samples 4 batch 3.3 n (2 n for the untied abs: fewer live arrays)."""
    n = shape.n_features
    if batch is None:
        return int(4 * shape.batch_size * (3.3 * n + 1.5 * shape.weight_rows))
    return int(4 * batch * (2.0 if shape.model.untied else 3.3) * n)


FAMILY = register(
    Family(
        name="toy",
        shape_type=Shape,
        hparams_type=toy.HParams,
        init_one=toy.init_one,
        step_one=toy.step_one,
        evaluate_one=toy.evaluate_one,
        step_bytes=toy.step_bytes,
        state_bytes=state_bytes,
        temp_bytes=temp_bytes,
        hparams=hparams,
        finish=finish,
        assemble=assemble,
        label=label,
        accepts=lambda shape: not shape.n_samples,
        load=load,
    )
)
