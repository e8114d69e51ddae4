"""The Python surface for notebooks that trains: `geomtoy.run`, `geomtoy.train_instances`
(opening results is geomtoy.results.frames, which starts no JAX).

Like the command line, the API trains on every CPU core by default: before JAX's backend
starts it asks for one CPU device per core (`parallel.configure_cpu_devices`) and splits
the instances over them. Importing this module imports JAX but starts no backend.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from geomtoy.engine import compile_cache, parallel, train
from geomtoy.results.frames import Results, open_results
from geomtoy.runs import runner
from geomtoy.runs.progress import Progress
from geomtoy.sweep import bundled, load

__all__ = ["Results", "open_results", "run", "train_instances"]


def _mesh(devices):
    """The instance mesh over `devices` local devices (None: one device)."""
    want = None if devices in (None, "auto") else int(devices)
    parallel.configure_cpu_devices(want)
    return parallel.current_mesh(parallel.instance_mesh(want))


def train_instances(
    shape,
    hp,
    root_seed: int = 0,
    chunk_steps: int = 500,
    on_chunk: Callable[[int, np.ndarray], None] | None = None,
    devices: int | str = "auto",
    progress: bool = True,
):
    """`geomtoy.engine.train.train_instances` over `devices` local devices (default all; on CPU
    one per core): instances are split over them when their count divides evenly. With
    `progress`, as geomtoy.run: a tqdm bar in a notebook, else lines on stderr. The
    compilation cache is the CLI's, checked the same way."""
    compile_cache.enable()
    mesh = _mesh(devices)
    report = Progress(sys.stderr if progress else None)
    n = int(np.shape(hp.seed)[0])
    report.start("train_instances", total=n * shape.steps, n_blocks=1, instances=n)
    report.block(0, n, steps=shape.steps)
    done = [0]

    def chunk(step: int, loss: np.ndarray) -> None:
        report.chunk(step, (step - done[0]) * n, loss)
        done[0] = step
        if on_chunk is not None:
            on_chunk(step, loss)

    try:
        return train.train_instances(shape, hp, root_seed, chunk_steps, chunk, mesh=mesh)
    finally:
        report.close()
        compile_cache.publish()


def run(
    sweep: str | Path,
    scale: str = "default",
    out: str | Path | None = None,
    sets: Sequence[str] = (),
    resume: bool = False,
    overwrite: bool = False,
    devices: int | str = "auto",
    progress: bool = True,
) -> Results:
    """Train a sweep (a TOML file or a bundled name such as "pentagon") into `out`
    (default results/<name>), as `geomtoy run` does, and open the results. A complete
    directory of the same sweep is opened without training. `progress`: a tqdm bar in a
    notebook (with tqdm installed), else lines on stderr; False: silent."""
    spec = load(bundled.resolve(sweep), scale=scale, sets=list(sets))
    out = Path(out) if out is not None else Path("results") / spec.name
    report = Progress(sys.stderr if progress else None)
    compile_cache.enable(out=out)  # as the command line: one cache, checked the same way
    command = f"geomtoy.run({str(sweep)!r}, scale={scale!r})"
    try:
        runner.run_sweep(
            spec, out, command=command, resume=resume, overwrite=overwrite, progress=report,
            mesh=_mesh(devices),
        )  # fmt: skip
    finally:
        compile_cache.publish()  # what this run compiled serves the next process
    return open_results(out)
