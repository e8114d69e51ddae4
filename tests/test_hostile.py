"""Hostile and damaged results directories (issue 24, items 5-11): nothing in --out is
written through a link planted there, --overwrite moves every table of the old sweep
aside, clean-up removes only what the run wrote, waits end on a signal and name the real
holder, a worker lock refuses tasks of another N.

Each case is a red-team report reproduced black-box through `geomtoy.cli.main` on the
tiny sweep of tests/test_reliability.py (in-process: the compiled programs are shared).
The reader fuzz corpus is tests/test_fuzz_results.py.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from geomtoy.runs import lock
from tests.test_reliability import (
    TINY,
    copy_of,
    env,
    one_line,
    run,
    snapshot,
)
from tests.test_reliability import complete as complete  # noqa: F401 (fixture)

VICTIM = b"a file outside --out that geomtoy must never write\n"


@pytest.fixture
def sweep(tmp_path):
    path = tmp_path / "tiny.toml"
    path.write_text(TINY)
    return path


@pytest.fixture
def victim(tmp_path):
    path = tmp_path / "victim.txt"
    path.write_bytes(VICTIM)
    return path


def _resumable(sweep, out, capsys):
    """A run of the tiny sweep stopped after its first block (status running)."""
    from geomtoy.runs import signals

    calls = {"n": 0}
    real = signals.check

    def stop_after_first_block():
        calls["n"] += 1
        if (out / "blocks" / "block-00000.npz").exists():
            raise signals.Stopped(signal.SIGTERM)
        real()

    signals.check, saved = stop_after_first_block, signals.check
    try:
        code, _ = run("run", sweep, "--out", out, "-q", capsys=capsys)
    finally:
        signals.check = saved
    assert code == 143
    assert json.loads((out / "meta.json").read_text())["status"] == "running"


# ---------------------------------------------------------------- 5. no write through a link


def test_5_a_progress_log_planted_as_a_link_is_never_followed_on_resume(
    sweep, victim, tmp_path, capsys
):
    out = tmp_path / "out"
    _resumable(sweep, out, capsys)
    (out / "progress.jsonl").unlink()
    (out / "progress.jsonl").symlink_to(victim)
    code, err = run("run", sweep, "--out", out, "-q", capsys=capsys)
    assert victim.read_bytes() == VICTIM
    assert code == 2 and "progress.jsonl" in one_line(err), err


def test_5_overwrite_never_truncates_through_a_planted_progress_link(
    complete, victim, tmp_path, capsys
):
    out = copy_of(complete, tmp_path)
    (out / "progress.jsonl").unlink()
    (out / "progress.jsonl").symlink_to(victim)
    code, err = run("run", complete[0], "--out", out, "-q", "--overwrite", capsys=capsys)
    assert code == 0, err
    assert victim.read_bytes() == VICTIM
    assert not (out / "progress.jsonl").is_symlink()


@pytest.mark.parametrize("name", [lock.RUN_LOCK, lock.META_LOCK])
def test_5_a_lock_file_planted_as_a_link_is_never_written(name, sweep, victim, tmp_path, capsys):
    out = tmp_path / "out"
    _resumable(sweep, out, capsys)
    (out / name).symlink_to(victim)
    code, err = run("run", sweep, "--out", out, "-q", capsys=capsys)
    assert victim.read_bytes() == VICTIM
    assert code == 2 and name in one_line(err), err


def test_5_a_temporary_name_planted_as_a_link_is_never_followed(sweep, victim, tmp_path, capsys):
    out = tmp_path / "out"
    _resumable(sweep, out, capsys)
    for name in ("meta.json", "instances.parquet", "params.npz"):
        (out / f".{name}.tmp-{os.getpid()}").symlink_to(victim)
    code, err = run("run", sweep, "--out", out, "-q", capsys=capsys)
    assert code == 0, err
    assert victim.read_bytes() == VICTIM


def test_5_blocks_planted_as_a_link_to_elsewhere_is_refused(sweep, tmp_path, capsys):
    out, elsewhere = tmp_path / "out", tmp_path / "elsewhere"
    _resumable(sweep, out, capsys)
    shutil.move(out / "blocks", elsewhere)
    (out / "blocks").symlink_to(elsewhere)
    before = snapshot(elsewhere)
    code, err = run("run", sweep, "--out", out, "-q", capsys=capsys)
    assert code == 2 and "blocks" in one_line(err), err
    assert snapshot(elsewhere) == before


# ---------------------------------------------------------------- 6. overwrite and clean-up

FINITE = """
name = "finite"
[model]
kind = "relu_output"
n_features = 4
n_hidden = 2
[data]
feature_probability = 0.5
n_samples = 3
[train]
steps = 20
chunk_steps = 10
eval_samples = 64
seeds = 1
"""


def test_6_overwrite_moves_the_samples_of_a_finite_sweep_aside(sweep, tmp_path, capsys):
    import geomtoy

    finite, out = tmp_path / "finite.toml", tmp_path / "out"
    finite.write_text(FINITE)
    assert run("run", finite, "--out", out, "-q", capsys=capsys)[0] == 0
    assert (out / "samples.parquet").exists()
    code, err = run("run", sweep, "--out", out, "-q", "--overwrite", capsys=capsys)
    assert code == 0, err
    assert not (out / "samples.parquet").exists()
    assert geomtoy.open(out).samples is None


def test_6_clean_up_removes_only_what_the_run_wrote(sweep, tmp_path, capsys):
    out = tmp_path / "out"
    _resumable(sweep, out, capsys)
    foreign = {
        "block-00007.npz": b"someone's block file",
        "block-00001 copy.npz": b"a copy",
        "mine.ckpt.npz": b"someone's checkpoint",
        "block-00000.ckpt.npz.bak": b"a backup",
    }
    for name, data in foreign.items():
        (out / "blocks" / name).write_bytes(data)
    code, err = run("run", sweep, "--out", out, "-q", capsys=capsys)
    assert code == 0, err
    assert {p.name: p.read_bytes() for p in (out / "blocks").iterdir()} == foreign


def test_6_overwrite_moves_only_geomtoys_block_files_aside(complete, tmp_path, capsys):
    out = copy_of(complete, tmp_path)
    (out / "blocks").mkdir()
    (out / "blocks" / "notes.txt").write_text("the user's notes")
    (out / "blocks" / "block-00099.npz").write_bytes(b"not geomtoy's")
    code, err = run("run", complete[0], "--out", out, "-q", "--overwrite", capsys=capsys)
    assert code == 0, err
    assert (out / "blocks" / "notes.txt").read_text() == "the user's notes"
    assert (out / "blocks" / "block-00099.npz").read_bytes() == b"not geomtoy's"


# ---------------------------------------------------------------- 7-9. bounded readers

DEEP = "[" * 5000 + "]" * 5000


@pytest.mark.parametrize("where", ["toml", "set"])
def test_7_deep_nesting_in_a_sweep_or_set_is_one_line(where, sweep, tmp_path, capsys):
    argv = ["run", sweep, "--out", tmp_path / "out", "--dry-run"]
    if where == "toml":
        sweep.write_text(TINY + f"\n[scale.smoke]\ntrain.steps = {DEEP}\n")
    else:
        argv += ["--set", f"train.steps={DEEP}"]
    code, err = run(*argv, capsys=capsys)
    assert code == 2 and "nested" in one_line(err), err


def test_7_deep_nesting_in_meta_json_is_one_line_and_explore_skips_it(complete, tmp_path, capsys):
    root = tmp_path / "root"
    good = root / "good"
    shutil.copytree(complete[1], good)
    bad = root / "bad"
    shutil.copytree(complete[1], bad)
    meta = (bad / "meta.json").read_text()
    (bad / "meta.json").write_text(meta.replace('"spec": {', f'"deep": {DEEP}, "spec": {{', 1))
    code, err = run("analyze", bad, capsys=capsys)
    assert code == 2 and "meta.json" in one_line(err), err
    code, err = run("explore", root, "--out", tmp_path / "e.html", capsys=capsys)
    assert code == 0 and (tmp_path / "e.html").exists(), err


def test_7_a_damaged_sae_beside_a_good_toy_is_skipped_by_explore(complete, tmp_path, capsys):
    root = tmp_path / "root"
    shutil.copytree(complete[1], root / "toy")
    sae = root / "sae"
    shutil.copytree(complete[1], sae)
    meta = json.loads((sae / "meta.json").read_text())
    fp = meta["fingerprint"]
    meta |= {"family": "sae", "source_fingerprint": fp, "fingerprint": "x" * 16}
    (sae / "meta.json").write_text(json.dumps(meta))
    (sae / "params.npz").write_bytes(b"PK\x03\x04 not a zip")
    code, err = run("explore", root / "toy", "--out", tmp_path / "e.html", capsys=capsys)
    assert code == 0, err
    assert "warning" in err and "sae" in err


def _save(path: Path, **arrays):
    with open(path, "wb") as f:
        np.savez(f, **arrays)


def _params(out: Path) -> dict:
    with np.load(out / "params.npz") as z:
        return {k: z[k] for k in z.files}


def test_8_a_header_claiming_petabytes_is_refused_before_allocating(complete, tmp_path, capsys):
    """A .npy header that claims 6 PB (the member is small): refused from its header."""
    import zipfile

    out = copy_of(complete, tmp_path)
    p = _params(out)
    header = {"descr": "<f4", "fortran_order": False, "shape": (4, 2, 10**15)}
    with zipfile.ZipFile(out / "params.npz", "w") as z:
        for k, v in p.items():
            if k != "W":
                with z.open(f"{k}.npy", "w") as f:
                    np.lib.format.write_array(f, v)
        with z.open("W.npy", "w") as f:
            np.lib.format.write_array_header_1_0(f, header)
            f.write(b"\0" * 64)
    code, err = run("analyze", out, capsys=capsys)
    assert code == 2 and "params.npz" in one_line(err), err


def test_8_an_archive_that_inflates_past_the_budget_is_refused(complete, tmp_path, capsys):
    out = copy_of(complete, tmp_path)
    p = _params(out)
    with open(out / "params.npz", "wb") as f:
        np.savez_compressed(f, **p, junk=np.zeros((64, 1 << 20), np.uint8))  # 64 MiB, 64 KB
    os.environ["GEOMTOY_READ_LIMIT"] = str(16 << 20)
    try:
        code, err = run("analyze", out, capsys=capsys)
    finally:
        del os.environ["GEOMTOY_READ_LIMIT"]
    assert code == 2 and "too large" in one_line(err), err


@pytest.mark.parametrize("command", ["run", "export", "analyze"])
@pytest.mark.parametrize("case", ["string W", "wrong-shape W", "string loss"])
def test_9_crafted_tables_are_refused_in_one_line(case, command, complete, tmp_path, capsys):
    import pyarrow as pa
    import pyarrow.parquet as pq

    out = copy_of(complete, tmp_path)
    p = _params(out)
    if case == "string W":
        _save(out / "params.npz", **(p | {"W": p["W"].astype(str)}))
    elif case == "wrong-shape W":
        _save(out / "params.npz", **(p | {"W": p["W"][:, :1, :]}))
    else:
        t = pq.read_table(out / "instances.parquet")
        i = t.column_names.index("loss")
        t = t.set_column(i, "loss", pa.array([str(x) for x in t.column("loss").to_pylist()]))
        pq.write_table(t, out / "instances.parquet")
    before = snapshot(out)
    argv = {
        "run": ["run", complete[0], "--out", out],
        "export": ["export", out, "--out", tmp_path / "x.safetensors"],
        "analyze": ["analyze", out],
    }[command]
    code, err = run(*argv, capsys=capsys)
    line = one_line(err)
    assert code == 2 and "already complete" not in err, err
    assert ("params.npz" if "W" in case else "instances.parquet") in line, line
    assert snapshot(out) == before
    assert not (tmp_path / "x.safetensors").exists()


def test_9_a_fifo_in_place_of_a_table_never_hangs(complete, tmp_path, capsys):
    out = copy_of(complete, tmp_path)
    for name in ("params.npz", "meta.json"):
        shutil.copy(out / name, tmp_path / name)
        (out / name).unlink()
        os.mkfifo(out / name)
        code, err = run("analyze", out, capsys=capsys)
        assert code == 2 and name in one_line(err), err
        (out / name).unlink()
        shutil.copy(tmp_path / name, out / name)


# ---------------------------------------------------------------- 10-11. waits and workers


def test_10_a_meta_lock_wait_ends_on_sigterm_and_names_the_real_holder(tmp_path):
    """A process holds the meta lock; another waits for it: SIGTERM ends the wait at
    once (exit 143); a wait that times out names the holder, not the waiter."""
    out = tmp_path / "out"
    out.mkdir()
    holder = lock.FileLock(out / lock.META_LOCK, info={"command": "the holder"}).acquire()
    waiter = textwrap_waiter(out)
    try:
        p = subprocess.Popen(
            [sys.executable, "-c", waiter, "600"], env=env(), stderr=subprocess.PIPE, text=True
        )
        time.sleep(3)  # imports, then waiting
        assert p.poll() is None
        t0 = time.monotonic()
        p.send_signal(signal.SIGTERM)
        _, err = p.communicate(timeout=20)
        assert p.returncode == 143 and time.monotonic() - t0 < 5, err
        r = subprocess.run(
            [sys.executable, "-c", waiter, "0.2"], env=env(), capture_output=True, text=True
        )
        assert r.returncode == 2, r.stderr
        assert f"PID {os.getpid()}" in r.stderr and "holder unknown" not in r.stderr, r.stderr
    finally:
        holder.release()


def textwrap_waiter(out: Path) -> str:
    return (
        "import sys\n"
        "from geomtoy.runs import lock, signals\n"
        "from geomtoy.errors import SweepError\n"
        "with signals.handling():\n"
        "    try:\n"
        f"        with lock.meta_lock({str(out)!r}, timeout_s=float(sys.argv[1])):\n"
        "            pass\n"
        "    except signals.Stopped as e:\n"
        "        sys.exit(e.exit_code)\n"
        "    except SweepError as e:\n"
        "        print(e, file=sys.stderr); sys.exit(2)\n"
    )


def test_11_a_worker_lock_refuses_a_task_of_another_array_size(tmp_path):
    out = tmp_path / "out"
    held = lock.run_lock(out, worker=(1, 2), command="task 1/2")
    try:
        with pytest.raises(lock.Locked, match="array of 2"):
            lock.run_lock(out, worker=(2, 3))
        lock.release_all(lock.run_lock(out, worker=(0, 2)))  # the same array: shared
    finally:
        lock.release_all(held)


@pytest.mark.slow
@pytest.mark.parametrize("delay", [0.0, 0.3, 1.0])
def test_11_a_ctrl_c_just_after_success_exits_0_or_says_a_word(delay, sweep, tmp_path):
    """Ctrl-C once the tables are written (the interpreter's teardown with JAX loaded
    takes seconds, and restores the default handlers): exit 0, never a silent 130."""
    out = tmp_path / "out"
    p = subprocess.Popen(
        [sys.executable, "-m", "geomtoy", "run", str(sweep), "--out", str(out), "-q"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env(),
    )
    deadline = time.monotonic() + 300
    while p.poll() is None and time.monotonic() < deadline:
        try:
            if json.loads((out / "meta.json").read_text())["status"] == "complete":
                break
        except (OSError, ValueError):
            pass
        time.sleep(0.005)
    time.sleep(delay)
    p.send_signal(signal.SIGINT)
    _, err = p.communicate(timeout=120)
    assert p.returncode == 0 or (p.returncode == 130 and one_line(err)), (p.returncode, err)
