"""The arguments of `geomtoy run`, apart from the command's handler (geomtoy/cli.py), so the
parser stays light: `geomtoy --help` imports neither NumPy nor JAX."""

from __future__ import annotations

import argparse

from geomtoy import spec


def add_run(sub) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "run",
        help="train a sweep into a results directory (resumes an interrupted one)",
        description="Train every instance of a sweep file and write the results directory. "
        "Rerunning the same command resumes an interrupted run and does nothing on a complete one.",
    )
    p.add_argument(
        "sweep",
        metavar="SWEEP",
        help="a sweep file, or the name of a bundled sweep such as pentagon (geomtoy sweeps "
        "lists them; the keys: docs/sweep-file.md)",
    )
    p.add_argument("--out", metavar="DIR", help="results directory (default: results/<name>)")
    p.add_argument(
        "--scale", choices=spec.SCALES, default="default", help="run size (default: %(default)s)"
    )
    p.add_argument("--resume", action="store_true", help="require a run to resume in DIR")
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a key, e.g. train.steps=2000, model.kind=linear, grid.train.lr=[1e-3,1e-2]",
    )
    p.add_argument(
        "--overwrite", action="store_true", help="replace a results directory holding another run"
    )
    p.add_argument("--quiet", "-q", action="store_true", help="no progress lines")
    _add_execution(p)
    return p


def _add_execution(p: argparse.ArgumentParser) -> None:
    """run's options of where and how it trains: tracker, devices, job array, dry run,
    compilation cache (the help lists them in this order, after the sweep's own)."""
    p.add_argument(
        "--log",
        choices=("none", "wandb"),
        default="none",
        help="also send every chunk's progress record to a tracker (needs the wandb package; "
        "its files go to $WANDB_DIR or ./wandb, outside the results directory)",
    )
    p.add_argument(
        "--log-project",
        metavar="NAME",
        help="the tracker's project (default: $WANDB_PROJECT, else geomtoy)",
    )
    p.add_argument(
        "--devices",
        type=_devices,
        default="auto",
        metavar="N",
        help="split instances over N local devices (default: all; on CPU one per core)",
    )
    p.add_argument(
        "--worker",
        metavar="K/N",
        help="task K of a job array of N sharing --out: train the blocks b %% N == K; "
        "'auto' reads the task from SLURM_ARRAY_TASK_ID, SGE_TASK_ID, ... (see README)",
    )
    p.add_argument(
        "--dry-run",
        action="store_true",
        help="print instances, groups, blocks, memory per block and estimated time; "
        "train and write nothing",
    )
    cache = p.add_mutually_exclusive_group()
    cache.add_argument(
        "--compile-cache",
        metavar="DIR",
        help="persistent cache of compiled programs, outside --out (default: "
        "$GEOMTOY_COMPILE_CACHE or ~/.cache/geomtoy/jax): a rerun of the same shapes compiles "
        "nothing. Your private data: created 0700, ignored with a warning if another user owns "
        "it or others can write it; entries are checked (manifest SHA-256, CPU, jax version) "
        "before JAX reads them, a mismatch is compiled again; nothing in it is unpickled",
    )
    cache.add_argument(
        "--no-compile-cache", action="store_true", help="compile every program afresh"
    )


def _devices(value: str):
    if value == "auto":
        return value
    if value.isdigit() and int(value) >= 1:
        return int(value)
    raise argparse.ArgumentTypeError(f"expected a positive integer or auto, got {value!r}")
