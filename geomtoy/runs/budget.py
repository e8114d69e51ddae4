"""The planner's device side: block sizes fitted to an accelerator's memory, bytes per
instance measured from the compiled programs, and the `geomtoy run --dry-run` report.

The memory and time model itself is geomtoy.runs.cost (no JAX); this module adds what needs
the backend: the CPU block rule of the engine (`train.instance_block`), XLA's buffer
assignment (`compiled.memory_analysis()`) and the device's allocator limit.
"""

from __future__ import annotations

import dataclasses
import math

import jax

from geomtoy.engine import train
from geomtoy.engine.families import of_sweep
from geomtoy.runs import memory as device
from geomtoy.runs.cost import (
    BYTES,
    DEVICE_MEMORY_FRACTION,
    RATES,
    auto_blocks,
    block_size_for,
    eval_seconds,
    eval_temp_bytes,
    instance_bytes,
    step_seconds,
    step_temp_bytes,
)
from geomtoy.spec import Shape


def block_bytes(shape: Shape, n_instances: int, chunk_steps: int, platform: str) -> int:
    """Device bytes of the programs of a block of n_instances (on one device)."""
    total = n_instances * instance_bytes(shape, chunk_steps, platform)
    if platform == "cpu":  # plus one sub-block's temporaries, in the larger program
        train_block = train.instance_block(shape, n_instances, "cpu") or n_instances
        eval_block = train.instance_block(shape, n_instances, "cpu", shape.eval_batch)
        eval_block = eval_block or n_instances
        total += max(train_block * step_temp_bytes(shape, 0), eval_block * eval_temp_bytes(shape))
    return total


def measured_instance_bytes(shape: Shape, chunk_steps: int, probe: int = 64) -> int | None:
    """Bytes per instance from XLA's buffer assignment of the chunk and evaluation
    programs at two block sizes on the default backend (the slope of the larger), or
    None where the backend does not report it."""

    def peak(compiled) -> int:
        m = compiled.memory_analysis()
        return (
            m.argument_size_in_bytes
            + m.output_size_in_bytes
            - m.alias_size_in_bytes
            + m.temp_size_in_bytes
        )

    peaks = []
    try:
        for n in (probe, 2 * probe):
            hp = train.HParams.create(n, shape.n_features)
            state = jax.eval_shape(lambda h: train.init_state(shape, h), hp)
            chunk = train.lower_chunk(state, hp, shape, chunk_steps, block=None, mesh=None)
            evaluate = train.lower_evaluate(state.params, hp, shape, block=None, mesh=None)
            peaks.append(max(peak(chunk.compile()), peak(evaluate.compile())))
    except (AttributeError, NotImplementedError, TypeError):
        return None
    return max(1, (peaks[1] - peaks[0]) // probe)


def device_memory() -> int | None:
    """Bytes one accelerator's allocator may use (`memory.device_memory`), None on CPU."""
    if jax.default_backend() == "cpu":
        return None
    return device.device_memory()[0]


def fit_blocks(sweep, platform: str, devices: int, memory: int | None = None, measure=True):
    """The sweep with each group's block size chosen for this accelerator's memory
    (train.block_size = "auto" on GPU/TPU only; elsewhere the sweep as it is). Bytes per
    instance come from the compiled programs when `measure` and the backend reports
    them, else from the model; the larger of the two counts."""
    if platform == "cpu" or not auto_blocks(sweep):
        return sweep
    memory = memory or device_memory()
    if memory is None:
        return sweep
    groups = []
    for g in sweep.groups:
        per = instance_bytes(g.shape, sweep.chunk_steps, platform)
        # Measured bytes are within 2x of the model: no need to compile probes when the
        # whole group takes under half the budget by the model.
        if measure and 2 * per * len(g) > DEVICE_MEMORY_FRACTION * memory * devices:
            per = max(per, measured_instance_bytes(g.shape, min(sweep.chunk_steps, 64)) or 0)
        size = min(len(g), block_size_for(memory, per, devices))
        groups.append(dataclasses.replace(g, block_size=size))
    return dataclasses.replace(sweep, groups=tuple(groups))


def _mib(n: float) -> str:
    return f"{n / 2**20:,.1f} MiB" if n < 2**30 else f"{n / 2**30:,.2f} GiB"


def _hms(seconds: float) -> str:
    s = int(round(seconds))
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}"


def plan_lines(sweep, platform: str, devices: int, memory: int | None = None) -> list[str]:
    """What `geomtoy run --dry-run` prints: instances, groups, blocks, memory per block
    and the estimated time of the sweep on this backend (nothing is trained or written);
    a family with its own report (`Family.plan_lines`) gives it."""
    family = of_sweep(sweep)
    if family.plan_lines is not None:
        return family.plan_lines(sweep, platform, devices, memory)
    blocks = sweep.blocks(multiple=devices)
    r = RATES.get(platform, RATES["gpu"])
    basis = "fitted on a 2-core Xeon" if r.measured else "an unmeasured prior"
    lines = [
        f"{sweep.name}: {sweep.n_instances:,} instances, {len(sweep.groups)} groups, "
        f"{len(blocks)} blocks on {devices} {platform} device(s)"
        + (f" with {_mib(memory)} each" if memory else "")
    ]
    total_s, peak = 0.0, 0
    for g in sweep.groups:
        s = g.shape
        size = next(b.size for b in blocks if b.group == g.index)
        n_blocks = sum(b.group == g.index for b in blocks)
        per_device = math.ceil(size / devices)
        mem = block_bytes(s, per_device, sweep.chunk_steps, platform)
        peak = max(peak, mem)
        train_s = len(g) * s.steps * step_seconds(s, platform) / devices
        eval_s = len(g) * eval_seconds(s, platform) / devices
        total_s += train_s + eval_s
        lines.append(
            f"  group {g.index}: {s.kind} n={s.n_features} m={s.n_hidden} B={s.batch_size} "
            f"steps={s.steps}: {len(g):,} instances in {n_blocks} blocks of {size:,}; "
            f"{_mib(mem)} per device per block; train {_hms(train_s)} + eval {_hms(eval_s)}"
        )
    host = sum(
        len(g) * 10 * BYTES * (3 * g.shape.n_features * g.shape.n_hidden) for g in sweep.groups
    )
    lines.append(
        f"  estimated: {_mib(peak)} per device per block (largest), {_mib(host)} of tables "
        f"on the host, {_hms(total_s)} of training and evaluation plus ~1 s of compilation "
        f"per program (about 5 per group; none with a warm compilation cache); rates {basis}"
    )
    return lines
