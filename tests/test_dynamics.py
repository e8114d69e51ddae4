"""Learning-dynamics snapshots (train.snapshots, paper §6) and the dynamics figure."""

from pathlib import Path

import numpy as np
import pytest
from interrupt import Interrupt, StopAfter

from geomtoy import cli
from geomtoy.geometry import dynamics, sets
from geomtoy.results import store as results
from geomtoy.runs import runner
from geomtoy.spec import SweepError
from geomtoy.sweep import load as load_sweep
from geomtoy.sweep import loads

ROOT = Path(__file__).resolve().parents[1]

# n=5, m=2, 120 steps in chunks of 20 (6 snapshots), a checkpoint every 2 chunks; a relu
# output and an abs group of 3 instances each, blocks of at most 2 (so 4 blocks).
SNAP = """
name = "snap"
[model]
n_features = 5
n_hidden = 2
[data]
feature_probability = 0.2
[train]
steps = 120
batch_size = 64
eval_samples = 1024
chunk_steps = 20
checkpoint_every = 2
seeds = 3
block_size = 2
snapshots = true
[grid]
"model.kind" = ["relu_output", "abs"]
"""


def snap(*sets):
    return loads(SNAP, file="snap.toml", sets=sets)


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    out = tmp_path_factory.mktemp("ref") / "snap"
    runner.run_sweep(snap(), out)
    return results.open_results(out)


def test_snapshots_every_chunk_end_at_the_final_weights(reference):
    c, (I, S, m, n) = reference.curves, (6, 6, 2, 5)
    np.testing.assert_array_equal(c["snapshot_step"], np.arange(20, 121, 20))
    assert c["snapshot_W"].shape == (I, S, m, n) and c["snapshot_W"].dtype == np.float32
    assert c["snapshot_b"].shape == (I, S, n)
    assert c["snapshot_W2"].shape == (I, S, n, m)
    np.testing.assert_array_equal(c["snapshot_step"], c["step"][0])  # one snapshot per chunk
    # the last snapshot is exactly the saved weights
    np.testing.assert_array_equal(c["snapshot_W"][:, -1], reference.params["W"])
    np.testing.assert_array_equal(c["snapshot_b"][:, -1], reference.params["b"])
    abs_rows = reference.column("model.kind") == "abs"
    np.testing.assert_array_equal(c["snapshot_W2"][abs_rows, -1], reference.params["W2"][abs_rows])
    assert np.isnan(c["snapshot_W2"][~abs_rows]).all()  # no W2 in relu_output
    assert np.all(np.isfinite(c["snapshot_W"])) and np.all(np.isfinite(c["snapshot_b"]))
    assert not np.array_equal(c["snapshot_W"][:, 0], c["snapshot_W"][:, -1])  # it moved


def test_a_snapshot_is_the_weights_at_its_step(reference, tmp_path):
    """Snapshot k equals the final weights of the same sweep trained for its step only."""
    out = tmp_path / "short"
    runner.run_sweep(snap("train.steps=60", "grid.model.kind=['relu_output']"), out)
    short = results.open_results(out)  # instances 0-2, as the relu_output rows of the reference
    np.testing.assert_array_equal(reference.curves["snapshot_W"][:3, 2], short.params["W"])
    np.testing.assert_array_equal(reference.curves["snapshot_b"][:3, 2], short.params["b"])
    np.testing.assert_array_equal(
        reference.curves["snapshot_W"][:3, :3], short.curves["snapshot_W"]
    )


# Blocks of 6 chunks, a checkpoint after chunks 2 and 4: stop in block 0 (checkpoint at 2),
# block 1 (at 2) and block 2, the first abs block (at 4).
@pytest.mark.parametrize("stop", [3, 10, 17])
def test_resumed_run_gives_identical_snapshots(reference, tmp_path, stop):
    out = tmp_path / "snap"
    with pytest.raises(Interrupt):
        runner.run_sweep(snap(), out, progress=StopAfter(stop))
    ckpts = list((out / "blocks").glob("*.ckpt.npz"))
    assert len(ckpts) == 1
    z = results.load_npz(ckpts[0])
    assert z["snapshot_W"].shape[:2] == (2, int(z["chunks_done"]))
    report = runner.run_sweep(snap(), out)
    assert report.action == "resume" and report.complete
    res = results.open_results(out)
    assert set(res.curves) == set(reference.curves)
    for k in reference.curves:
        np.testing.assert_array_equal(res.curves[k], reference.curves[k], err_msg=k)
    for k in reference.params:
        np.testing.assert_array_equal(res.params[k], reference.params[k], err_msg=k)
    assert res.instances.equals(reference.instances)


def test_snapshots_off_by_default_and_out_of_the_fingerprint(tmp_path):
    plain = loads(SNAP.replace("snapshots = true\n", ""))
    assert not plain.snapshots and "snapshots" not in plain.spec["train"]
    off = loads(SNAP.replace("snapshots = true", "snapshots = false"))
    assert off.fingerprint() == plain.fingerprint() != snap().fingerprint()
    assert snap().spec["train"]["snapshots"] is True
    out = tmp_path / "plain"
    text = SNAP.replace("snapshots = true\n", "")
    runner.run_sweep(loads(text, sets=["grid.model.kind=['relu_output']"]), out)
    assert set(results.open_results(out).curves) == {"step", "loss"}


def test_bad_snapshot_settings_are_refused(tmp_path, capsys):
    with pytest.raises(SweepError, match="expected true or false"):
        snap("train.snapshots=1")
    with pytest.raises(SweepError, match="cannot be a grid axis"):
        snap("grid.train.snapshots=[true, false]")
    with pytest.raises(SweepError, match=r"same train.steps .* got steps \[100, 120\]"):
        snap("grid.train.steps=[100, 120]")
    same = snap("grid.train.steps=[100, 120]", "train.chunk_steps=20", "train.snapshots=false")
    assert len(same.groups) == 4
    big = [
        "model.n_features=2000",
        "model.n_hidden=200",
        "train.seeds=100",
        "train.steps=10000",
        "train.chunk_steps=50",
    ]
    with pytest.raises(SweepError, match=r"train.snapshots: snapshots would take \d+\.\d GiB"):
        snap(*big)
    path = tmp_path / "snap.toml"
    path.write_text(SNAP)
    out = tmp_path / "out"
    args = ["run", str(path), "--out", str(out), "--quiet"] + [f"--set={s}" for s in big]
    assert cli.main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "more than 2 GiB" in err[0]
    assert not out.exists()


def test_jumps_are_found_and_merged_with_their_loss_drop():
    steps = np.arange(50, 10001, 50, dtype=float)

    def sigmoid(center, width):
        return 1 / (1 + np.exp(-(steps - center) / width))

    D = np.stack(
        [
            0.2 + 0.5 * sigmoid(2500, 300),  # 0.2 -> 0.7
            0.7 - 0.2 * sigmoid(6000, 60),  # 0.7 -> 0.5, sharp, with feature 2
            0.5 * sigmoid(6050, 60),  # 0 -> 0.5
            0.5 + 0.005 * np.sin(steps),  # noise on a plateau: no jump
        ],
        axis=1,
    )
    loss = 0.074 - 0.0002 * sigmoid(2500, 300) - 0.001 * sigmoid(6020, 60)
    jumps = dynamics.feature_jumps(D, steps)
    assert sorted(j["feature"] for j in jumps) == [0, 1, 2]
    for j, (before, after) in zip(
        sorted(jumps, key=lambda j: j["feature"]), [(0.2, 0.7), (0.7, 0.5), (0.0, 0.5)]
    ):
        # before/after are D_i where the slope crosses FLAT, a little inside the plateaus
        assert abs(j["before"] - before) < 0.05 and abs(j["after"] - after) < 0.05
    ev = dynamics.events(jumps, loss, steps)
    assert [sorted(j["feature"] for j in e["jumps"]) for e in ev] == [[0], [1, 2]]
    assert 1500 < ev[0]["start"] < 2500 < ev[0]["end"] < 4000
    assert 5000 < ev[1]["start"] < 6000 < ev[1]["end"] < 7000
    np.testing.assert_allclose([e["loss_drop"] for e in ev], [0.0002, 0.001], rtol=0.15)
    assert dynamics.all_digons("4 digon") and dynamics.all_digons("digon")
    assert not dynamics.all_digons("3 digon + 1 other") and not dynamics.all_digons("none")


def test_cross_set_octahedron_is_recognised():
    e = np.eye(3)
    cross = np.concatenate([e, -e[:, [1, 2, 0]]], axis=1)  # pairs (0,4), (1,5), (2,3)
    assert sets.cross_set_octahedron(cross, 3)
    same = np.concatenate([e[:, [0, 1]], -e[:, [0, 1]], e[:, [2]], -e[:, [2]]], axis=1)
    assert not sets.cross_set_octahedron(same, 3)  # pairs inside a set
    assert not sets.cross_set_octahedron(cross * [1, 1, 1, 1, 0.1, 1], 3)  # a dropped feature
    within, across = sets.set_cosines(cross[None], 3)
    np.testing.assert_allclose([within[0], across[0]], [0.0, -1.0], atol=1e-6)
    lean = np.zeros((3, 6))
    lean[0] = [1, 1, 1, -1, -1, -1]
    within, across = sets.set_cosines(lean[None], 3)  # PCA-like: each set on one direction
    np.testing.assert_allclose([within[0], across[0]], [1.0, -1.0], atol=1e-6)


def test_dynamics_sweeps_snapshot_every_chunk_at_smoke_scale():
    """(The figure script itself runs on smoke results in tests/test_figures.py.)"""
    for name in ("dynamics_digons", "dynamics_correlated_6x3"):
        sweep = load_sweep(ROOT / "sweeps" / f"{name}.toml", scale="smoke")
        assert sweep.snapshots and len(sweep.snapshot_steps()) == 10
