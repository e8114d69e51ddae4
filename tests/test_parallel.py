"""Devices and processes (geomtoy.engine.parallel): results never depend on the placement.

conftest gives 4 fake CPU devices. Tolerance 1e-5 as elsewhere (float32; the per-device
programs see fewer instances, so XLA may block them differently).
"""

import contextlib
import json
import os
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import jax
import numpy as np
import pytest

from geomtoy.engine import parallel, train
from geomtoy.engine.train import HParams, Shape

RTOL = 1e-5
ROOT = Path(__file__).resolve().parents[1]
COLLECTIVES = (
    "all-gather",
    "all-reduce",
    "collective-permute",
    "all-to-all",
    "reduce-scatter",
    "collective-broadcast",
    "send(",
    "recv(",
)


def _hparams(I, n, seed=0):
    rs = np.random.default_rng(seed)
    return HParams.create(
        I,
        n,
        feature_probability=rs.uniform(0.02, 1.0, (I, 1)),
        importance=rs.uniform(0.1, 1.0, (I, n)),
        lr=rs.uniform(3e-4, 3e-3, I),
        weight_decay=rs.uniform(0.0, 0.05, I),
        seed=rs.integers(0, 4, I),
        instance_id=np.arange(100, 100 + I),
    )


def _train(shape, hp, chunks, devices, explicit=False):
    """Train over `devices` devices: the mesh passed explicitly (`explicit`), or set with
    jax.set_mesh (parallel.devices_used); geomtoy keeps no mesh of its own."""
    mesh = parallel.current_mesh(parallel.instance_mesh(devices)) if explicit else None
    with contextlib.nullcontext() if explicit else parallel.devices_used(devices):
        state = train.init_state(shape, hp, mesh=mesh)
        losses = []
        for c in chunks:
            state, loss = train.train_chunk(state, hp, shape, c)
            losses.append(np.asarray(loss))
        final = np.asarray(train.evaluate(state.params, hp, shape))
        n_dev = len(state.params.W.sharding.device_set)
    assert parallel.current_mesh() is None  # nothing left behind
    return jax.tree.map(np.asarray, state.params), np.stack(losses), final, n_dev


def test_four_devices_give_the_one_device_results():
    assert len(jax.devices()) == 4, "conftest should give 4 CPU devices"
    shape = Shape(n_features=6, n_hidden=2, batch_size=128, eval_samples=4096)
    hp = _hparams(12, 6)
    one = _train(shape, hp, [7, 13], devices=1)
    four = _train(shape, hp, [7, 13], devices=4, explicit=True)
    assert (one[3], four[3]) == (1, 4)
    np.testing.assert_allclose(four[0].W, one[0].W, rtol=RTOL, atol=1e-6)
    np.testing.assert_allclose(four[0].b, one[0].b, rtol=RTOL, atol=1e-6)
    np.testing.assert_allclose(four[1], one[1], rtol=RTOL)
    np.testing.assert_allclose(four[2], one[2], rtol=RTOL)


@pytest.mark.slow  # the sharded step's plumbing is test_four_devices_give_the_one_device_results'
def test_abs_model_on_four_devices():
    shape = Shape(n_features=5, n_hidden=3, kind="abs", batch_size=64, eval_samples=2048)
    hp = _hparams(8, 5, seed=1)
    one, four = (_train(shape, hp, [10], devices=d) for d in (1, 4))
    np.testing.assert_allclose(four[0].W2, one[0].W2, rtol=RTOL, atol=1e-6)
    np.testing.assert_allclose(four[2], one[2], rtol=RTOL)


def test_compiled_programs_hold_no_collective():
    shape = Shape(n_features=5, n_hidden=2, batch_size=64, eval_samples=1024)
    hp = _hparams(8, 5)
    with parallel.devices_used(4):
        state = train.init_state(shape, hp)
        (state, hp), mesh = parallel.placed(state, hp)
        assert mesh is not None and mesh.size == 4
        texts = {
            "train_chunk": train.lower_chunk(state, hp, shape, 5),
            "init": train.lower_init(shape, hp),
            "evaluate": train.lower_evaluate(state.params, hp, shape, block=2),
        }
        for name, lowered in texts.items():
            text = lowered.compile().as_text()
            assert "num_partitions=4" in text, name  # really one program per device
            found = [c for c in COLLECTIVES if c in text]
            assert not found, f"{name} holds {found}"


def test_blocks_with_padding_equal_one_vmap():
    """The CPU path (sequential cache-sized blocks, the last padded) equals a single vmap."""
    shape = Shape(n_features=7, n_hidden=3, batch_size=96)
    hp = _hparams(11, 7, seed=2)
    out = {}
    for block in (None, 4):  # 11 instances in blocks of 4, 4, 3 -> balanced 4, 4, 4 (1 pad)
        state = train.init_state(shape, hp)
        state, loss = train.train_chunk(state, hp, shape, 9, block=block)
        out[block] = (np.asarray(state.params.W), np.asarray(loss))
    np.testing.assert_allclose(out[4][0], out[None][0], rtol=RTOL, atol=1e-6)
    np.testing.assert_allclose(out[4][1], out[None][1], rtol=RTOL)


def test_instance_block_by_platform_and_size():
    small, big = Shape(n_features=5, n_hidden=2), Shape(n_features=200, n_hidden=20)
    assert train.instance_block(small, 10_000, "gpu") is None
    assert train.instance_block(small, 10_000, "tpu") is None
    b = train.instance_block(small, 10_000, "cpu")
    assert 2 <= b and b * train.step_bytes(small) <= train.CPU_BLOCK_BYTES
    assert train.instance_block(big, 10_000, "cpu") == 2
    assert train.instance_block(small, 3, "cpu") is None  # all fit in one block: plain vmap


def test_process_shares_partition_the_blocks():
    for count in (1, 2, 3, 8):
        shares = [parallel.process_blocks(10, index=p, count=count) for p in range(count)]
        assert sorted(sum(shares, [])) == list(range(10))
        assert all(parallel.owns_block(b, p, count) for p, s in enumerate(shares) for b in s)
    assert parallel.part_name(3) == "part-003"
    assert parallel.part_name() == "part-000"  # one process: the only part


def test_distributed_requested_by_environment():
    assert not parallel.distributed_requested({})
    assert parallel.distributed_requested({"GEOMTOY_DISTRIBUTED": "1"})
    assert not parallel.distributed_requested({"GEOMTOY_DISTRIBUTED": "0"})
    assert not parallel.initialize_distributed({})  # nothing asked, nothing done


# --- two processes on localhost with jax.distributed (CPU backend)

WORKER = textwrap.dedent(
    """
    import json, sys
    import numpy as np
    from geomtoy.engine import parallel
    mesh = parallel.setup(devices=2)  # GEOMTOY_DISTRIBUTED=1: jax.distributed.initialize first
    import jax
    from geomtoy.engine import train
    spec = json.loads(sys.argv[1])
    assert jax.process_count() == 2 and len(jax.devices()) == 4 and len(jax.local_devices()) == 2
    assert mesh is not None and mesh.size == 2
    shape = train.Shape(**spec["shape"])
    hp = train.HParams.create(**spec["hp"], mesh=mesh)
    size, parts = spec["block_size"], {}
    n_blocks = -(-hp.lr.shape[0] // size)
    for b in parallel.process_blocks(n_blocks):
        rows = np.arange(b * size, min((b + 1) * size, hp.lr.shape[0]))
        res = train.train_instances(
            shape, hp.select(rows), chunk_steps=spec["chunk_steps"], mesh=mesh
        )
        parts.setdefault("instance", []).append(np.asarray(hp.instance_id)[rows])
        parts.setdefault("W", []).append(res.params.W)
        parts.setdefault("b", []).append(res.params.b)
        parts.setdefault("loss", []).append(res.loss)
    out = f"{spec['out']}/{parallel.part_name()}.npz"
    np.savez(out, **{k: np.concatenate(v) for k, v in parts.items()})
    print("WROTE", out, flush=True)
    """
)


def _free_port():
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


def test_two_processes_merge_to_the_single_process_result(tmp_path):
    """Each process trains its share of blocks (block b on process b % 2) on its own two
    CPU devices and writes part-{process:03d}.npz; merged by instance id (here, in the
    test: the results store's `finish` does the same with its block files), the weights
    and losses are the single-process ones."""
    I, n = 12, 6
    rs = np.random.default_rng(3)
    hp_args = {
        "n_instances": I,
        "n_features": n,
        "feature_probability": rs.uniform(0.05, 1.0, (I, 1)).tolist(),
        "importance": (0.9 ** np.arange(n)).tolist(),
        "seed": rs.integers(0, 3, I).tolist(),
        "instance_id": list(range(7, 7 + I)),
    }
    shape_args = {
        "n_features": n,
        "n_hidden": 2,
        "batch_size": 64,
        "steps": 30,
        "eval_samples": 2048,
    }
    spec = {
        "shape": shape_args,
        "hp": hp_args,
        "block_size": 4,
        "chunk_steps": 10,
        "out": str(tmp_path),
    }
    port = _free_port()
    procs = []
    for k in range(2):
        env = dict(
            os.environ,
            JAX_PLATFORMS="cpu",
            GEOMTOY_DISTRIBUTED="1",
            GEOMTOY_COORDINATOR=f"localhost:{port}",
            GEOMTOY_NUM_PROCESSES="2",
            GEOMTOY_PROCESS_ID=str(k),
            PYTHONPATH=str(ROOT),
        )
        env.pop("JAX_NUM_CPU_DEVICES", None)
        procs.append(
            subprocess.Popen(
                [sys.executable, "-c", WORKER, json.dumps(spec)],
                env=env,
                cwd=ROOT,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )
        )
    outs = []
    for p in procs:
        try:
            outs.append(p.communicate(timeout=180)[0])
        except subprocess.TimeoutExpired:
            for q in procs:
                q.kill()
            pytest.fail("a distributed worker did not finish in 180 s")
    for p, out in zip(procs, outs):
        assert p.returncode == 0, out[-3000:]
    parts = sorted(tmp_path.glob("part-*.npz"))
    assert [p.name for p in parts] == ["part-000.npz", "part-001.npz"]
    merged = {}
    for path in parts:
        with np.load(path) as z:
            for key in z.files:
                merged.setdefault(key, []).append(z[key])
    merged = {k: np.concatenate(v) for k, v in merged.items()}
    order = np.argsort(merged["instance"])
    assert merged["instance"][order].tolist() == hp_args["instance_id"]

    hp_all = HParams.create(**hp_args)
    single = train.train_instances(Shape(**shape_args), hp_all, chunk_steps=10)
    np.testing.assert_allclose(merged["W"][order], single.params.W, rtol=RTOL, atol=1e-6)
    np.testing.assert_allclose(merged["b"][order], single.params.b, rtol=RTOL, atol=1e-6)
    np.testing.assert_allclose(merged["loss"][order], single.loss, rtol=RTOL)


def test_an_in_process_run_leaves_no_mesh_behind(tmp_path, capsys):
    """The command line hands its mesh to the runner explicitly: after `geomtoy run` in
    this process (here a dry run on 4 devices) no mesh is set for later callers."""
    from geomtoy import cli

    out = tmp_path / "out"
    argv = ["run", "pentagon", "--scale", "smoke", "--out", str(out), "--devices", "4"]
    assert cli.main([*argv, "--dry-run"]) == 0
    assert "4 cpu device(s)" in capsys.readouterr().out
    assert parallel.current_mesh() is None and jax.sharding.get_mesh().empty
    assert not out.exists()
