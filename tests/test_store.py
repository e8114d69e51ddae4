"""Results directories: tables, resume from checkpoints and blocks, divergence, memory."""

import json
import os

import numpy as np
import pytest
from interrupt import Interrupt, StopAfter

from geomtoy.results import store as results
from geomtoy.runs import runner
from geomtoy.runs.progress import Progress
from geomtoy.spec import SweepError
from geomtoy.sweep import loads

# One shape for most tests (n=5, m=2, batch 64, 160 steps in chunks of 20, blocks of 4):
# the compiled programs are shared between tests.
TINY = """
name = "tiny"
[model]
n_features = 5
n_hidden = 2
[data]
feature_probability = 0.1
importance = { decay = 0.9 }
[train]
steps = 160
batch_size = 64
eval_samples = 1024
chunk_steps = 20
checkpoint_every = 2
seeds = 3
block_size = 4
[grid]
"data.feature_probability" = [1.0, 0.3, 0.05]
"""


def tiny(*sets):
    return loads(TINY, file="tiny.toml", sets=sets)


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The tiny sweep run once, uninterrupted."""
    out = tmp_path_factory.mktemp("ref") / "tiny"
    runner.run_sweep(tiny(), out)
    return results.open_results(out)


def assert_same_results(a, b):
    assert a.instances.equals(b.instances)
    assert a.features.equals(b.features)
    for k in a.params:
        np.testing.assert_array_equal(a.params[k], b.params[k])
    for k in a.curves:
        np.testing.assert_array_equal(a.curves[k], b.curves[k])


def test_tables_follow_the_contract(reference):
    res, sweep = reference, tiny()
    I, n, m = 9, 5, 2
    cols = res.instances.column_names
    for name in [
        "instance",
        "seed",
        "data.feature_probability",
        "loss",
        "dims_per_feature",
        "n_represented",
        "best",
        "diverged",
        "geometry",
    ]:
        assert name in cols
    assert res.features.column_names[:8] == [
        "instance",
        "feature",
        "norm",
        "dimensionality",
        "interference",
        "bias",
        "factor",
        "polytope",
    ]
    assert res.instances.num_rows == I and res.features.num_rows == I * n
    W, b = res.params["W"], res.params["b"]
    assert W.shape == (I, m, n) and b.shape == (I, n) and "W2" not in res.params
    # NumPy references for the geometry columns
    np.testing.assert_allclose(
        res.column("dims_per_feature"), m / np.sum(W**2, axis=(1, 2)), rtol=1e-5
    )
    np.testing.assert_allclose(
        res.column("norm", "features"), np.linalg.norm(W, axis=1).reshape(-1), rtol=1e-5
    )
    np.testing.assert_array_equal(res.column("bias", "features"), b.reshape(-1).astype(np.float64))
    np.testing.assert_allclose(
        res.column("importance", "features"), np.tile(0.9 ** np.arange(n), I)
    )
    np.testing.assert_allclose(
        res.column("feature_probability", "features"), np.repeat([1.0, 0.3, 0.05], 3 * n)
    )
    np.testing.assert_array_equal(res.column("feature", "features"), np.tile(np.arange(n), I))
    assert np.all(np.isfinite(res.column("loss"))) and not res.column("diverged").any()
    # best: exactly the lowest loss of each grid point's 3 seeds
    loss = res.column("loss").reshape(3, 3)
    np.testing.assert_array_equal(
        res.column("best").reshape(3, 3), loss == loss.min(axis=1, keepdims=True)
    )
    # curves: one column per chunk, the last one is the train_loss column
    assert res.curves["loss"].shape == (I, 8)
    np.testing.assert_array_equal(res.curves["step"], np.tile(np.arange(20, 161, 20), (I, 1)))
    np.testing.assert_allclose(res.curves["loss"][:, -1], res.column("train_loss"))
    meta = res.meta
    assert meta["status"] == "complete" and meta["fingerprint"] == sweep.fingerprint()
    assert meta["n_blocks"] == 3 and meta["blocks_done"] == 3 and meta["spec"] == sweep.spec
    assert set(meta["versions"]) >= {"python", "jax", "jaxlib", "geomtoy"} and meta["devices"]
    assert not (res.path / "blocks").exists()


def test_interrupted_run_resumes_from_its_checkpoint(reference, tmp_path):
    out = tmp_path / "tiny"
    with pytest.raises(Interrupt):
        runner.run_sweep(tiny(), out, progress=StopAfter(13))  # block 0 done, block 1 at chunk 5
    files = sorted(p.name for p in (out / "blocks").iterdir())
    assert files == ["block-00000.npz", "block-00001.ckpt.npz"]
    assert json.loads((out / "meta.json").read_text())["status"] == "running"
    assert not (out / "instances.parquet").exists()
    with pytest.raises(SweepError, match="not complete"):
        results.open_results(out)

    class Count(Progress):
        seen = []

        def block(self, index, n_instances, steps, step=0):
            self.seen.append((index, step))

    report = runner.run_sweep(tiny(), out, progress=Count(stream=None))
    assert report.action == "resume" and report.trained_blocks == 2 and report.complete
    assert Count.seen == [(1, 80), (2, 0)]  # block 0 skipped, block 1 from its checkpoint
    assert_same_results(results.open_results(out), reference)
    runs = results.open_results(out).meta["runs"]
    assert len(runs) == 2


def test_complete_directory_is_not_retrained(reference, tmp_path):
    before = {p.name: (p.stat().st_mtime_ns, p.read_bytes()) for p in reference.path.iterdir()}
    report = runner.run_sweep(tiny(), reference.path)
    assert report.action == "complete" and report.trained_blocks == 0
    assert before == {
        p.name: (p.stat().st_mtime_ns, p.read_bytes()) for p in reference.path.iterdir()
    }


def test_blocks_from_other_processes_are_joined(reference, tmp_path):
    """Process 1 of 2 writes its blocks (part files); a later run trains only the rest."""
    out = tmp_path / "tiny"
    r1 = runner.run_sweep(tiny(), out, process_index=1, process_count=2)
    assert r1.trained_blocks == 1 and not r1.complete
    assert sorted(p.name for p in (out / "blocks").iterdir()) == ["block-00001.npz"]
    r0 = runner.run_sweep(tiny(), out)
    assert r0.trained_blocks == 2 and r0.complete
    assert_same_results(results.open_results(out), reference)


def test_finish_joins_the_parts_of_two_processes(reference, tmp_path):
    out = tmp_path / "tiny"
    r0 = runner.run_sweep(tiny(), out, process_index=0, process_count=2)  # blocks 0 and 2
    assert r0.trained_blocks == 2 and not r0.complete
    with pytest.raises(
        SweepError, match=r"1 of 3 blocks cannot be used \(block-00001.npz missing\)"
    ):
        runner.finish(out)
    runner.run_sweep(tiny(), out, process_index=1, process_count=2)  # block 1
    assert_same_results(runner.finish(out), reference)


def test_refusals_leave_the_directory_untouched(reference, tmp_path):
    snapshot = {p.name: p.read_bytes() for p in reference.path.iterdir()}
    with pytest.raises(
        SweepError,
        match=r"meta.json: holds a different sweep \(train.lr: 0.001 there, 0.002 here\)",
    ):
        runner.run_sweep(tiny("train.lr=2e-3"), reference.path)
    stranger = tmp_path / "stranger"
    stranger.mkdir()
    (stranger / "notes.txt").write_text("mine")
    with pytest.raises(SweepError, match="not a geomtoy results directory"):
        runner.run_sweep(tiny(), stranger)
    with pytest.raises(SweepError, match="--resume: no run to resume"):
        runner.run_sweep(tiny(), tmp_path / "new", resume=True)
    assert snapshot == {p.name: p.read_bytes() for p in reference.path.iterdir()}
    assert [p.name for p in stranger.iterdir()] == ["notes.txt"]
    assert not (tmp_path / "new").exists()


def test_overwrite_replaces_a_results_directory(tmp_path):
    out = tmp_path / "tiny"
    runner.run_sweep(tiny("train.lr=2e-3"), out)
    report = runner.run_sweep(tiny(), out, overwrite=True)
    assert report.action == "fresh" and report.complete
    assert results.open_results(out).meta["spec"]["train"]["lr"] == 1e-3


def test_diverged_instances_are_flagged_and_the_others_finish(tmp_path):
    sweep = tiny("grid.train.lr=[1e-3, 1e35]", "train.seeds=1")
    runner.run_sweep(sweep, tmp_path / "d")
    res = results.open_results(tmp_path / "d")
    diverged = res.column("diverged").reshape(3, 2)
    np.testing.assert_array_equal(diverged, [[False, True]] * 3)
    loss = res.column("loss").reshape(3, 2)
    assert np.all(np.isfinite(loss[:, 0])) and np.all(loss[:, 0] < 0.2)
    assert list(res.column("geometry").reshape(3, 2)[:, 1]) == ["diverged"] * 3
    assert res.column("best").reshape(3, 2)[:, 0].all()  # a diverged instance is never best


def test_analyze_recomputes_geometry_from_the_weights(reference, tmp_path):
    import shutil

    out = tmp_path / "copy"
    shutil.copytree(reference.path, out)
    table = reference.features.drop_columns(["norm", "polytope"])
    results.atomic_write_parquet(
        out / "features.parquet", {c: table.column(c) for c in table.column_names}
    )
    inst = reference.instances.drop_columns(["geometry"])
    results.atomic_write_parquet(
        out / "instances.parquet", {c: inst.column(c) for c in inst.column_names}
    )
    res = runner.analyze_dir(out)
    assert res.instances.equals(reference.instances)
    assert res.features.equals(reference.features)


def test_best_of_point_ignores_nan():
    loss = np.array([3.0, 1.0, np.nan, np.nan, np.nan, 2.0, 2.0])
    point = np.array([0, 0, 0, 1, 1, 2, 2])
    np.testing.assert_array_equal(results.best_of_point(loss, point), [0, 1, 0, 0, 0, 1, 0])


def test_atomic_writes_leave_no_temporaries(tmp_path):
    path = tmp_path / "x.json"
    results.atomic_write_json(path, {"a": 1})
    results.atomic_write_json(path, {"a": 2})
    assert json.loads(path.read_text()) == {"a": 2} and os.listdir(tmp_path) == ["x.json"]


def test_20000_instances_run_as_bounded_blocks(tmp_path):
    """A grid larger than one block trains block by block: at most block_size at once."""
    text = """
name = "many"
[model]
n_features = 2
n_hidden = 1
[data]
feature_probability = 0.1
[train]
steps = 4
chunk_steps = 2
batch_size = 8
eval_samples = 8
seeds = 10
block_size = 4096
[grid]
"data.varied_importance" = { logspace = [0.1, 10.0, 40] }
"data.feature_probability" = { logspace = [1.0, 0.01, 50] }
"""
    sweep = loads(text)
    assert sweep.n_instances == 20_000

    class Sizes(Progress):
        sizes = []

        def block(self, index, n_instances, steps, step=0):
            self.sizes.append(n_instances)

    report = runner.run_sweep(sweep, tmp_path / "many", progress=Sizes(stream=None))
    assert report.complete and Sizes.sizes == [4000] * 5
    res = results.open_results(tmp_path / "many")
    assert res.instances.num_rows == 20_000 and res.params["W"].shape == (20_000, 1, 2)
    np.testing.assert_array_equal(res.column("instance"), np.arange(20_000))
    assert np.all(np.isfinite(res.column("loss")))
