"""Job arrays: the cluster's scheduler as the distributed engine.

The instance blocks of a sweep are independent, so a job array needs no coordinator:
task K of N (`geomtoy run SWEEP --out DIR --worker K/N`, or `--worker auto` to read the
task from the scheduler's environment) trains the blocks b with b % N == K on its own
devices, checkpoints as any run does, and resumes when the scheduler requeues it. All
tasks share DIR: each holds the directory's run lock shared and its own worker lock
(geomtoy.runs.lock), so a task started twice, or a run of another sweep, is refused. The
task that finds every block done assembles the tables, under the short meta lock, so
they are written exactly once; `geomtoy merge DIR` as a dependent job does the same
for arrays whose last task ended early.

`--worker auto` reads, in this order:

- SLURM: SLURM_ARRAY_TASK_ID, SLURM_ARRAY_TASK_MIN, SLURM_ARRAY_TASK_COUNT (and
  SLURM_ARRAY_TASK_STEP); ids need not start at 0 (`--array=1-8` is K = id - min);
- Grid Engine: SGE_TASK_ID, SGE_TASK_FIRST, SGE_TASK_LAST, SGE_TASK_STEPSIZE;
- Google Cloud Batch: BATCH_TASK_INDEX, BATCH_TASK_COUNT;
- otherwise GEOMTOY_WORKER=K/N.
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Mapping

from geomtoy.errors import PEER_LOST, SweepError

Worker = tuple[int, int]
"""(K, N): task K of an array of N."""


def parse(text: str, where: str = "--worker") -> Worker:
    """'K/N' as (K, N) with 0 <= K < N; SweepError otherwise."""
    m = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", text or "")
    if not m:
        raise SweepError(where, None, f"expected K/N (task K of N, from 0), got {text!r}")
    k, n = int(m[1]), int(m[2])
    if not 0 <= k < n:
        raise SweepError(where, None, f"task {k} outside 0..{n - 1} of an array of {n}")
    return k, n


def _ints(env: Mapping[str, str], *names: str) -> list[int] | None:
    if not all(env.get(n, "").strip() for n in names):
        return None
    try:
        return [int(env[n]) for n in names]
    except ValueError:
        bad = next(n for n in names if not env[n].strip().lstrip("-").isdigit())
        raise SweepError(bad, None, f"not an integer: {env[bad]!r}") from None


def from_environment(environ: Mapping[str, str] | None = None) -> Worker:
    """The task of this process in its scheduler's job array (see the module doc)."""
    env = os.environ if environ is None else environ
    slurm = _ints(env, "SLURM_ARRAY_TASK_ID", "SLURM_ARRAY_TASK_MIN", "SLURM_ARRAY_TASK_COUNT")
    if slurm:
        task, first, count = slurm
        step = int(env.get("SLURM_ARRAY_TASK_STEP") or 1)
        last = int(env.get("SLURM_ARRAY_TASK_MAX") or first + step * (count - 1))
        if last != first + step * (count - 1) or (task - first) % step:
            reason = (
                f"task ids {first}..{last} step {step} are not {count} evenly spaced ids "
                "(a list such as --array=0,3,7?); give --worker K/N"
            )
            raise SweepError("SLURM_ARRAY_TASK_ID", None, reason)
        return parse(f"{(task - first) // step}/{count}", "SLURM_ARRAY_TASK_ID")
    sge = _ints(env, "SGE_TASK_ID", "SGE_TASK_FIRST", "SGE_TASK_LAST")
    if sge:
        task, first, last = sge
        step = int(env.get("SGE_TASK_STEPSIZE") or 1)
        return parse(f"{(task - first) // step}/{(last - first) // step + 1}", "SGE_TASK_ID")
    batch = _ints(env, "BATCH_TASK_INDEX", "BATCH_TASK_COUNT")
    if batch:
        return parse(f"{batch[0]}/{batch[1]}", "BATCH_TASK_INDEX")
    if env.get("GEOMTOY_WORKER"):
        return parse(env["GEOMTOY_WORKER"], "GEOMTOY_WORKER")
    reason = (
        "no job-array task in the environment (SLURM_ARRAY_TASK_ID, SGE_TASK_ID, "
        "BATCH_TASK_INDEX or GEOMTOY_WORKER); give --worker K/N"
    )
    raise SweepError("--worker auto", None, reason)


def resolve(value: str | None, environ: Mapping[str, str] | None = None) -> Worker | None:
    """The --worker option: None (a whole run), 'auto' (from the environment) or 'K/N'."""
    if value is None:
        return None
    if value == "auto":
        return from_environment(environ)
    return parse(value)


def owns(block: int, worker: Worker | None) -> bool:
    """Whether block `block` is this task's: b % N == K (every block for a whole run)."""
    return worker is None or block % worker[1] == worker[0]


# ---------------------------------------------------------------- jax.distributed jobs

SUPERVISED_ENV = "GEOMTOY_SUPERVISED"
FATAL_MARKERS = (
    "coordination service",
    "CoordinationService",
    "coordination_service",
    "DistributedRuntime",
    "distributed service",
    "already in error",
    "heartbeat",
    "Heartbeat",
    "barrier",
    "Barrier",
)
"""Words of the coordination service's fatal errors: a peer process was lost."""
_NATIVE_LOG = re.compile(
    r"^([IWEF]\d{4} |\*\*\* |\s+@\s|PC: |Check failure|F\d{4}|\[\w+\] |E0000|\s*#\d+ "
    r"|(WARNING|INFO|ERROR|DEBUG):\S)"
)
"""Lines of native (C++) logs and stack traces: held back, shown only if no peer was lost."""



def supervise(argv: list[str]) -> int:
    """Run `python -m geomtoy ARGV` as a child process of this one and relay its output,
    forwarding signals. If the child dies of a coordination-service failure, which
    aborts it from native code with a long stack trace, print one line instead."""
    import signal
    import subprocess
    import sys
    import threading

    env = dict(os.environ, **{SUPERVISED_ENV: "1"})
    child = subprocess.Popen(
        [sys.executable, "-m", "geomtoy", *argv],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        errors="replace",
        bufsize=1,
    )
    held: list[str] = []
    lost: list[str] = []

    def forward(signum, frame):
        with contextlib.suppress(OSError):
            child.send_signal(signum)

    saved = {s: signal.signal(s, forward) for s in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT)}

    def relay(src, dst, native: bool):
        for line in src:
            if any(m in line for m in FATAL_MARKERS):
                lost.append(line.strip())
            if native and (_NATIVE_LOG.match(line) or lost):
                held.append(line)
                continue
            _write(dst, line)

    threads = [
        threading.Thread(target=relay, args=(child.stdout, sys.stdout, False), daemon=True),
        threading.Thread(target=relay, args=(child.stderr, sys.stderr, True), daemon=True),
    ]
    for t in threads:
        t.start()
    try:
        code = child.wait()
        for t in threads:
            t.join(timeout=10)
    finally:
        for s, h in saved.items():
            signal.signal(s, h)
    if code != 0 and lost:
        why = _summary(lost[0])
        _write(sys.stderr, f"geomtoy: error: {PEER_LOST.format(why=why)}\n")
        return 3
    for line in held:
        _write(sys.stderr, line)
    return code if code >= 0 else 128 - code


def die_with_parent() -> None:
    """In the supervised child: be killed when the supervising process dies (Linux), as
    a scheduler that SIGKILLs the job's first process expects; elsewhere nothing."""
    with contextlib.suppress(Exception):
        import ctypes
        import signal

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def _summary(line: str) -> str:
    """The message of a native log line, without its prefix, briefly."""
    text = re.sub(r"^[IWEF]\d{4} [\d:.]+\s+\d+\s+\S+\]\s*", "", line).strip()
    return text if len(text) <= 160 else text[:157] + "..."


def _write(stream, text: str) -> None:
    try:
        stream.write(text)
        stream.flush()
    except (OSError, ValueError):  # a closed pipe never stops the run
        pass
