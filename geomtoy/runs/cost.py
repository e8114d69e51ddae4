"""Memory and time model of a run, known before it starts (`geomtoy run --dry-run`).

Per model-step (one instance, one optimizer step on a batch of B samples, n features,
m hidden units; m' = 2m for the abs model, whose W2 doubles the weights):

* work: `elements` = n B sampled and elementwise values (counter-hash uniform, sparse x,
  bias, ReLU, residual, square, their gradients: ~21 integer and ~14 float ops each),
  and `flops` = 10 m' n B in the contractions (W x and W^T h forward, three products
  backward);
* memory: the state, ~4 bytes x (3 (params, Adam mu, nu) x (m' n + n) + 2n + 6) per
  instance, and the step's temporaries, 4 B (3.3 n + 1.5 m') bytes per instance at once
  when a device vmaps all its instances (GPU, TPU), plus 12 bytes per step of the chunk
  (random streams, losses). On CPU the engine runs a device's instances in blocks of
  about 1 MiB of temporaries (`train.instance_block`), so they stay bounded.
* evaluation: `eval_samples` forward samples per instance in batches of 8192, about
  4 x 8192 x 3.3 n bytes (2 n for abs) of temporaries per vmapped instance: on an accelerator the
  evaluation, not the training step, bounds how many instances fit at once.

The byte terms are fitted to XLA's buffer assignment (`compiled.memory_analysis()`) over
n = 2..20 and every model kind, which they match within 0.9-1.3x; tests hold the
estimate within 2x of the compiled programs. Time is work over per-device rates
(`RATES`): for CPU fitted to bench/RESULTS.md (one device per core), for GPU and TPU
first-principles priors (HBM bandwidth) that no run has checked yet.

Blocks (instances trained at once) default to about 1 GiB of temporaries
(`train.block_size = "auto"`) on CPU. On an accelerator the runner trains "auto" in the
block size that fills half of the device's allocator limit (`runner.device_blocks`,
`budget.fit_blocks`; bytes per instance measured from the compiled programs where the
backend reports them, `budget.measured_instance_bytes`, else this model), so a sweep of
10^6 instances runs in the fewest blocks that fit; `--dry-run` prints those blocks.
The bytes are each model family's (geomtoy.engine.families: `state_bytes`, `temp_bytes`;
the toy family's fitted terms above), so the dry run, the refusal bound
(geomtoy.runs.memory) and the block fit read one model; geomtoy.runs.budget measures the
compiled programs, reads the device's memory, fits the blocks and writes the --dry-run
report.
"""

from __future__ import annotations

import dataclasses

from geomtoy.engine.families import state_bytes, temp_bytes
from geomtoy.spec import Shape

BYTES = 4  # float32 and int32
DEVICE_MEMORY_FRACTION = 0.5
"""Share of an accelerator's memory one block's programs may use (the rest: the next
block's arguments, snapshot copies, the runtime)."""


@dataclasses.dataclass(frozen=True)
class Rates:
    """Seconds per sampled/elementwise value and per contraction FLOP, on one device."""

    element_s: float
    flop_s: float
    eval_factor: float  # an evaluation sample's cost relative to a training sample
    measured: bool  # fitted to measurements (True) or a prior nobody has checked (False)


RATES = {
    # 2-core Xeon, one device per core: many-small (5, 2) 13 us, mid (20, 5) 52 us,
    # geometry (200, 20) 1.05 ms per model-step and device (bench/RESULTS.md)
    "cpu": Rates(element_s=2.25e-9, flop_s=1.45e-11, eval_factor=0.35, measured=True),
    # H200: ~10 float32 passes over each value through 4.8 TB/s HBM at 50%; FP32 ~60 TFLOP/s
    "gpu": Rates(element_s=1.7e-11, flop_s=3.3e-14, eval_factor=0.35, measured=False),
    # TPU v5e: 0.8 TB/s HBM at 50%; float32 matmul ~50 TFLOP/s
    "tpu": Rates(element_s=1.0e-10, flop_s=4.0e-14, eval_factor=0.35, measured=False),
}


def step_work(shape: Shape) -> tuple[int, int]:
    """(elements, contraction FLOPs) of one model-step."""
    n, B = shape.n_features, shape.batch_size
    return n * B, 10 * shape.weight_rows * n * B


def step_temp_bytes(shape, chunk_steps: int) -> int:
    """Training temporaries per vmapped instance (all of a device's on GPU and TPU), plus
    12 bytes per step of the chunk (random streams, losses)."""
    return temp_bytes(shape) + 12 * chunk_steps


def eval_temp_bytes(shape) -> int:
    """Evaluation temporaries per vmapped instance (batches of up to EVAL_BATCH samples)."""
    return temp_bytes(shape, getattr(shape, "eval_batch", None))


def instance_bytes(shape: Shape, chunk_steps: int, platform: str) -> int:
    """Device bytes one more instance in a block costs: its state (in and out of a
    chunk), plus on GPU/TPU the larger of its training and evaluation temporaries."""
    if platform == "cpu":  # temporaries are per cache-sized block, not per instance
        return 2 * state_bytes(shape) + 12 * chunk_steps
    return 2 * state_bytes(shape) + max(step_temp_bytes(shape, chunk_steps), eval_temp_bytes(shape))


def step_seconds(shape: Shape, platform: str) -> float:
    """Model seconds of one model-step on one device."""
    r = RATES.get(platform, RATES["gpu"])
    elements, flops = step_work(shape)
    return elements * r.element_s + flops * r.flop_s


def eval_seconds(shape: Shape, platform: str) -> float:
    """Model seconds of one instance's evaluation on one device."""
    r = RATES.get(platform, RATES["gpu"])
    samples = shape.eval_batches * shape.eval_batch
    return r.eval_factor * step_seconds(shape, platform) * samples / shape.batch_size


def block_size_for(memory: int, per_instance: int, devices: int = 1) -> int:
    """Instances per block (over all `devices`) whose programs take at most
    DEVICE_MEMORY_FRACTION of each device's `memory`."""
    per_device = max(1, int(DEVICE_MEMORY_FRACTION * memory) // max(1, per_instance))
    return per_device * devices


def auto_blocks(sweep) -> bool:
    """Whether the sweep leaves its block size to geomtoy (train.block_size = "auto")."""
    return sweep.spec.get("train", {}).get("block_size", "auto") == "auto"
