"""Reliability under batch schedulers (one writer per directory, every failure recoverable,
no silent wrong result): each numbered case of the reliability issue, black-box through
the command line on tiny sweeps.

Fast tests call `geomtoy.cli.main` in-process (the compiled programs are shared); the
kill, lock and signal tests run `python -m geomtoy` as a subprocess, with SIGKILL
injected at the writer's seams by tests/faults.py. The full scan (a kill at every
rename, replace, unlink and rmdir of a run, once each, then the same command to resume,
compared byte for byte with an uninterrupted run) is `slow`; one kill point of it (inside
the very first meta.json write) runs in the default suite.
"""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from geomtoy import cli
from geomtoy.runs import lock

ROOT = Path(__file__).resolve().parents[1]
FAULTS = Path(__file__).resolve().parent / "faults.py"
TABLES = ("instances.parquet", "features.parquet", "params.npz", "curves.npz")
LOGS = ("progress.jsonl",)

# Two blocks of two instances, two chunks each, a checkpoint after every chunk.
TINY = """
name = "tiny"
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
"data.feature_probability" = [1.0, 0.1]
"""

# Many chunks, so a signal reliably lands mid-training.
LONG = TINY.replace("steps = 20", "steps = 4000").replace("chunk_steps = 10", "chunk_steps = 20")


@pytest.fixture
def sweep(tmp_path):
    path = tmp_path / "tiny.toml"
    path.write_text(TINY)
    return path


def run(*argv, capsys=None) -> tuple[int, str]:
    """cli.main in-process: (exit code, stderr)."""
    code = cli.main([str(a) for a in argv])
    err = capsys.readouterr().err if capsys is not None else ""
    return code, err


def one_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]


def snapshot(path: Path) -> dict:
    if not path.exists():
        return {}
    return {
        str(p.relative_to(path)): p.read_bytes() for p in sorted(path.rglob("*")) if p.is_file()
    }


def tables(path: Path) -> dict[str, bytes]:
    return {t: (path / t).read_bytes() for t in TABLES}


def env(**extra) -> dict:
    e = dict(os.environ, PYTHONPATH=str(ROOT), JAX_PLATFORMS="cpu", **extra)
    e.pop("JAX_NUM_CPU_DEVICES", None)
    return e


def geomtoy(*argv, faults: tuple = (), timeout=300, **popen) -> subprocess.CompletedProcess:
    """`python -m geomtoy ARGV` (through tests/faults.py when `faults` are given)."""
    head = (
        [sys.executable, str(FAULTS), *faults, "--"]
        if faults
        else [sys.executable, "-m", "geomtoy"]
    )
    return subprocess.run(
        [*head, *map(str, argv)],
        capture_output=True,
        text=True,
        env=env(),
        timeout=timeout,
        **popen,
    )


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The tiny sweep run once, uninterrupted, as a subprocess: its table bytes."""
    d = tmp_path_factory.mktemp("reference")
    (d / "tiny.toml").write_text(TINY)
    r = geomtoy("run", d / "tiny.toml", "--out", d / "out", "--devices", "1", "-q")
    assert r.returncode == 0, r.stderr
    return d / "tiny.toml", tables(d / "out")


@pytest.fixture(scope="module")
def complete(tmp_path_factory):
    """A complete directory of the tiny sweep, made in-process (for the read tests)."""
    d = tmp_path_factory.mktemp("complete")
    (d / "tiny.toml").write_text(TINY)
    assert cli.main(["run", str(d / "tiny.toml"), "--out", str(d / "out"), "-q"]) == 0
    return d / "tiny.toml", d / "out"


def copy_of(complete, tmp_path) -> Path:
    import shutil

    out = tmp_path / "copy"
    shutil.copytree(complete[1], out)
    return out


# ---------------------------------------------------------------- 1. one writer per directory


def test_1_a_held_directory_is_refused_naming_the_holder(sweep, tmp_path, capsys):
    out = tmp_path / "out"
    held = lock.run_lock(out, command="geomtoy run other.toml")
    try:
        code, err = run("run", sweep, "--out", out, "-q", capsys=capsys)
    finally:
        lock.release_all(held)
    line = one_line(err)
    assert code == 2 and f"PID {os.getpid()} on " in line and str(out) in line
    assert not (out / "meta.json").exists()


def test_1_job_array_workers_share_but_a_worker_twice_or_a_plain_run_is_refused(tmp_path):
    out = tmp_path / "out"
    w0 = lock.run_lock(out, worker=(0, 3))
    w1 = lock.run_lock(out, worker=(1, 3))
    try:
        with pytest.raises(lock.Locked, match=r"as worker 0/3 .*PID \d+ on .* \(worker 0/3\)"):
            lock.run_lock(out, worker=(0, 3))
        with pytest.raises(lock.Locked, match=r"worker 0/3\), PID \d+ on .* \(worker 1/3\)"):
            lock.run_lock(out)
    finally:
        lock.release_all(w0)
        lock.release_all(w1)
    lock.release_all(lock.run_lock(out))  # free again; lock files removed
    assert sorted(os.listdir(out)) == []


def _start(sweep_text: str, tmp_path: Path, name: str, out: Path, *sets):
    path = tmp_path / f"{name}.toml"
    path.write_text(sweep_text)
    argv = ["run", path, "--out", out, "-q", *[a for s in sets for a in ("--set", s)]]
    return subprocess.Popen(
        [sys.executable, "-m", "geomtoy", *map(str, argv)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env(),
    )


def _wait_for_lock_holder(out: Path, proc, timeout=120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        if f"PID {proc.pid} " in " ".join(lock.holders(out)):
            return
        time.sleep(0.01)
    raise AssertionError(f"{proc.pid} never held the lock: {proc.communicate()}")


@pytest.mark.slow
def test_1_two_sweeps_on_one_out_exactly_one_runs(tmp_path):
    out = tmp_path / "out"
    a = _start(LONG.replace("steps = 4000", "steps = 400"), tmp_path, "a", out)
    _wait_for_lock_holder(out, a)
    b = _start(TINY.replace('name = "tiny"', 'name = "other"'), tmp_path, "b", out)
    _, err_b = b.communicate(timeout=120)
    assert b.returncode == 2 and f"PID {a.pid} on " in one_line(err_b)
    _, err_a = a.communicate(timeout=300)
    assert a.returncode == 0, err_a
    meta = json.loads((out / "meta.json").read_text())
    assert meta["name"] == "tiny" and meta["status"] == "complete"


@pytest.mark.slow
def test_1_three_plain_tasks_on_one_out_exactly_one_runs_and_a_requeue_is_refused(tmp_path):
    out = tmp_path / "out"
    text = LONG.replace("steps = 4000", "steps = 400")
    first = _start(text, tmp_path, "t0", out, "root_seed=0")
    _wait_for_lock_holder(out, first)
    others = [_start(text, tmp_path, f"t{k}", out, f"root_seed={k}") for k in (1, 2)]
    again = _start(text, tmp_path, "t0b", out, "root_seed=0")  # the same job, requeued
    for p in [*others, again]:
        _, err = p.communicate(timeout=120)
        assert p.returncode == 2 and f"PID {first.pid} on " in one_line(err)
    _, err = first.communicate(timeout=300)
    assert first.returncode == 0, err
    assert json.loads((out / "meta.json").read_text())["spec"]["root_seed"] == 0


# ---------------------------------------------------------------- 2. --overwrite is safe


def test_2_overwrite_with_a_sweep_that_cannot_run_keeps_the_old_results(complete, tmp_path, capsys):
    out = copy_of(complete, tmp_path)
    before = snapshot(out)
    code, err = run(
        "run",
        complete[0],
        "--out",
        out,
        "--overwrite",
        "--set",
        "root_seed=4294967296",
        capsys=capsys,
    )
    assert code == 2 and "root_seed" in one_line(err)
    assert snapshot(out) == before


# ---------------------------------------------------------------- 3. validation up front

HUGE = [
    ("root_seed=4294967296", "root_seed"),
    ("train.batch_size=1000000000", "train.batch_size"),
    ("train.steps=9223372036854775807", "train.steps"),
    ("train.eval_samples=1000000000000", "train.eval_samples"),
    ("train.seeds=1000000000000", "train.seeds"),
    ("model.n_features=100000000", "model.n_features"),
    ("grid.data.feature_probability={logspace=[1.0, 0.01, 100000000]}", "instances"),
    ("grid.train.lr={logspace=[1e-4, 1e-2, 1000000]}", "instances"),
    ("grid.model.n_hidden={linspace=[1, nan, 3]}", "n_hidden"),
    ("data.importance=1e300", "data.importance"),
    ("train.lr=1e39", "train.lr"),
]


@pytest.mark.parametrize("override,fragment", HUGE, ids=[h[0].split("=")[0] for h in HUGE])
def test_3_values_the_machine_cannot_hold_are_refused_before_writing(
    override, fragment, sweep, tmp_path, capsys
):
    out = tmp_path / "out"
    extra = ["--set", "train.seeds=1000000"] if fragment == "instances" else []
    t0 = time.monotonic()
    code, err = run("run", sweep, "--out", out, "--set", override, *extra, capsys=capsys)
    assert code == 2 and fragment in one_line(err)
    assert time.monotonic() - t0 < 10, "validation must not materialise the grid"
    assert not out.exists()


# ---------------------------------------------------------------- 4. the first write


def test_4_a_kill_inside_the_first_meta_json_write_is_resumable(sweep, tmp_path):
    """The fast sample of the kill scan: SIGKILL just before the first rename, the one
    that would put the first meta.json in place (the slow scan compares the bytes)."""
    out = tmp_path / "out"
    argv = ("run", sweep, "--out", out, "--devices", "1", "-q")
    killed = geomtoy(*argv, faults=("--under", out, "--kill", "1"))
    assert killed.returncode == -signal.SIGKILL
    assert any(p.name.startswith(".meta.json.tmp-") for p in out.iterdir())
    assert not (out / "meta.json").exists()
    r = geomtoy(*argv)
    assert r.returncode == 0, r.stderr
    assert sorted(p.name for p in out.iterdir()) == sorted(["meta.json", *TABLES, *LOGS])
    assert json.loads((out / "meta.json").read_text())["status"] == "complete"


# ---------------------------------------------------------------- 5. block checksums


def _interrupted_after_first_block(sweep, out, capsys):
    """A run stopped (SIGTERM path, in-process) once block 0 is written."""
    from interrupt import Interrupt, StopAfter

    from geomtoy import sweep as sweeps
    from geomtoy.runs import runner

    with pytest.raises(Interrupt):
        runner.run_sweep(sweeps.load(sweep), out, progress=StopAfter(3))
    assert (out / "blocks" / "block-00000.npz").exists()


def _flip_a_bit(path: Path, member: str | None = None) -> None:
    """Flip one bit of the data of an .npz member (the last byte of its largest array by
    default): damage that changes content, not a zip header field nobody reads."""
    import struct
    import zipfile

    with zipfile.ZipFile(path) as z:
        infos = z.infolist()
        info = (
            next(i for i in infos if i.filename == member)
            if member
            else max(infos, key=lambda i: i.file_size)
        )
    data = bytearray(path.read_bytes())
    name_len, extra_len = struct.unpack(
        "<HH", data[info.header_offset + 26 : info.header_offset + 30]
    )
    end = info.header_offset + 30 + name_len + extra_len + info.compress_size
    data[end - 1] ^= 0x10
    path.write_bytes(bytes(data))


def test_5_a_damaged_block_is_retrained_and_said_so(sweep, complete, tmp_path, capsys):
    out = tmp_path / "out"
    _interrupted_after_first_block(sweep, out, capsys)
    _flip_a_bit(out / "blocks" / "block-00000.npz")
    code = cli.main(["run", str(sweep), "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 0 and "block-00000.npz: damaged" in err and "training it again" in err, err
    assert tables(out) == tables(complete[1])


# ---------------------------------------------------------------- 6. divergence


def test_6_diverged_instances_have_nan_loss_and_dimensionality(sweep, tmp_path, capsys):
    out = tmp_path / "out"
    code, _ = run(
        "run",
        sweep,
        "--out",
        out,
        "--set",
        "grid.train.lr=[1e-3, 1e35]",
        "--set",
        "train.seeds=1",
        capsys=capsys,
    )
    assert code == 0
    inst = pq.read_table(out / "instances.parquet").to_pydict()
    diverged = np.asarray(inst["diverged"])
    assert diverged.tolist() == [False, True, False, True]
    assert np.isnan(np.asarray(inst["loss"])[diverged]).all()
    assert np.isnan(np.asarray(inst["dims_per_feature"])[diverged]).all()
    assert not np.asarray(inst["best"])[diverged].any()
    assert np.isfinite(np.asarray(inst["dims_per_feature"])[~diverged]).all()
    cli.main(["analyze", str(out)])
    assert "2 diverged" in capsys.readouterr().out


# ---------------------------------------------------------------- 7. validated reads

DAMAGE = {
    "truncated instances": ("instances.parquet", lambda p: p.write_bytes(p.read_bytes()[:100])),
    "empty features": ("features.parquet", lambda p: p.write_bytes(b"")),
    "params not npz": ("params.npz", lambda p: p.write_text("hello")),
    "curves flipped": ("curves.npz", _flip_a_bit),
    "meta without runs": (
        "meta.json",
        lambda p: p.write_text(
            json.dumps({k: v for k, v in json.loads(p.read_text()).items() if k != "runs"})
        ),
    ),
}


@pytest.mark.parametrize("case", list(DAMAGE))
@pytest.mark.parametrize("command", ["analyze", "explore", "merge", "run", "open"])
def test_7_damaged_tables_are_named_in_one_line(case, command, complete, tmp_path, capsys):
    name, damage = DAMAGE[case]
    out = copy_of(complete, tmp_path)
    damage(out / name)
    before = snapshot(out)
    if case == "meta without runs" and command not in ("run", "merge"):
        return  # reading needs no run records; resuming and merging do
    if command == "open":
        from geomtoy.results import store as results
        from geomtoy.spec import SweepError

        with pytest.raises(SweepError, match=name):
            results.open_results(out)
        return
    argv = {
        "analyze": ["analyze", out],
        "explore": ["explore", out, "--out", tmp_path / "e.html"],
        "merge": ["merge", out],
        "run": ["run", complete[0], "--out", out],
    }[command]
    code, err = run(*argv, capsys=capsys)
    line = one_line(err)
    assert code == 2 and name in line, line
    assert snapshot(out) == before


# ---------------------------------------------------------------- 8. duplicate axes


@pytest.mark.parametrize(
    "grid",
    [
        '"data.feature_probability" = [1.0, 0.1]\ndata.feature_probability = [0.5]',
        '"data.feature_probability" = [1.0, 0.1, 1.0]',
        '"train.lr" = [1e-3, 0.001]',
    ],
    ids=["quoted and bare key", "repeated value", "equal floats"],
)
def test_8_duplicate_axes_and_values_are_refused(grid, tmp_path, capsys):
    text = TINY.split("[grid]")[0] + "[grid]\n" + grid + "\n"
    path = tmp_path / "dup.toml"
    path.write_text(text)
    code, err = run("run", path, "--out", tmp_path / "out", capsys=capsys)
    assert code == 2 and "feature_probability" in one_line(err) or "lr" in err
    assert not (tmp_path / "out").exists()


# ---------------------------------------------------------------- 9. merge never deletes


def test_9_merge_keeps_damaged_and_foreign_blocks_and_names_them(sweep, tmp_path, capsys):
    out = tmp_path / "out"
    _interrupted_after_first_block(sweep, out, capsys)
    block = out / "blocks" / "block-00000.npz"
    _flip_a_bit(block)
    foreign = out / "blocks" / "block-00001.npz"
    foreign.write_bytes(b"a worker's block, copied in by hand")
    before = snapshot(out)
    code, err = run("merge", out, capsys=capsys)
    line = one_line(err)
    assert code == 2 and "block-00000.npz" in line and "block-00001.npz" in line
    assert snapshot(out) == before


# ---------------------------------------------------------------- 10. signals


def _popen_run(path, out, *extra):
    return subprocess.Popen(
        [sys.executable, "-m", "geomtoy", "run", str(path), "--out", str(out), *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env(),
    )


def _wait_for(path: Path, proc, timeout=120):
    deadline = time.monotonic() + timeout
    while not path.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)
    assert path.exists(), proc.communicate()


@pytest.mark.slow
@pytest.mark.parametrize("sig,code", [(signal.SIGTERM, 143), (signal.SIGHUP, 129)])
def test_10_sigterm_and_sighup_checkpoint_and_say_how_to_resume(sig, code, tmp_path):
    path = tmp_path / "long.toml"
    path.write_text(LONG)
    out = tmp_path / "out"
    proc = _popen_run(path, out, "-q")
    _wait_for(out / "blocks" / "block-00000.ckpt.npz", proc)
    t0 = time.monotonic()
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == code, err
    assert time.monotonic() - t0 < 30
    assert "resume" in one_line(err) and "Traceback" not in err
    meta = json.loads((out / "meta.json").read_text())
    assert meta["status"] == "running"
    ckpt = out / "blocks" / "block-00000.ckpt.npz"
    with np.load(ckpt) as z:
        assert int(z["chunks_done"]) >= 2  # the checkpoint written at the signal


@pytest.mark.slow
@pytest.mark.parametrize("delay", [0.0, 0.3, 0.8, 1.5])
def test_10_ctrl_c_during_start_up_stops_the_run(delay, sweep, tmp_path):
    out = tmp_path / "out"
    proc = _popen_run(sweep, out)
    time.sleep(delay)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode in (130, -signal.SIGINT), err
    assert not (out / "instances.parquet").exists()


@pytest.mark.slow
def test_10_a_closed_progress_pipe_never_stops_training(sweep, tmp_path):
    out = tmp_path / "out"
    proc = _popen_run(sweep, out)
    proc.stdout.close()
    proc.stderr.close()
    assert proc.wait(timeout=300) == 0
    assert json.loads((out / "meta.json").read_text())["status"] == "complete"


@pytest.mark.slow
def test_10_sigterm_then_resume_gives_the_uninterrupted_tables(tmp_path):
    path = tmp_path / "long.toml"
    path.write_text(LONG.replace("steps = 4000", "steps = 400"))
    out, ref = tmp_path / "out", tmp_path / "ref"
    proc = _popen_run(path, out, "-q", "--devices", "1")
    _wait_for(out / "blocks" / "block-00000.ckpt.npz", proc)
    proc.send_signal(signal.SIGTERM)
    proc.communicate(timeout=60)
    assert proc.returncode == 143
    for d in (out, ref):
        r = geomtoy("run", path, "--out", d, "-q", "--devices", "1")
        assert r.returncode == 0, r.stderr
    assert tables(out) == tables(ref)


# ---------------------------------------------------------------- 11. OS errors


def test_11_os_errors_before_writing_are_one_line(sweep, tmp_path, capsys):
    plain = tmp_path / "file"
    plain.write_text("mine")
    dangling = tmp_path / "dangling"
    dangling.symlink_to(tmp_path / "nowhere" / "x")
    loop = tmp_path / "loop"
    loop.symlink_to(loop)
    for out, what in [
        (plain / "out", "Not a directory"),
        (dangling, "dangling"),
        (loop / "out", "symbolic links"),
        (tmp_path / ("x" * 300), "too long"),
    ]:
        code, err = run("run", sweep, "--out", out, capsys=capsys)
        line = one_line(err)
        assert code == 2 and what in line, line
    assert plain.read_text() == "mine" and not (tmp_path / "nowhere").exists()


@pytest.mark.slow
@pytest.mark.parametrize("err", ["ENOSPC", "EROFS", "EACCES"])
def test_11_os_errors_while_writing_are_one_line_and_resumable(err, reference, tmp_path):
    path, want = reference
    out = tmp_path / "out"
    argv = ("run", path, "--out", out, "--devices", "1", "-q")
    for k in (1, 4, 12):  # the first meta.json, a block, a table
        r = geomtoy(*argv, faults=("--under", out, "--fail", f"{k}:{err}"))
        assert r.returncode == 2 and os.strerror(getattr(errno, err)) in one_line(r.stderr)
        r = geomtoy(*argv)
        assert r.returncode == 0, r.stderr
        assert tables(out) == want
        import shutil

        shutil.rmtree(out)


# ---------------------------------------------------------------- 12. smaller cases


def test_12_out_inside_a_results_directory_is_refused(complete, tmp_path, capsys):
    out = copy_of(complete, tmp_path)
    code, err = run("run", complete[0], "--out", out / "blocks", capsys=capsys)
    assert code == 2 and "inside the results directory" in one_line(err)
    assert not (out / "blocks").exists()


def test_12_a_leftover_blocks_dir_of_a_complete_run_is_cleaned(complete, tmp_path, capsys):
    out = copy_of(complete, tmp_path)
    (out / "blocks").mkdir()
    fingerprint = json.loads((out / "meta.json").read_text())["fingerprint"]
    with open(out / "blocks" / "block-00000.npz", "wb") as f:  # left by a kill in clean-up
        np.savez(f, fingerprint=np.asarray(fingerprint), instance=np.arange(2))
    code, _ = run("run", complete[0], "--out", out, capsys=capsys)
    assert code == 0 and not (out / "blocks").exists()


def test_12_explore_never_writes_into_a_results_directory(complete, tmp_path, capsys):
    out = copy_of(complete, tmp_path)
    before = snapshot(out)
    code, err = run("explore", out, "--out", out / "instances.parquet", capsys=capsys)
    assert code == 2 and "instances.parquet" in one_line(err)
    assert snapshot(out) == before


def test_12_more_devices_than_there_are_is_refused(sweep, tmp_path, capsys):
    code, err = run("run", sweep, "--out", tmp_path / "out", "--devices", "99", capsys=capsys)
    assert code == 2 and "99" in one_line(err)
    assert not (tmp_path / "out").exists()


# ---------------------------------------------------------------- the kill scan


def kill_points(argv, out: Path, tmp_path: Path) -> list[dict]:
    """Every seam call of an uninterrupted run of `argv` on `out` (a fresh copy)."""
    log = tmp_path / "seams.jsonl"
    r = geomtoy(*argv, faults=("--under", out, "--count", log))
    assert r.returncode == 0, r.stderr
    return read_seams(log)


def read_seams(log: Path) -> list[dict]:
    sys.path.insert(0, str(FAULTS.parent))
    from faults import read_log

    return read_log(log)


@pytest.mark.slow
@pytest.mark.parametrize("overwrite", [False, True], ids=["fresh", "overwrite"])
def test_kill_at_every_seam_then_resume_gives_identical_tables(overwrite, reference, tmp_path):
    import shutil

    path, want = reference
    out = tmp_path / "out"
    argv = ["run", path, "--out", out, "--devices", "1", "-q"]
    other = tmp_path / "other"
    if overwrite:  # replacing a complete directory of another sweep
        argv.append("--overwrite")
        r = geomtoy("run", path, "--out", other, "-q", "--set", "train.lr=2e-3")
        assert r.returncode == 0, r.stderr

    def fresh():
        shutil.rmtree(out, ignore_errors=True)
        if overwrite:
            shutil.copytree(other, out)

    fresh()
    points = kill_points(argv, out, tmp_path)
    assert tables(out) == want
    failures = []
    for p in points:
        for when in ("before", "after"):
            fresh()
            killed = geomtoy(*argv, faults=("--under", out, "--kill", f"{p['n']}:{when}"))
            assert killed.returncode == -signal.SIGKILL, (p, killed.stderr)
            again = geomtoy(*argv)
            if again.returncode != 0 or tables(out) != want:
                failures.append((when, p, again.stderr[-500:]))
            leftovers = [n for n in os.listdir(out) if n not in ("meta.json", *TABLES, *LOGS)]
            if leftovers:
                failures.append((when, p, f"left {leftovers}"))
    print(f"kill scan ({'overwrite' if overwrite else 'fresh'}): {2 * len(points)} kill points")
    assert not failures, failures
