"""Progress of a sweep: a header, one report per chunk, ETA, and a machine-readable log.

The training loop hands over each chunk's per-instance mean losses once they are on the
host (the one host sync per chunk; never one per step). Events, in order: `start` (the
header line: instances, groups, blocks, backend and devices, output directory), then per
block `group` (when a new shape group begins: "compiling group k/G (...)"), `block`,
`chunk` ..., `block_end`; `note` and `close`. Three ways to show it:

- a terminal: a bar redrawn in place; when the terminal is narrow, fields are dropped in
  `DROP_ORDER` (loss quantiles, elapsed, the bar's graphic, rate, loss; the ETA last);
- a log (stderr not a TTY, e.g. a batch job): lines that start with the wall-clock time,
  at most one chunk line every `log_every` seconds (and the last chunk of each block);
- a notebook (an IPython kernel, tqdm installed: the `notebook` extra): a tqdm.auto bar
  (tqdm's rate) with this ETA and the median loss beside it; without tqdm, a log's lines.

A chunk line::

    pentagon block 1/3 step 2500/10000 | ETA 0:00:42, 0:00:12 elapsed | 6.1e+05
    model-steps/s | loss med 0.0412 p10 0.0398 p90 0.0521          (on one line)

A model-step is one optimizer step of one instance. The speed counts only chunks that
did not compile: the first chunk of each block is left out, and its excess over the
speed is the compile time of its group. The ETA is the model-steps still to do at that
speed plus the mean compile time for every group not yet started; before the first
timed chunk there is no ETA ("?").

Every chunk, shown or not, is also a JSON line in the `log` file, the results directory's
`progress.jsonl` (written by process 0 of a multi-process run): time, block, group,
step, loss quantiles, diverged count, rate, ETA. `trackers` (callables taking that
record, e.g. `WandbTracker`) receive the same records.
"""

from __future__ import annotations

import collections
import json
import math
import os
import shutil
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TextIO

import jax
import numpy as np

from geomtoy.results.store import open_log


def backend_line() -> str:
    """Where a run trains, e.g. ``cpu: 2 devices (2 x cpu), 1 process``: part of the
    header, the first line of every run, so a log says whether an accelerator was found."""
    local = jax.local_devices()
    kinds = collections.Counter(d.device_kind for d in local)
    described = ", ".join(f"{n} x {kind}" for kind, n in kinds.items())
    line = f"{jax.default_backend()}: {len(local)} devices ({described})"
    if jax.process_count() > 1:
        line += f", {jax.device_count()} in all"
    if jax.process_count() == 1:
        return line + ", 1 process"
    return line + f", process {jax.process_index()} of {jax.process_count()} (from 0)"


def _hms(seconds: float | None) -> str:
    if seconds is None or not math.isfinite(seconds):
        return "?"
    seconds = int(round(seconds))
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


def _join(fields: dict[str, str], names: Sequence[str]) -> str:
    return "".join(fields[n] for n in names)


def tqdm_auto():
    """tqdm.auto's bar class (a widget in Jupyter), or None without tqdm."""
    try:
        from tqdm.auto import tqdm
    except ModuleNotFoundError:
        return None
    return tqdm


def _bar(**kw):
    """A tqdm.auto bar: Jupyter's widget, or tqdm's text bar where the widget cannot be
    drawn (ipywidgets missing: tqdm.notebook raises ImportError)."""
    try:
        return tqdm_auto()(**kw)
    except ImportError:
        from tqdm.std import tqdm

        return tqdm(**kw)


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


DROP_ORDER = ("quantiles", "elapsed", "graphic", "rate", "loss", "eta")
"""The chunk line's fields, in the order a narrow terminal drops them."""
LOG_EVERY = 5.0
"""Seconds between chunk lines in a log (a file or a pipe)."""


def in_notebook() -> bool:
    """Whether this process is an IPython kernel (Jupyter, VS Code, Colab): its shell has
    a kernel; a terminal IPython's has not."""
    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if hasattr(ipython, "get_ipython") else None
    return shell is not None and hasattr(shell, "kernel")


class Progress:
    """Chunk-level reports of one run to `stream` (default sys.stderr; None: silent).

    `clock` is the time source (seconds; a fake one in tests) and `wall` the wall clock
    of a log's timestamps; `trackers` are callables that receive every chunk record;
    `about` is added to the header (e.g. the scale and an SAE sweep's source);
    `notebook` shows a tqdm.auto bar (None: in an IPython kernel when tqdm is there)."""

    def __init__(
        self,
        stream: TextIO | None = sys.stderr,
        tty: bool | None = None,
        clock: Callable[[], float] = time.perf_counter,
        trackers: Sequence[Callable[[dict], None]] = (),
        *,
        about: str | None = None,
        notebook: bool | None = None,
        log_every: float = LOG_EVERY,
        wall: Callable[[], float] = time.time,
    ):
        self.stream = stream
        self.tty = bool(stream is not None and (stream.isatty() if tty is None else tty))
        self.clock, self.wall, self.log_every = clock, wall, log_every
        self.trackers = list(trackers)
        self.about = about
        self._bar = None
        if notebook is None:
            notebook = stream is not None and not self.tty and in_notebook()
        self.notebook = bool(notebook and stream is not None and tqdm_auto() is not None)
        self._shown = -math.inf  # clock of the last chunk line of a log
        self.name = ""
        self.total = self.done = 0
        self.n_blocks = self.block_index = self.block_instances = 0
        self.steps = 1
        self.n_groups = self.groups_started = 0
        self.group_index = None
        self.rate = math.nan  # model-steps per second over chunks that did not compile
        self._t0 = self._t = None
        self._first_chunk = True
        self._group_first = False  # the block in training is its group's first
        self._untimed: list[tuple[float, int]] = []  # (seconds, model-steps) of first chunks
        self._line_open = False
        self._log = None

    # -- events from the run loop

    def start(
        self,
        name: str,
        total: int,
        n_blocks: int,
        done_blocks: int | None = None,
        *,
        instances: int | None = None,
        n_groups: int | None = None,
        out: str | Path | None = None,
        log: str | Path | None = None,
        fresh: bool = True,
    ) -> None:
        """A run begins: `total` model-steps to do in this process, over n_blocks, with
        n_groups shape groups still to train, into `out`. Writes the header line first;
        chunk records go to the JSON-lines file `log` (new when `fresh`)."""
        self.name, self.total, self.n_blocks, self.done = name, total, n_blocks, 0
        self.n_groups, self.groups_started, self.group_index = n_groups or 0, 0, None
        self._t0 = self.clock()
        if self.notebook:  # first: the header is written above the bar
            self._bar = _bar(total=total, desc=name, unit="model-step", unit_scale=True)
        if self.stream is not None:
            plan = [_plural(instances, "instance")] if instances is not None else []
            plan += [_plural(n_groups, "group")] if n_groups is not None else []
            plan += [_plural(n_blocks, "block")]
            where = f" -> {out}" if out is not None else ""
            about = f"; {self.about}" if self.about else ""
            self.note(f"{', '.join(plan)}{where}{about}; backend {backend_line()}")
        if log is not None:  # appended to by a resumed run
            self._log = open_log(log, fresh)  # never through a link planted there
        if done_blocks:
            self.note(f"resuming: {done_blocks} of {n_blocks} blocks already done")

    def group(self, index: int, n_groups: int, label: str) -> None:
        """The next block starts group `index` (0-based) of n_groups: its program compiles."""
        self.group_index = index
        self.groups_started += 1
        self._group_first = True
        self.note(f"compiling group {index + 1}/{n_groups} ({label})")

    def block(self, index: int, n_instances: int, steps: int, step: int = 0) -> None:
        """A block of n_instances begins (at `step` when resumed from a checkpoint)."""
        self.block_index, self.block_instances, self.steps = index, n_instances, steps
        self.done += step * n_instances  # steps a checkpoint saved are not to do
        if self._bar is not None and step:
            self._bar.update(step * n_instances)
        self._t = self.clock()
        self._first_chunk = True
        if step:
            self.note(f"block {index + 1}/{self.n_blocks}: resuming from step {step}")

    def chunk(self, step: int, model_steps: int, losses: np.ndarray) -> None:
        """A chunk ended at `step`; losses are the block's per-instance mean chunk losses."""
        now = self.clock()
        dt = now - self._t if self._t is not None else math.nan
        self._t = now
        self.done += model_steps
        if self._first_chunk:
            if self._group_first and dt > 0:
                self._untimed.append((dt, model_steps))
            self._group_first = False
        elif dt > 0:
            rate = model_steps / dt
            self.rate = rate if not self.rate > 0 else 0.7 * self.rate + 0.3 * rate
        self._first_chunk = False
        record = self._record(now, step, model_steps, losses)
        if self._bar is not None:
            self._bar.update(model_steps)
            self._bar.set_postfix_str(_join(self._fields(record), ("eta", "loss"))[3:])
        elif self.tty or now - self._shown >= self.log_every or step >= self.steps:
            self._shown = now
            self._emit(record)
        if self._log is not None:
            self._log.write(json.dumps(record) + "\n")
            self._log.flush()
        for track in self.trackers:
            track(record)

    def block_end(self, n_diverged: int) -> None:
        if n_diverged:
            self.note(f"block {self.block_index + 1}/{self.n_blocks}: {n_diverged} diverged")
        elif self.tty and self._line_open:
            self._write("\n")
            self._line_open = False

    def note(self, message: str) -> None:
        """A free-form line (resume, assembling, ...)."""
        if self._line_open:
            self._write("\n")
            self._line_open = False
        line = f"{self.name}: {message}" if self.name else message
        if self._bar is not None:
            self._bar.write(line, file=self.stream)
        else:
            self._write(self._stamp(line) + "\n")

    def close(self) -> None:
        if self._line_open:
            self._write("\n")
            self._line_open = False
        if self._bar is not None:
            self._bar.close()
            self._bar = None
        if self._log is not None:
            self._log.close()
            self._log = None

    # -- estimates

    def compile_seconds(self) -> float:
        """Mean compile time of a group: first chunks' time beyond the measured speed."""
        if not (self._untimed and self.rate > 0):
            return math.nan
        return float(np.mean([max(dt - ms / self.rate, 0.0) for dt, ms in self._untimed]))

    def eta(self) -> float | None:
        """Seconds still to go, or None before the first timed chunk."""
        if not self.rate > 0:
            return None
        left = max(self.total - self.done, 0) / self.rate
        groups_left = max(self.n_groups - self.groups_started, 0)
        if groups_left:
            compile_s = self.compile_seconds()
            left += groups_left * (compile_s if math.isfinite(compile_s) else 0.0)
        return left

    # -- formatting

    def _record(self, now: float, step: int, model_steps: int, losses: np.ndarray) -> dict:
        losses = np.asarray(losses, dtype=np.float64)
        finite = losses[np.isfinite(losses)]
        q = np.percentile(finite, [0, 10, 50, 90, 100]) if finite.size else [None] * 5
        eta = self.eta()
        return {
            "time_s": round(now - self._t0, 3) if self._t0 is not None else None,
            "block": self.block_index,
            "group": self.group_index,
            "step": step,
            "steps": self.steps,
            "model_steps_done": self.done,
            "model_steps_total": self.total,
            **{
                f"loss_{k}": None if v is None else float(v)
                for k, v in zip(("min", "p10", "p50", "p90", "max"), q)
            },
            "diverged": int(losses.size - finite.size),
            "rate": self.rate if self.rate > 0 else None,
            "eta_s": None if eta is None else round(eta, 3),
        }

    def _fields(self, r: dict) -> dict[str, str]:
        """The chunk line's fields by name (DROP_ORDER), each with its separator."""
        fields = {"eta": f" | ETA {_hms(r['eta_s'])}", "elapsed": f", {_hms(r['time_s'])} elapsed"}
        fields["rate"] = f" | {r['rate']:.3g} model-steps/s" if r["rate"] else " | - model-steps/s"
        fields["loss"], fields["quantiles"] = " | loss -", ""
        if r["loss_p50"] is not None:
            fields["loss"] = f" | loss med {r['loss_p50']:.4g}"
            fields["quantiles"] = f" p10 {r['loss_p10']:.4g} p90 {r['loss_p90']:.4g}"
        if r["diverged"]:
            fields["quantiles"] += f" ({r['diverged']} non-finite)"
        return fields

    def _line(self, r: dict, width: int | None = None) -> str:
        """The chunk line; within `width` columns (a terminal's) by dropping fields in
        DROP_ORDER, the bar's graphic among them."""
        frac = self.done / self.total if self.total else 1.0
        filled = int(round(frac * 20))
        fields = self._fields(r) | {
            "graphic": f"[{'#' * filled}{'.' * (20 - filled)}] ",
            "percent": f"{100 * frac:3.0f}% ",
        }
        head = f"{self.name} block {self.block_index + 1}/{self.n_blocks} step {r['step']}/{r['steps']}"
        order = ("eta", "elapsed", "rate", "loss", "quantiles")
        if width is None:
            return head + _join(fields, order)
        keep = set(fields)
        for name in (None, *DROP_ORDER):
            keep.discard(name)
            bar = _join(fields, [f for f in ("graphic", "percent") if f in keep])
            line = bar + head + _join(fields, [f for f in order if f in keep])
            if len(line) < width:
                return line
        return line[: width - 1]

    def _stamp(self, line: str) -> str:
        """A log's line starts with the wall-clock time; a terminal's does not."""
        if self.tty:
            return line
        return time.strftime("%Y-%m-%d %H:%M:%S ", time.localtime(self.wall())) + line

    def _emit(self, record: dict) -> None:
        if self.stream is None:
            return
        if not self.tty:
            self._write(self._stamp(self._line(record)) + "\n")
            return
        width = shutil.get_terminal_size((120, 20)).columns
        self._write("\r" + self._line(record, width) + "\x1b[K")
        self._line_open = True

    def _write(self, text: str) -> None:
        if self.stream is not None:
            try:
                self.stream.write(text)
                self.stream.flush()
            except (OSError, ValueError):  # a closed pipe or terminal never stops training
                self.stream = None


class WandbTracker:
    """`--log wandb`: every chunk record to a Weights & Biases run (wandb must be
    installed; its own settings apply, e.g. WANDB_MODE=offline, WANDB_DIR).

    The wandb run starts with the first record, so a run that is refused, or finds its
    results complete, starts none. Its files go where wandb puts them (WANDB_DIR, else
    ./wandb), never inside the results directory, whose files geomtoy checks. The
    project is `project`, else WANDB_PROJECT, else "geomtoy"."""

    def __init__(self, name: str, config: dict, project: str | None = None, **init):
        try:
            import wandb
        except ModuleNotFoundError:
            raise ModuleNotFoundError(
                "--log wandb needs the wandb package: pip install wandb"
            ) from None
        self._wandb, self._run = wandb, None
        project = project or os.environ.get("WANDB_PROJECT") or "geomtoy"
        self._init = {"project": project, "name": name, "config": config, **init}

    def __call__(self, record: dict) -> None:
        if self._run is None:
            self._run = self._wandb.init(**self._init)
        step = record["model_steps_done"]
        self._run.log({k: v for k, v in record.items() if v is not None}, step=step)

    def finish(self) -> None:
        if self._run is not None:
            self._run.finish()
