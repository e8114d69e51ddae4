"""The benchmark measures what it claims: its PyTorch loop is the notebook's training step
(checked against the NumPy reference of tests/reference.py), and its report is written."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import reference

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench import run as bench_run  # noqa: E402


def test_reference_torch_step_is_the_notebook_step():
    """Loss (sum over instances of each one's mean), gradients and two AdamW steps of
    bench/reference_torch.py equal the float64 NumPy reference, instance by instance."""
    pytest.importorskip("torch")
    from bench import reference_torch as R

    I, n, m, B = 3, 5, 2, 256
    model, opt = R.make(n, m, I)
    batch = model.generate_batch(B)
    assert batch.shape == (B, I, n)
    p = model.feature_probability.numpy()[:, 0]
    np.testing.assert_allclose((batch != 0).float().mean(dim=0).mean(dim=1).numpy(), p, atol=0.08)

    W0 = model.W.detach().numpy().astype(np.float64)  # (I, n, m): W of the paper transposed
    b0 = model.b_final.detach().numpy().astype(np.float64)
    imp = model.importance.numpy()[0].astype(np.float64)
    x = batch.numpy().astype(np.float64)
    out = model(batch)
    loss = (model.importance * (batch.abs() - out) ** 2).mean(dim=(0, 2)).sum()
    loss.backward()
    want_loss = 0.0
    for i in range(I):
        li, dW, db = reference.loss_and_grad("relu_output", W0[i].T, b0[i], x[:, i, :].T, imp)
        want_loss += li
        np.testing.assert_allclose(model.W.grad[i].numpy(), dW.T, rtol=1e-4, atol=1e-7)
        np.testing.assert_allclose(model.b_final.grad[i].numpy(), db, rtol=1e-4, atol=1e-7)
    np.testing.assert_allclose(loss.item(), want_loss, rtol=1e-5)

    # torch's AdamW defaults are the recipe's: lr 1e-3, betas (0.9, 0.999), eps 1e-8, wd 0.01
    group = opt.param_groups[0]
    assert (group["lr"], group["betas"], group["eps"], group["weight_decay"]) == (
        1e-3,
        (0.9, 0.999),
        1e-8,
        0.01,
    )
    opt.step()
    adam = [reference.AdamW(1e-3, 0.01) for _ in range(I)]
    for i in range(I):
        _, dW, db = reference.loss_and_grad("relu_output", W0[i].T, b0[i], x[:, i, :].T, imp)
        W1, b1 = adam[i].step([W0[i].T, b0[i]], [dW, db])
        np.testing.assert_allclose(model.W.detach()[i].numpy(), W1.T, rtol=1e-5, atol=1e-7)
        np.testing.assert_allclose(model.b_final.detach()[i].numpy(), b1, rtol=1e-5, atol=1e-7)


def test_plan_covers_the_workloads_and_limits_the_reference():
    quick, full = bench_run.plan("quick"), bench_run.plan("full")
    names = {r["name"] for r in quick}
    assert set(bench_run.WORKLOADS) <= names
    assert {r["I"] for r in full if r["role"] == "instances"} | {10, 1000} >= {
        10,
        100,
        1000,
        10_000,
        100_000,
    }
    big = next(r for r in full if r["I"] == 100_000)
    assert not big["reference"]  # the reference stops where it no longer fits in time
    assert all(r["reference"] for r in quick if r["role"] == "workload")


def _fake_result(mode):
    g = {
        "impl": "geomtoy",
        "devices": 2,
        "step_s": 0.01,
        "cpu_step_s": 0.02,
        "compile_s": 1.5,
        "rss_peak_mib": 400.0,
        "xla_temp_bytes": 2**20,
    }
    t = {"impl": "torch", "threads": 1, "step_s": 0.1, "cpu_step_s": 0.1, "rss_peak_mib": 600.0}
    rows = []
    for r in bench_run.plan(mode):
        rows.append(
            r
            | {
                "results": {"geomtoy": g, "torch1": t},
                "reference_best": t,
                "speedup": 10.0,
                "speedup_cpu": 5.0,
            }
        )
    return {
        "mode": mode,
        "started": "2026-01-01T00:00:00",
        "machine": {"cpu": "test cpu", "cores": 2},
        "load_start": "0 0 0",
        "load_end": "0 0 0",
        "rows": rows,
        "calibration": {
            "copy_dram_gbs": 20.0,
            "copy_l2_gbs": 60.0,
            "matmul_gflops": 200.0,
            "int_gops_1core": 60.0,
            "float_gflops_1core": 80.0,
        },
    }


def test_report_replaces_only_its_own_block(tmp_path, monkeypatch):
    monkeypatch.setattr(bench_run, "HERE", tmp_path)
    md = tmp_path / "RESULTS.md"
    md.write_text(
        "# Results\n\nhand-written notes\n\n<!-- BEGIN quick -->\nold\n<!-- END quick -->\n\nmore notes\n"
    )
    bench_run.write_results(_fake_result("quick"), md)
    text = md.read_text()
    assert "hand-written notes" in text and "more notes" in text and "old" not in text
    assert "| many-small | 5 | 2 | 1,000 |" in text and "**10.0x**" in text
    assert "| geometry | 2 |" in text  # the distance-from-the-limits table
    bench_run.write_results(_fake_result("full"), md)  # a new block, appended
    assert md.read_text().count("<!-- BEGIN") == 2
    assert json.loads((tmp_path / "results-full.json").read_text())["mode"] == "full"
    assert bench_run.plot(tmp_path / "scaling.png").stat().st_size > 10_000


def test_geomtoy_child_measures_a_small_workload():
    spec = {"n": 5, "m": 2, "I": 6, "B": 64, "budget": 0.2, "devices": 1}
    env = dict(os.environ, JAX_PLATFORMS="cpu", PYTHONPATH=str(ROOT))
    env.pop("JAX_NUM_CPU_DEVICES", None)
    out = subprocess.run(
        [sys.executable, "-m", "bench.run", "_child", "geomtoy", json.dumps(spec)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    line = next(l for l in out.stdout.splitlines() if l.startswith("RESULT "))
    res = json.loads(line[len("RESULT ") :])
    assert (
        res["devices"] == 1
        and res["step_s"] > 0
        and res["compile_s"] > 0
        and np.isfinite(res["loss"])
    )
