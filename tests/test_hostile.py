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

from geomtoy import cli
from geomtoy.runs import lock
from tests.test_reliability import (
    TINY,
    copy_of,
    env,
    one_line,
    run,
    snapshot,
    tables,
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
def test_5_a_lock_file_planted_as_a_link_is_never_written(
    name, sweep, victim, tmp_path, capsys
):
    out = tmp_path / "out"
    _resumable(sweep, out, capsys)
    (out / name).symlink_to(victim)
    code, err = run("run", sweep, "--out", out, "-q", capsys=capsys)
    assert victim.read_bytes() == VICTIM
    assert code == 2 and name in one_line(err), err


def test_5_a_temporary_name_planted_as_a_link_is_never_followed(
    sweep, victim, tmp_path, capsys
):
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
