"""Fault injection at the writer's seams: run the geomtoy CLI and SIGKILL it at the k-th
file-system operation (rename, replace, unlink, rmdir) on the results directory.

    python tests/faults.py --under DIR --count LOG -- run SWEEP --out DIR ...
        run normally; write every seam call on DIR, one JSON line each, to LOG
    python tests/faults.py --under DIR --kill K[:after] -- run SWEEP --out DIR ...
        SIGKILL the process just before (or just after) the K-th such call (1-based)
    python tests/faults.py --under DIR --fail K:ENOSPC -- run SWEEP --out DIR ...
        make the K-th such call, and every write after it, fail with that OS error

The seams are the `os` functions every write of the store goes through (pathlib and
shutil.rmtree call them too), so the scan covers every rename, unlink and rmdir of a run:
a kill before a call leaves the state the call was about to change, a kill after it the
state it made, exactly what a SIGKILL at that system call leaves.
"""

from __future__ import annotations

import argparse
import errno
import json
import os
import signal
import sys
from pathlib import Path

SEAMS = ("replace", "rename", "unlink", "remove", "rmdir")


def _is_under(args, kwargs, root: str) -> bool:
    if kwargs.get("dir_fd") is not None or kwargs.get("src_dir_fd") is not None:
        return True  # shutil.rmtree of one of our directories
    for a in args[:2]:
        if isinstance(a, (str, os.PathLike)) and os.path.abspath(a).startswith(root):
            return True
    return False


def install(
    root: str, count_log: str | None = None, kill: str | None = None, fail: str | None = None
) -> None:
    """Wrap the seams of `os`: log every call on `root`, SIGKILL at the chosen one, or
    fail it and every later one (a disk that filled up, a mount gone read-only)."""
    root = os.path.abspath(root)
    state = {"n": 0}
    fail_at, error = None, 0
    if fail:
        k, _, name = fail.partition(":")
        fail_at, error = int(k), getattr(errno, name)
    target, when = None, "before"
    if kill:
        k, _, when = kill.partition(":")
        target, when = int(k), when or "before"
    log = open(count_log, "a") if count_log else None  # noqa: SIM115

    def wrap(name, fn):
        def seam(*args, **kwargs):
            if not _is_under(args, kwargs, root):
                return fn(*args, **kwargs)
            state["n"] += 1
            n = state["n"]
            if log is not None:
                names = [os.fspath(a) for a in args[:2] if isinstance(a, (str, os.PathLike))]
                where = names if "dir_fd" in kwargs else [os.path.relpath(a, root) for a in names]
                log.write(json.dumps({"n": n, "op": name, "args": where}) + "\n")
                log.flush()
            if fail_at is not None and n >= fail_at:
                raise OSError(error, os.strerror(error), os.fspath(args[0]) if args else None)
            if n == target and when == "before":
                os.kill(os.getpid(), signal.SIGKILL)
            result = fn(*args, **kwargs)
            if n == target and when == "after":
                os.kill(os.getpid(), signal.SIGKILL)
            return result

        return seam

    for name in SEAMS:
        setattr(os, name, wrap(name, getattr(os, name)))


def read_log(path: Path) -> list[dict]:
    return [json.loads(line) for line in Path(path).read_text().splitlines()]


def main() -> int:
    argv = sys.argv[1:]
    split = argv.index("--")
    p = argparse.ArgumentParser()
    p.add_argument("--under", required=True)
    p.add_argument("--count")
    p.add_argument("--kill")
    p.add_argument("--fail")
    opts = p.parse_args(argv[:split])
    install(opts.under, opts.count, opts.kill, opts.fail)
    from geomtoy import cli

    return cli.main(argv[split + 1 :])


if __name__ == "__main__":
    sys.exit(main())
