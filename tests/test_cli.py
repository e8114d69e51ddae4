"""The `geomtoy` command: bad input gets exit 2 and one line; SIGKILL + resume is exact."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from geomtoy import cli
from geomtoy.results import store as results

ROOT = Path(__file__).resolve().parents[1]

GOOD = """
name = "cli"
[model]
n_features = 5
n_hidden = 2
[data]
feature_probability = 0.1
importance = 1.0
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


def snapshot(path: Path) -> dict:
    """Every file under path with its bytes and modification time."""
    return {
        str(p.relative_to(path)): (p.read_bytes(), p.stat().st_mtime_ns)
        for p in sorted(path.rglob("*"))
        if p.is_file()
    }


@pytest.fixture(scope="module")
def existing(tmp_path_factory):
    """A complete results directory made through the command line."""
    d = tmp_path_factory.mktemp("cli")
    sweep = d / "good.toml"
    sweep.write_text(GOOD)
    out = d / "results"
    assert cli.main(["run", str(sweep), "--out", str(out), "--quiet"]) == 0
    return sweep, out


def test_run_writes_a_complete_directory_and_a_rerun_does_nothing(existing, capsys):
    sweep, out = existing
    meta = json.loads((out / "meta.json").read_text())
    assert meta["status"] == "complete" and meta["command"].startswith("geomtoy run ")
    assert meta["source"] == GOOD and meta["scale"] == "default"
    before = snapshot(out)
    assert cli.main(["run", str(sweep), "--out", str(out)]) == 0
    assert "already complete" in capsys.readouterr().out
    assert snapshot(out) == before


def test_analyze_command(existing, capsys, tmp_path):
    import shutil

    _, out = existing
    copy = tmp_path / "copy"
    shutil.copytree(out, copy)
    assert cli.main(["analyze", str(copy)]) == 0
    assert "9 instances, 0 diverged" in capsys.readouterr().out
    assert results.open_results(copy).instances.equals(results.open_results(out).instances)


BAD_FILES = {
    "unknown key": (
        GOOD.replace("seeds = 3", "seeds = 3\nstepz = 10"),
        "train.stepz",
        "unknown key",
    ),
    "wrong type": (
        GOOD.replace("steps = 160", 'steps = "ten"'),
        "train.steps",
        "expected an integer",
    ),
    "probability > 1": (
        GOOD.replace("feature_probability = 0.1", "feature_probability = 1.5"),
        "data.feature_probability",
        "outside (0, 1]",
    ),
    "probability 0 on an axis": (
        GOOD.replace("[1.0, 0.3, 0.05]", "[1.0, 0.0]"),
        'grid."data.feature_probability"[1]',
        "outside (0, 1]",
    ),
    "n_hidden < 1": (
        GOOD.replace("n_hidden = 2", "n_hidden = 0"),
        "model.n_hidden",
        "must be >= 1",
    ),
    "unknown kind": (
        GOOD.replace("[model]", '[model]\nkind = "transformer"'),
        "model.kind",
        "unknown value",
    ),
    "axis on no key": (
        GOOD + '"data.sparsity" = [0.1, 0.2]\n',
        'grid."data.sparsity"',
        "unknown key",
    ),
    "TOML syntax": (GOOD.replace("[train]", "[train"), None, "TOML syntax error"),
    "different sweep": (
        GOOD.replace("importance = 1.0", "importance = 0.5"),
        "meta.json",
        "holds a different sweep",
    ),
}


@pytest.mark.parametrize("case", list(BAD_FILES))
def test_bad_input_exits_2_with_one_line_and_touches_nothing(case, existing, tmp_path, capsys):
    _, out = existing
    text, key, reason = BAD_FILES[case]
    sweep = tmp_path / "bad.toml"
    sweep.write_text(text)
    before = snapshot(out)
    assert cli.main(["run", str(sweep), "--out", str(out), "--quiet"]) == 2
    captured = capsys.readouterr()
    lines = captured.err.splitlines()
    assert len(lines) == 1 and captured.out == ""
    named = str(out) if case == "different sweep" else str(sweep)
    assert lines[0].startswith(f"geomtoy: error: {named}: ")
    assert (key is None or f": {key}: " in lines[0]) and reason in lines[0]
    assert snapshot(out) == before
    assert sorted(os.listdir(tmp_path)) == ["bad.toml"]


@pytest.mark.parametrize(
    "argv, fragment",
    [
        (["run", "{sweep}", "--set", "train.lr=-1"], "--set train.lr: must be > 0"),
        (["run", "{sweep}", "--set", "train.stepz=1"], "--set train.stepz: unknown key"),
        (["run", "{dir}/missing.toml"], "missing.toml: cannot read"),
        (["run", "{sweep}", "--scale", "huge"], "argument --scale: invalid choice"),
        (["run", "{sweep}", "--bogus"], "unrecognized arguments: --bogus"),
        (["analyze", "{dir}"], "not a geomtoy results directory"),
    ],
)
def test_bad_arguments_exit_2_with_one_line(argv, fragment, existing, tmp_path, capsys):
    sweep, out = existing
    before = snapshot(out)
    argv = [a.format(sweep=sweep, dir=tmp_path) for a in argv] + ["--out", str(out)] * (
        argv[0] == "run"
    )
    rc = run_cli(argv)
    err = capsys.readouterr().err.splitlines()
    assert rc == 2 and len(err) == 1 and fragment in err[0], err
    assert snapshot(out) == before


def run_cli(argv) -> int:
    """cli.main's exit status, also when argparse exits by itself."""
    try:
        return cli.main(argv)
    except SystemExit as e:
        return e.code


KILL = """
name = "kill"
[model]
n_features = 5
n_hidden = 2
[data]
feature_probability = 0.1
[train]
steps = 3000
batch_size = 256
eval_samples = 1024
chunk_steps = 100
checkpoint_every = 1
seeds = 4
block_size = 4
[grid]
"data.feature_probability" = [0.3, 0.05]
"""
"""Two blocks of 4 instances, 30 chunks each, a checkpoint after every chunk: the kill at
the first checkpoint lands early in training, well before the tables could be written."""


def test_sigkill_mid_training_then_resume_gives_the_same_tables(tmp_path):
    sweep = tmp_path / "kill.toml"
    sweep.write_text(KILL)
    out = tmp_path / "killed"
    env = dict(os.environ, PYTHONPATH=str(ROOT), JAX_PLATFORMS="cpu")
    proc = subprocess.Popen(
        [sys.executable, "-m", "geomtoy", "run", str(sweep), "--out", str(out)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env=env,
    )
    ckpt = out / "blocks" / "block-00000.ckpt.npz"
    deadline = time.monotonic() + 120
    while not ckpt.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.002)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, proc.stderr.read().decode()[-2000:]
    # Killed mid-training: a checkpoint, no table, status running.
    assert json.loads((out / "meta.json").read_text())["status"] == "running"
    assert (
        not (out / "instances.parquet").exists()
        and not (out / "blocks" / "block-00001.npz").exists()
    )

    assert cli.main(["run", str(sweep), "--out", str(out), "--quiet"]) == 0  # resumes
    # The reference checkpoints once per block only: results never depend on checkpoints.
    ref = tmp_path / "uninterrupted"
    assert (
        cli.main(
            [
                "run",
                str(sweep),
                "--out",
                str(ref),
                "--quiet",
                "--set",
                "train.checkpoint_every=1000",
            ]
        )
        == 0
    )
    a, b = results.open_results(out), results.open_results(ref)
    np.testing.assert_allclose(a.column("loss"), b.column("loss"), rtol=0, atol=1e-6)
    assert a.instances.equals(b.instances) and a.features.equals(b.features)
    for key in ("W", "b"):
        np.testing.assert_array_equal(a.params[key], b.params[key])
    np.testing.assert_array_equal(a.curves["loss"], b.curves["loss"])
    assert len(a.meta["runs"]) == 2 and a.meta["runs"][0]["command"].startswith("geomtoy run ")
