"""One runner for every family: SAE and finite-data sweeps get the toy sweeps' write
protocol (geomtoy.runs.directory): one writer per directory, --overwrite that keeps the
complete tables when refused or killed, job arrays and merge, checksummed block files."""

from __future__ import annotations

import json
import os
import shutil
import signal
import sys
from pathlib import Path

import pytest

from geomtoy import cli
from geomtoy import sweep as sweeps
from geomtoy.results import store as results
from geomtoy.runs import lock
from geomtoy.sae import family as sae_family
from geomtoy.sweep.grammar import is_sae_sweep

sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_reliability import _flip_a_bit, geomtoy, one_line, read_seams, snapshot  # noqa: E402

TABLES = ("instances.parquet", "features.parquet", "params.npz", "curves.npz")

# Four SAEs on a synthetic dictionary (no toy run needed), two blocks of two.
SAE = """
name = "sae_tiny"
[source]
results = "synthetic"
n_features = 5
n_hidden = 2
feature_probability = 0.2
[sae]
width = 4
[train]
steps = 20
batch_size = 32
eval_samples = 256
chunk_steps = 10
checkpoint_every = 1
seeds = 2
block_size = 2
[grid]
"sae.l1_coefficient" = [0.01, 0.1]
"""

# Four toy models on finite training sets of 8 samples (full batch), two blocks of two.
FINITE = """
name = "finite_tiny"
[model]
n_features = 5
n_hidden = 2
[data]
feature_probability = 0.2
n_samples = 8
[train]
steps = 20
eval_samples = 256
chunk_steps = 10
checkpoint_every = 1
seeds = 2
block_size = 2
[grid]
"data.feature_probability" = [0.5, 0.2]
"""
KINDS = {"sae": SAE, "finite": FINITE}


def tables(path: Path) -> dict[str, bytes]:
    return {t: (path / t).read_bytes() for t in TABLES}


@pytest.fixture(params=sorted(KINDS))
def sweep(request, tmp_path) -> Path:
    path = tmp_path / f"{request.param}.toml"
    path.write_text(KINDS[request.param])
    return path


def run(*argv) -> int:
    return cli.main([str(a) for a in argv])


def test_a_second_writer_is_refused_with_one_line(sweep, tmp_path, capsys):
    out = tmp_path / "out"
    held = lock.run_lock(out, command="geomtoy run other.toml")
    try:
        code = run("run", sweep, "--out", out, "-q")
    finally:
        lock.release_all(held)
    line = one_line(capsys.readouterr().err)
    assert code == 2 and f"PID {os.getpid()} on " in line and str(out) in line
    assert not (out / "meta.json").exists()


@pytest.mark.slow  # several runs each: over the fast suite's time budget (make test-all)
def test_a_refused_overwrite_leaves_the_complete_tables(sweep, tmp_path, capsys):
    out = tmp_path / "out"
    assert run("run", sweep, "--out", out, "-q") == 0
    before = snapshot(out)
    held = lock.run_lock(out, command="geomtoy run other.toml")
    try:  # another writer holds the directory: the overwrite must not touch it
        code = run("run", sweep, "--out", out, "-q", "--overwrite", "--set", "train.lr=2e-3")
    finally:
        lock.release_all(held)
    assert code == 2 and "PID" in one_line(capsys.readouterr().err)
    assert snapshot(out) == before
    assert results.open_results(out).meta["status"] == "complete"


@pytest.mark.slow  # several runs each: over the fast suite's time budget (make test-all)
def test_a_job_array_of_two_and_merge_give_the_one_process_tables(sweep, tmp_path, capsys):
    out, ref = tmp_path / "out", tmp_path / "ref"
    assert run("run", sweep, "--out", out, "-q", "--worker", "1/2") == 0
    assert not (out / "instances.parquet").exists()
    assert "not done yet" in capsys.readouterr().out
    assert run("run", sweep, "--out", out, "-q", "--worker", "0/2") == 0
    meta = json.loads((out / "meta.json").read_text())
    assert meta["status"] == "complete" and len(meta["runs"]) == 2
    assert run("run", sweep, "--out", ref, "-q") == 0
    assert tables(out) == tables(ref)
    assert run("merge", out) == 0  # complete: checked and left as it is
    assert tables(out) == tables(ref)


@pytest.mark.slow  # several runs each: over the fast suite's time budget (make test-all)
def test_merge_assembles_blocks_the_tasks_left(sweep, tmp_path, capsys):
    out, ref = tmp_path / "out", tmp_path / "ref"
    assert run("run", sweep, "--out", out, "-q", "--worker", "0/2") == 0
    worker = tmp_path / "worker"  # task 1 wrote its blocks elsewhere; copied in by hand
    assert run("run", sweep, "--out", worker, "-q", "--worker", "1/2") == 0
    for p in (worker / "blocks").glob("block-*.npz"):
        shutil.copy(p, out / "blocks" / p.name)
    assert run("merge", out) == 0
    assert run("run", sweep, "--out", ref, "-q") == 0
    assert tables(out) == tables(ref)


@pytest.mark.slow  # several runs each: over the fast suite's time budget (make test-all)
def test_a_bit_flipped_block_is_retrained_never_trusted(sweep, tmp_path, capsys):
    from interrupt import Interrupt, StopAfter

    from geomtoy.runs import runner

    out, ref = tmp_path / "out", tmp_path / "ref"
    if is_sae_sweep(sweep):
        loaded = sae_family.load(sweep, results_root=tmp_path)
    else:
        loaded = sweeps.load(sweep)
    with pytest.raises(Interrupt):  # stopped in the second block: block 0 is written
        runner.run_sweep(loaded, out, progress=StopAfter(3))
    block = out / "blocks" / "block-00000.npz"
    assert block.exists()
    _flip_a_bit(block)
    assert run("run", sweep, "--out", out) == 0
    err = capsys.readouterr().err
    assert "block-00000.npz: damaged" in err and "training it again" in err, err
    assert run("run", sweep, "--out", ref, "-q") == 0
    assert tables(out) == tables(ref)


@pytest.mark.slow  # one subprocess per kill point
@pytest.mark.parametrize("kind", sorted(KINDS))
def test_a_killed_overwrite_leaves_the_old_run_or_the_new_one(kind, tmp_path):
    """SIGKILL at every file operation of --overwrite up to the new meta.json: the
    directory then holds the old complete tables or the new run, and the same command
    finishes it with the tables of a fresh run."""
    path = tmp_path / f"{kind}.toml"
    path.write_text(KINDS[kind])
    out, old, ref, log = tmp_path / "out", tmp_path / "old", tmp_path / "ref", tmp_path / "log"
    assert geomtoy("run", path, "--out", old, "-q", "--set", "train.lr=2e-3").returncode == 0
    assert geomtoy("run", path, "--out", ref, "-q").returncode == 0
    argv = ("run", path, "--out", out, "--devices", "1", "-q", "--overwrite")
    shutil.copytree(old, out)
    assert geomtoy(*argv, faults=("--under", out, "--count", log)).returncode == 0
    seams = read_seams(log)
    last = next(p["n"] for p in seams if p["args"][-1] == "meta.json")
    for n in range(1, last + 1):
        shutil.rmtree(out)
        shutil.copytree(old, out)
        killed = geomtoy(*argv, faults=("--under", out, "--kill", str(n)))
        assert killed.returncode == -signal.SIGKILL
        if n == 1:
            assert snapshot(out) == snapshot(old)
        again = geomtoy(*argv)
        assert again.returncode == 0, again.stderr
        assert tables(out) == tables(ref), n
