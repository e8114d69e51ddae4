"""Progress of a sweep: one report per chunk, with loss quantiles, speed and ETA.

The training loop hands over each chunk's per-instance mean losses once they are on the
host (the one host sync per chunk; never one per step). In a terminal the report is a
progress bar redrawn in place; in a log (stderr not a TTY) it is one plain line per
chunk, e.g.::

    pentagon block 1/3 step 2500/10000 loss med 0.0412 p10 0.0398 p90 0.0521 | 61.3 inst/s
        6.1e+05 steps/s | ETA 0:00:42          (on one line)

inst/s counts whole trainings (instances x steps / steps per instance) per second and
steps/s model-steps (one instance, one optimizer step) per second. The ETA divides the
model-steps still to do by the recent speed; chunks that include compilation are left
out of the speed once a later chunk has been timed.
"""

from __future__ import annotations

import math
import shutil
import sys
import time
from typing import TextIO

import numpy as np


def backend_line() -> str:
    """Where a run trains, e.g. ``backend cpu: 2 devices (2 x cpu), 1 process``:
    the first line of every run, so a log says whether an accelerator was found."""
    import collections

    import jax

    local = jax.local_devices()
    kinds = collections.Counter(d.device_kind for d in local)
    described = ", ".join(f"{n} x {kind}" for kind, n in kinds.items())
    line = f"backend {jax.default_backend()}: {len(local)} devices ({described})"
    if jax.process_count() > 1:
        line += f", {jax.device_count()} in all"
    if jax.process_count() == 1:
        return line + ", 1 process"
    return line + f", process {jax.process_index()} of {jax.process_count()} (from 0)"


def _hms(seconds: float) -> str:
    if not math.isfinite(seconds):
        return "?"
    seconds = int(round(seconds))
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


class Progress:
    """Chunk-level reports of one run to `stream` (default sys.stderr; None: silent)."""

    def __init__(self, stream: TextIO | None = sys.stderr, tty: bool | None = None):
        self.stream = stream
        self.tty = bool(stream is not None and (stream.isatty() if tty is None else tty))
        self.name = ""
        self.total = 0
        self.done = 0
        self.n_blocks = 0
        self.block_index = 0
        self.block_instances = 0
        self.steps = 1
        self.rate = math.nan  # model-steps per second, smoothed
        self._t = None
        self._first_chunk = True
        self._rate_is_rough = False  # the speed so far includes a compilation
        self._line_open = False

    # -- events from the run loop

    def start(self, name: str, total: int, n_blocks: int, done_blocks: int | None = None) -> None:
        """A run begins: `total` model-steps to do in this process, over n_blocks."""
        self.name, self.total, self.n_blocks, self.done = name, total, n_blocks, 0
        if done_blocks:
            self.note(f"resuming: {done_blocks} of {n_blocks} blocks already done")

    def block(self, index: int, n_instances: int, steps: int, step: int = 0) -> None:
        """A block of n_instances begins (at `step` when resumed from a checkpoint)."""
        self.block_index, self.block_instances, self.steps = index, n_instances, steps
        self.done += step * n_instances  # steps a checkpoint saved are not to do
        self._t = time.perf_counter()
        self._first_chunk = True
        if step:
            self.note(f"block {index + 1}/{self.n_blocks}: resuming from step {step}")

    def chunk(self, step: int, model_steps: int, losses: np.ndarray) -> None:
        """A chunk ended at `step`; losses are the block's per-instance mean chunk losses."""
        now = time.perf_counter()
        dt = now - self._t if self._t is not None else math.nan
        self._t = now
        self.done += model_steps
        if dt > 0:
            rate = model_steps / dt
            if not self.rate > 0 or self._rate_is_rough:
                self.rate, self._rate_is_rough = rate, self._first_chunk
            elif not self._first_chunk:  # a block's first chunk may include compilation
                self.rate = 0.7 * self.rate + 0.3 * rate
        self._first_chunk = False
        self._emit(self._line(step, losses), final=False)

    def block_end(self, n_diverged: int) -> None:
        if n_diverged:
            self.note(f"block {self.block_index + 1}/{self.n_blocks}: {n_diverged} diverged")
        elif self.tty and self._line_open:
            self._write("\n")
            self._line_open = False

    def backend(self) -> None:
        """The run's first line: backend, devices and processes (`backend_line`)."""
        if self.stream is not None:
            self.note(backend_line())

    def note(self, message: str) -> None:
        """A free-form line (resume, assembling, ...)."""
        if self._line_open:
            self._write("\n")
            self._line_open = False
        self._write(f"{self.name}: {message}\n" if self.name else f"{message}\n")

    def close(self) -> None:
        if self._line_open:
            self._write("\n")
            self._line_open = False

    # -- formatting

    def _line(self, step: int, losses: np.ndarray) -> str:
        finite = losses[np.isfinite(losses)]
        if finite.size:
            p10, med, p90 = np.percentile(finite, [10, 50, 90])
            loss = f"loss med {med:.4g} p10 {p10:.4g} p90 {p90:.4g}"
        else:
            loss = "loss -"
        bad = losses.size - finite.size
        if bad:
            loss += f" ({bad} non-finite)"
        eta = (self.total - self.done) / self.rate if self.rate > 0 else math.nan
        speed = "-"
        if self.rate > 0:
            speed = f"{self.rate / self.steps:.4g} inst/s {self.rate:.2g} steps/s"
        return (
            f"{self.name} block {self.block_index + 1}/{self.n_blocks} step {step}/{self.steps} "
            f"{loss} | {speed} | ETA {_hms(eta)}"
        )

    def _emit(self, line: str, final: bool) -> None:
        if self.stream is None:
            return
        if not self.tty:
            self._write(line + "\n")
            return
        width = shutil.get_terminal_size((120, 20)).columns
        frac = self.done / self.total if self.total else 1.0
        bar_width = 20
        filled = int(round(frac * bar_width))
        eta = line.rsplit(" | ETA ", 1)
        bar = f"[{'#' * filled}{'.' * (bar_width - filled)}] {100 * frac:3.0f}% ETA {eta[-1]} "
        text = (bar + eta[0])[: width - 1]
        self._write("\r" + text + "\x1b[K")
        self._line_open = True

    def _write(self, text: str) -> None:
        if self.stream is not None:
            try:
                self.stream.write(text)
                self.stream.flush()
            except (OSError, ValueError):  # a closed pipe or terminal never stops training
                self.stream = None
