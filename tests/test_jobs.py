"""Job arrays (`--worker K/N`) and jax.distributed failures, on localhost CPU.

The scheduler is the engine: tasks of one array share a results directory, each trains
the blocks b % N == K, a task killed mid-block resumes its checkpoint when started
again, and the tables are assembled exactly once, by the last task or by `geomtoy merge`.
The multi-process tests are `slow` except one cheap representative (three tasks in a
row, in-process).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from geomtoy import cli
from geomtoy.runs import jobs
from geomtoy.spec import SweepError

ROOT = Path(__file__).resolve().parents[1]
TABLES = ("instances.parquet", "features.parquet", "params.npz", "curves.npz")

# Five blocks of two instances (the shapes of test_reliability.TINY); 2 chunks each, a checkpoint after every chunk.
ARRAY = """
name = "array"
[model]
n_features = 3
n_hidden = 2
[data]
feature_probability = 0.1
[train]
steps = 20
batch_size = 16
eval_samples = 64
chunk_steps = 10
checkpoint_every = 1
seeds = 2
block_size = 2
[grid]
"data.feature_probability" = [1.0, 0.5, 0.2, 0.1, 0.05]
"""


def tables(path: Path) -> dict[str, bytes]:
    return {t: (path / t).read_bytes() for t in TABLES}


@pytest.mark.parametrize(
    "environ,want",
    [
        (
            {
                "SLURM_ARRAY_TASK_ID": "3",
                "SLURM_ARRAY_TASK_MIN": "0",
                "SLURM_ARRAY_TASK_COUNT": "4",
            },
            (3, 4),
        ),
        (
            {
                "SLURM_ARRAY_TASK_ID": "1",
                "SLURM_ARRAY_TASK_MIN": "1",
                "SLURM_ARRAY_TASK_COUNT": "8",
            },
            (0, 8),
        ),
        (
            {
                "SLURM_ARRAY_TASK_ID": "14",
                "SLURM_ARRAY_TASK_MIN": "10",
                "SLURM_ARRAY_TASK_MAX": "18",
                "SLURM_ARRAY_TASK_STEP": "2",
                "SLURM_ARRAY_TASK_COUNT": "5",
            },
            (2, 5),
        ),
        ({"SGE_TASK_ID": "2", "SGE_TASK_FIRST": "1", "SGE_TASK_LAST": "3"}, (1, 3)),
        ({"BATCH_TASK_INDEX": "0", "BATCH_TASK_COUNT": "2"}, (0, 2)),
        ({"GEOMTOY_WORKER": "2/3"}, (2, 3)),
    ],
)
def test_the_task_comes_from_the_schedulers_environment(environ, want):
    assert jobs.resolve("auto", environ) == want


@pytest.mark.parametrize(
    "value,environ,fragment",
    [
        ("3/3", {}, "outside 0..2"),
        ("1-3", {}, "expected K/N"),
        ("auto", {}, "no job-array task"),
        (
            "auto",
            {
                "SLURM_ARRAY_TASK_ID": "7",
                "SLURM_ARRAY_TASK_MIN": "0",
                "SLURM_ARRAY_TASK_MAX": "7",
                "SLURM_ARRAY_TASK_COUNT": "3",
            },
            "not 3 evenly spaced ids",
        ),
    ],
)
def test_bad_tasks_are_refused(value, environ, fragment):
    with pytest.raises(SweepError, match=fragment):
        jobs.resolve(value, environ)


def test_three_tasks_in_any_order_assemble_once_to_the_one_process_tables(tmp_path, capsys):
    """The cheap representative: tasks 2, 0, 1 of an array, one after the other, in-process;
    only the last one assembles, and the tables equal a one-process run's."""
    sweep = tmp_path / "array.toml"
    sweep.write_text(ARRAY)
    out, ref = tmp_path / "out", tmp_path / "ref"
    for k in (2, 0):
        assert cli.main(["run", str(sweep), "--out", str(out), "-q", "--worker", f"{k}/3"]) == 0
        assert not (out / "instances.parquet").exists()
        assert "not done yet" in capsys.readouterr().out
    assert cli.main(["run", str(sweep), "--out", str(out), "-q", "--worker", "1/3"]) == 0
    meta = json.loads((out / "meta.json").read_text())
    assert meta["status"] == "complete" and len(meta["runs"]) == 3
    assert sorted(os.listdir(out)) == sorted(["meta.json", "progress.jsonl", *TABLES])
    assert cli.main(["run", str(sweep), "--out", str(ref), "-q"]) == 0
    assert tables(out) == tables(ref)
    # A task requeued after the end finds nothing to do; merge leaves it as it is.
    assert cli.main(["run", str(sweep), "--out", str(out), "-q", "--worker", "1/3"]) == 0
    assert cli.main(["merge", str(out)]) == 0
    assert tables(out) == tables(ref)


def _env(**extra):
    e = dict(os.environ, PYTHONPATH=str(ROOT), JAX_PLATFORMS="cpu", **extra)
    e.pop("JAX_NUM_CPU_DEVICES", None)
    return e


def _task(sweep, out, *extra, **env):
    return subprocess.Popen(
        [sys.executable, "-m", "geomtoy", "run", str(sweep), "--out", str(out), "-q", *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=_env(**env),
    )


@pytest.mark.slow
def test_an_array_of_three_with_a_killed_and_requeued_task(tmp_path):
    """Three SLURM-like tasks at once; task 1 is SIGKILLed mid-block and started again
    while the others run; the tables are assembled exactly once and equal a
    one-process run's; `geomtoy merge` afterwards changes nothing."""
    sweep = tmp_path / "array.toml"
    sweep.write_text(ARRAY.replace("steps = 20", "steps = 400"))
    out, ref = tmp_path / "out", tmp_path / "ref"
    slurm = lambda k: {  # ids 1..3, as `sbatch --array=1-3`
        "SLURM_ARRAY_TASK_ID": str(k + 1),
        "SLURM_ARRAY_TASK_MIN": "1",
        "SLURM_ARRAY_TASK_COUNT": "3",
    }
    procs = {
        k: _task(sweep, out, "--worker", "auto", "--devices", "1", **slurm(k)) for k in range(3)
    }
    ckpt = out / "blocks" / "block-00001.ckpt.npz"
    deadline = time.monotonic() + 120
    while not ckpt.exists() and time.monotonic() < deadline:
        time.sleep(0.01)
    procs[1].send_signal(signal.SIGKILL)
    procs[1].wait()
    assert ckpt.exists()
    procs[1] = _task(sweep, out, "--worker", "auto", "--devices", "1", **slurm(1))
    outs = {k: p.communicate(timeout=300) for k, p in procs.items()}
    for k, p in procs.items():
        assert p.returncode == 0, outs[k][1]
    assembled = [k for k, (o, _) in outs.items() if "not done yet" not in o]
    assert len(assembled) == 1, outs
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "geomtoy",
            "run",
            str(sweep),
            "--out",
            str(ref),
            "-q",
            "--devices",
            "1",
        ],
        env=_env(),
        capture_output=True,
        text=True,
    )
    assert r.returncode == 0, r.stderr
    assert tables(out) == tables(ref)
    meta = json.loads((out / "meta.json").read_text())
    assert meta["status"] == "complete" and len(meta["runs"]) == 4
    assert (
        subprocess.run(
            [sys.executable, "-m", "geomtoy", "merge", str(out)], env=_env(), capture_output=True
        ).returncode
        == 0
    )
    assert tables(out) == tables(ref)


@pytest.mark.slow
def test_merge_joins_the_blocks_of_tasks_that_wrote_elsewhere(tmp_path):
    """Tasks 0 and 1 on the shared directory, task 2 on its node's own disk; its block
    files copied in, `geomtoy merge` (a dependent job) assembles the one-process tables."""
    import shutil

    sweep = tmp_path / "array.toml"
    sweep.write_text(ARRAY)
    out, scratch, ref = tmp_path / "out", tmp_path / "scratch", tmp_path / "ref"
    for k, d in ((0, out), (1, out), (2, scratch)):
        p = _task(sweep, d, "--worker", f"{k}/3", "--devices", "1")
        assert p.wait(timeout=300) == 0, p.stderr.read()
    assert not (out / "instances.parquet").exists()
    for f in (scratch / "blocks").glob("block-*.npz"):
        shutil.copy(f, out / "blocks" / f.name)
    r = subprocess.run(
        [sys.executable, "-m", "geomtoy", "merge", str(out)],
        env=_env(),
        capture_output=True,
        text=True,
    )
    assert r.returncode == 0, r.stderr
    assert _task(sweep, ref, "--devices", "1").wait(timeout=300) == 0
    assert tables(out) == tables(ref)


def _free_port():
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_a_lost_jax_distributed_peer_ends_each_survivor_with_one_line(tmp_path):
    """Two jax.distributed processes; process 1 is SIGKILLed mid-training and restarted
    alone (a requeue): both end with one line saying a peer was lost, no hang; the
    whole job rerun resumes and gives the one-process tables."""
    sweep = tmp_path / "array.toml"
    sweep.write_text(ARRAY.replace("steps = 20", "steps = 2000"))
    out, ref = tmp_path / "out", tmp_path / "ref"
    port = _free_port()

    def proc(k):
        return _task(
            sweep,
            out,
            "--devices",
            "1",
            GEOMTOY_DISTRIBUTED="1",
            GEOMTOY_COORDINATOR=f"localhost:{port}",
            GEOMTOY_NUM_PROCESSES="2",
            GEOMTOY_PROCESS_ID=str(k),
            GEOMTOY_HEARTBEAT_TIMEOUT="10",
            GEOMTOY_INIT_TIMEOUT="20",
        )

    p0, p1 = proc(0), proc(1)
    ckpt = out / "blocks" / "block-00001.ckpt.npz"
    deadline = time.monotonic() + 120
    while not ckpt.exists() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert ckpt.exists(), p1.communicate(timeout=5)
    p1.send_signal(signal.SIGKILL)
    p1.wait()
    p1 = proc(1)
    for p in (p0, p1):
        _, err = p.communicate(timeout=120)
        lines = [x for x in err.splitlines() if x.strip()]
        assert p.returncode not in (0, None) and len(lines) == 1, err[-3000:]
        assert "peer process" in lines[0] and "same command" in lines[0], lines
    port = _free_port()
    p0, p1 = proc(0), proc(1)
    for p in (p0, p1):
        _, err = p.communicate(timeout=300)
        assert p.returncode == 0, err[-3000:]
    assert _task(sweep, ref, "--devices", "1").wait(timeout=300) == 0
    assert tables(out) == tables(ref)


@pytest.mark.slow
def test_sigterm_stops_every_jax_distributed_process_with_a_checkpoint(tmp_path):
    """Two jax.distributed processes, each sent SIGTERM mid-block (as a scheduler
    preempting the job): both save a checkpoint and exit 143 with one line; the job
    rerun resumes from the checkpoints to the one-process tables (issue 24, item 4)."""
    sweep = tmp_path / "array.toml"
    sweep.write_text(ARRAY.replace("steps = 20", "steps = 4000"))
    out, ref = tmp_path / "out", tmp_path / "ref"

    def proc(k, port):
        return _task(
            sweep,
            out,
            "--devices",
            "1",
            GEOMTOY_DISTRIBUTED="1",
            GEOMTOY_COORDINATOR=f"localhost:{port}",
            GEOMTOY_NUM_PROCESSES="2",
            GEOMTOY_PROCESS_ID=str(k),
            GEOMTOY_INIT_TIMEOUT="60",
        )

    port = _free_port()
    procs = [proc(0, port), proc(1, port)]
    ckpts = [out / "blocks" / f"block-0000{b}.ckpt.npz" for b in (0, 1)]
    deadline = time.monotonic() + 120
    while not all(c.exists() for c in ckpts) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert all(c.exists() for c in ckpts), [p.poll() for p in procs]
    before = [c.stat().st_mtime_ns for c in ckpts]
    for p in procs:
        p.send_signal(signal.SIGTERM)
    for p in procs:
        _, err = p.communicate(timeout=120)
        lines = [x for x in err.splitlines() if x.strip()]
        assert p.returncode == 143, err[-3000:]
        assert len(lines) == 1 and "stopped by SIGTERM" in lines[0], err[-3000:]
    assert not (out / "instances.parquet").exists()
    assert [c.stat().st_mtime_ns for c in ckpts] != before  # checkpointed on the signal
    port = _free_port()
    procs = [proc(0, port), proc(1, port)]
    for p in procs:
        _, err = p.communicate(timeout=300)
        assert p.returncode == 0, err[-3000:]
    assert _task(sweep, ref, "--devices", "1").wait(timeout=300) == 0
    assert tables(out) == tables(ref)
