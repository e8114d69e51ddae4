"""Memory a block of instances needs on its device, checked before training starts.

A sweep whose block cannot fit would otherwise write meta.json and then fail inside
XLA (RESOURCE_EXHAUSTED, or the host's OOM killer on CPU) on every resume. The estimate
counts the largest float32 temporaries of one instance's training step and evaluation
batch, plus its weights and optimizer state, as its model family states them
(geomtoy.engine.families: the model the dry run reads, geomtoy.runs.cost), so a refusal
names the keys that set it.
"""

from __future__ import annotations

import os

import jax

from geomtoy.engine import families
from geomtoy.engine.families import temp_bytes


def step_bytes(shape) -> int:
    """Bytes of the largest temporaries of one instance: a training step or an evaluation
    batch (its family's `temp_bytes`, the model the dry run reads)."""
    return max(temp_bytes(shape), temp_bytes(shape, getattr(shape, "eval_batch", None)))


def state_bytes(shape) -> int:
    """Bytes of one instance's weights, optimizer state and leaves (its family's), plus
    a gradient's copy of them."""
    return 2 * families.state_bytes(shape)


def device_memory() -> tuple[int, str]:
    """(bytes one local device may use, what that is): the accelerator's memory limit,
    or on CPU the machine's physical memory shared by all CPU devices."""
    device = jax.local_devices()[0]
    try:
        stats = device.memory_stats() or {}
    except Exception:  # some backends do not report memory
        stats = {}
    if stats.get("bytes_limit"):
        return int(stats["bytes_limit"]), f"{device.platform} device memory"
    try:
        total = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return 2**50, "memory"
    return total // max(1, len(jax.local_devices())), "host memory per CPU device"


def block_problem(shape, per_device: int, at_once: int, limit: int, what: str) -> str | None:
    """Why `per_device` instances of `shape` on one device, `at_once` of them stepping
    together (all on GPU/TPU, a cache-sized block on CPU), cannot fit in `limit` bytes;
    None if they fit."""
    need = state_bytes(shape) * per_device + step_bytes(shape) * min(at_once, per_device)
    if need <= limit:
        return None
    keys = (
        f"train.batch_size = {shape.batch_size}, model.n_features = {shape.n_features}, "
        f"model.n_hidden = {shape.n_hidden}"
    )
    gib = lambda b: f"{b / 2**30:.3g} GiB"
    if per_device == 1 or at_once == 1:
        return f"one instance ({keys}) needs about {gib(need)} of memory, more than the {gib(limit)} of {what}"
    return (
        f"a block of {per_device} instances per device ({keys}) needs about {gib(need)} of memory, "
        f"more than the {gib(limit)} of {what}; lower train.block_size"
    )
