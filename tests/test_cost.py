"""The memory and time model (geomtoy.runs.cost, geomtoy.runs.budget) against XLA's own buffer assignment, the
accelerator block size against device memory, and `geomtoy run --dry-run`."""

import jax
import numpy as np
import pytest

from geomtoy import cli, sweep
from geomtoy.engine import train
from geomtoy.runs import budget, cost
from geomtoy.spec import Shape

CHUNK = 50


def _compiled_peak(shape: Shape, n: int, block) -> int:
    """Bytes of the larger of the chunk and evaluation programs (arguments + outputs -
    aliased + temporaries) for n instances on one CPU device."""
    hp = train.HParams.create(n, shape.n_features)
    state = jax.eval_shape(lambda h: train.init_state(shape, h), hp)
    eval_block = None if block is None else train.instance_block(shape, n, "cpu", 8192)
    peaks = []
    for lowered in (
        train.lower_chunk(state, hp, shape, CHUNK, block=block),
        train.lower_evaluate(state.params, hp, shape, block=eval_block),
    ):
        m = lowered.compile().memory_analysis()
        peaks.append(
            m.argument_size_in_bytes
            + m.output_size_in_bytes
            - m.alias_size_in_bytes
            + m.temp_size_in_bytes
        )
    return max(peaks)


def _within_2x(estimate: float, measured: float) -> None:
    assert 0.5 <= estimate / measured <= 2.0, (estimate, measured)


SHAPES = [
    Shape(n_features=5, n_hidden=2),
    pytest.param(Shape(n_features=2, n_hidden=1), marks=pytest.mark.slow),
    pytest.param(Shape(n_features=20, n_hidden=5), marks=pytest.mark.slow),
    pytest.param(Shape(n_features=5, n_hidden=3, kind="abs"), marks=pytest.mark.slow),
]


@pytest.mark.slow  # over the fast suite's time budget: make test-all
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: f"{s.kind}-{s.n_features}x{s.n_hidden}")
def test_memory_model_within_2x_of_compiled_programs(shape):
    n = 96
    # CPU: cache-sized blocks inside the program
    block = train.instance_block(shape, n, "cpu")
    _within_2x(budget.block_bytes(shape, n, CHUNK, "cpu"), _compiled_peak(shape, n, block))
    # GPU/TPU: one vmap over all of a device's instances (compiled here for the CPU)
    _within_2x(budget.block_bytes(shape, n, CHUNK, "gpu"), _compiled_peak(shape, n, None))


GRID = """
name = "grid"
[model]
n_features = 5
n_hidden = 2
[data]
feature_probability = 0.1
[train]
seeds = 10
steps = {steps}
chunk_steps = 10
eval_samples = 1024
[grid]
"data.feature_probability" = {{ logspace = [1.0, 0.01, {points}] }}
"""


@pytest.mark.slow  # over the fast suite's time budget: make test-all
def test_accelerator_blocks_keep_a_million_instances_within_device_memory():
    text = (
        GRID.format(steps=10_000, points=1000) + '"train.lr" = { logspace = [1e-4, 1e-2, 100] }\n'
    )
    s = sweep.loads(text, file="million.toml")
    assert s.n_instances == 10**6
    memory = 16 * 2**30  # a 16 GiB device
    fitted = budget.fit_blocks(s, "gpu", devices=1, memory=memory, measure=False)
    blocks = fitted.blocks()
    assert sum(len(b.rows) for b in blocks) == 10**6
    g = fitted.groups[0]
    used = budget.block_bytes(g.shape, blocks[0].size, fitted.chunk_steps, "gpu")
    assert used <= cost.DEVICE_MEMORY_FRACTION * memory < 2 * used  # fits, and fills it
    assert budget.fit_blocks(s, "cpu", 1, memory) is s  # CPU keeps the sweep's blocks


def test_dry_run_prints_the_plan_and_writes_nothing(tmp_path, capsys):
    out = tmp_path / "never"
    path = "sweeps/phase_2x1.toml"
    assert cli.main(["run", path, "--scale", "smoke", "--out", str(out), "--dry-run"]) == 0
    text = capsys.readouterr().out
    assert "phase_2x1: 18 instances, 1 groups, 1 blocks" in text
    assert "per device per block" in text and "MiB" in text
    assert not out.exists()


def test_time_model_matches_the_benchmark_rates():
    """The CPU rates reproduce the measured per-device step times they were fitted to
    (bench/RESULTS.md) within 25%: many-small 13 us, geometry 1.05 ms."""
    small, big = Shape(n_features=5, n_hidden=2), Shape(n_features=200, n_hidden=20)
    assert cost.step_seconds(small, "cpu") == pytest.approx(13e-6, rel=0.25)
    assert cost.step_seconds(big, "cpu") == pytest.approx(1.05e-3, rel=0.25)


def _fake_gpu(monkeypatch, memory: int, measured=None) -> None:
    """A GPU of `memory` bytes, as runner and cost see it; its memory analysis gives
    `measured` bytes per instance (None: the backend reports none, the model counts)."""
    from geomtoy.runs import runner

    monkeypatch.setattr(runner, "backend", lambda: "gpu")
    monkeypatch.setattr(budget, "device_memory", lambda: memory)
    monkeypatch.setattr(budget, "measured_instance_bytes", lambda *a, **k: measured)


def test_an_accelerator_trains_in_blocks_chosen_from_its_memory(monkeypatch, tmp_path, capsys):
    """On a GPU or TPU, train.block_size = "auto" becomes the block whose programs fill
    half of one device's memory, with bytes per instance from the compiled programs'
    memory analysis where the backend gives it (the larger counts), else the model; on
    CPU, or with a block size set, the sweep's own blocks. A fake 64 MiB GPU here."""
    from geomtoy.runs import runner

    memory = 64 * 2**20
    _fake_gpu(monkeypatch, memory)
    s = sweep.loads(GRID.format(steps=100, points=2000), file="grid.toml")  # 20,000
    per = cost.instance_bytes(s.groups[0].shape, s.chunk_steps, "gpu")
    fitted = runner.device_blocks(s)
    size = int(cost.DEVICE_MEMORY_FRACTION * memory) // per
    assert fitted.groups[0].block_size == size < s.n_instances
    assert len(fitted.blocks()) == -(-s.n_instances // size)
    assert budget.block_bytes(fitted.groups[0].shape, size, s.chunk_steps, "gpu") <= memory / 2
    assert runner.device_blocks(s, platform="cpu") is s  # CPU keeps today's rule
    fixed = sweep.loads(GRID.format(steps=100, points=2000), sets=["train.block_size=100"])
    assert runner.device_blocks(fixed) is fixed  # a block size the sweep sets is kept
    _fake_gpu(monkeypatch, memory, measured=4 * per)  # the compiled programs need more
    assert runner.device_blocks(s).groups[0].block_size == size // 4
    # --dry-run shows the blocks the run will use, per device of a 4-device mesh
    _fake_gpu(monkeypatch, memory)
    path = tmp_path / "grid.toml"
    path.write_text(GRID.format(steps=100, points=2000))
    assert cli.main(["run", str(path), "--out", str(tmp_path / "never"), "--dry-run"]) == 0
    text = capsys.readouterr().out
    assert f"blocks of {4 * size:,} instead of" in text and "device's memory" in text


@pytest.mark.slow  # over the fast suite's time budget: make test-all
def test_a_run_on_a_small_accelerator_trains_more_blocks_to_the_same_tables(monkeypatch, tmp_path):
    from geomtoy.results import store as results
    from geomtoy.runs import runner

    s = sweep.loads(GRID.format(steps=20, points=2), file="grid.toml")  # 20 instances
    runner.run_sweep(s, tmp_path / "cpu")
    per = cost.instance_bytes(s.groups[0].shape, s.chunk_steps, "gpu")
    _fake_gpu(monkeypatch, memory=2 * 8 * per + 1)  # blocks of 8 instances
    runner.run_sweep(s, tmp_path / "gpu")
    a, b = (results.open_results(tmp_path / d) for d in ("cpu", "gpu"))
    assert [g["block_size"] for g in b.meta["groups"]] == [8] and b.meta["n_blocks"] == 3
    assert a.meta["n_blocks"] == 1
    np.testing.assert_allclose(b.column("loss"), a.column("loss"), rtol=1e-6)
    np.testing.assert_allclose(b.params["W"], a.params["W"], rtol=1e-5, atol=1e-6)
