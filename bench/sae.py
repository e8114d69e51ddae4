"""geomtoy's SAE engine against ARENA's einsum-instance-axis PyTorch SAE loop, in one run.

    python -m bench.sae          (make bench-sae) ~3 minutes

Workload: I = 1,000 SAEs of width 64 on the m = 16 dimensional hidden activations of toy
models with n = 64 features (feature probability 0.05), batch 1024 of fresh samples per
step, Adam lr 1e-3; rate in model-steps per second (I x steps per second). Measured for
each of ARCHITECTURES: ReLU+L1, JumpReLU (L0 penalty 0.01) and Matryoshka-BatchTopK
(k = 2), against bench/sae_torch.py's loop of the same architecture.
Each side runs in its own child process, reference (1 and 2 torch threads, the faster
counts) and geomtoy interleaved, so both see the same machine load: the ratio is the
result. geomtoy runs as `geomtoy run` does (`parallel.setup("auto")`: on CPU one device
per core), timing `geomtoy.sae.train.train_chunk` after a warm-up chunk. Writes
bench/results-sae.json and the block between `<!-- BEGIN sae -->` and `<!-- END sae -->`
in bench/RESULTS.md.
"""

from __future__ import annotations

import datetime
import json
import os
import re
import sys
import time
from pathlib import Path

from bench.run import ROOT, _run_child

HERE = Path(__file__).resolve().parent
WORKLOAD = {"I": 1000, "n": 64, "m": 16, "width": 64, "B": 1024}
ARCHITECTURES = ("relu", "jumprelu", "matryoshka_batchtopk")


def _child_geomtoy(spec: dict) -> dict:
    from geomtoy.engine import parallel

    mesh = parallel.setup("auto")
    import numpy as np

    from geomtoy.sae import source
    from geomtoy.sae import train as sae_train

    I, n, m, width, B = (spec[k] for k in ("I", "n", "m", "width", "B"))
    shape = sae_train.SAEShape(
        n, m, width, batch_size=B, source="synthetic", resample_every=0, eval_samples=1024,
        activation=spec["activation"],
    )  # fmt: skip
    W = np.stack([source.synthetic_dictionary(s, m, n) for s in range(8)])[np.arange(I) % 8]
    hp = sae_train.SAEHParams.create(W, feature_probability=0.05, l1_coefficient=0.01, k=2)
    state = sae_train.init_state(shape, hp, mesh=mesh)
    k = spec["steps"]
    t0 = time.perf_counter()
    state, loss = sae_train.train_chunk(state, hp, shape, k)
    loss.block_until_ready()
    first = time.perf_counter() - t0
    wall, cpu = [], []
    for _ in range(spec["reps"]):
        c0, w0 = time.process_time(), time.perf_counter()
        state, loss = sae_train.train_chunk(state, hp, shape, k)
        loss.block_until_ready()
        wall.append((time.perf_counter() - w0) / k)
        cpu.append((time.process_time() - c0) / k)
    devices = len(mesh.devices.flat) if mesh is not None else 1
    return {"impl": "geomtoy", "step_s": min(wall), "cpu_step_s": min(cpu),
            "first_chunk_s": first, "devices": devices, "loss": float(np.mean(loss))}  # fmt: skip


def _child_torch(spec: dict) -> dict:
    import torch

    from bench import sae_torch as R

    torch.set_num_threads(spec["threads"])
    model, opt = R.make(spec["I"], spec["n"], spec["m"], spec["width"],
                        activation=spec["activation"])  # fmt: skip
    R.optimize(model, opt, 1, spec["B"]).item()  # warm-up
    wall, cpu = [], []
    for _ in range(spec["reps"]):
        c0, w0 = time.process_time(), time.perf_counter()
        loss = R.optimize(model, opt, spec["steps"], spec["B"]).item()
        wall.append((time.perf_counter() - w0) / spec["steps"])
        cpu.append((time.process_time() - c0) / spec["steps"])
    return {"impl": "torch", "threads": spec["threads"], "step_s": min(wall),
            "cpu_step_s": min(cpu), "loss": loss / spec["I"], "torch": torch.__version__}  # fmt: skip


def _child_main(kind: str, spec_json: str) -> int:
    result = {"geomtoy": _child_geomtoy, "torch": _child_torch}[kind](json.loads(spec_json))
    print("RESULT " + json.dumps(result))
    return 0


def _run(kind: str, spec: dict) -> dict:
    return _run_child(kind, spec, timeout=900, module="bench.sae")


def _measure_one(activation: str) -> dict:
    """Interleaved measurements of one architecture: torch 1 thread, geomtoy, torch 2
    threads, geomtoy."""
    base = dict(WORKLOAD, reps=3, activation=activation)
    runs = [
        ("torch", dict(base, threads=1, steps=3)),
        ("geomtoy", dict(base, steps=20)),
        ("torch", dict(base, threads=2, steps=3)),
        ("geomtoy", dict(base, steps=20)),
    ]
    results = [dict(_run(kind, spec), spec=spec) for kind, spec in runs]
    for r in results:
        if "error" in r:
            raise SystemExit(f"bench.sae: a child failed: {r['error']}")
    torch_best = min((r for r in results if r["impl"] == "torch"), key=lambda r: r["step_s"])
    ours = min((r for r in results if r["impl"] == "geomtoy"), key=lambda r: r["step_s"])
    I = WORKLOAD["I"]
    return {
        "activation": activation,
        "runs": results,
        "torch_model_steps_per_s": I / torch_best["step_s"],
        "geomtoy_model_steps_per_s": I / ours["step_s"],
        "speedup_wall": torch_best["step_s"] / ours["step_s"],
        "speedup_cpu": min(r["cpu_step_s"] for r in results if r["impl"] == "torch")
        / ours["cpu_step_s"],
    }


def measure() -> dict:
    """Every architecture of ARCHITECTURES, each interleaved (see _measure_one)."""
    rows = [_measure_one(a) for a in ARCHITECTURES]
    return {
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "load_average": os.getloadavg(),
        "workload": WORKLOAD,
        "architectures": rows,
    } | {
        k: rows[0][k]
        for k in (
            "runs",
            "torch_model_steps_per_s",
            "geomtoy_model_steps_per_s",
            "speedup_wall",
            "speedup_cpu",
        )
    }


def table(res: dict) -> str:
    w = res["workload"]
    la = ", ".join(f"{x:.1f}" for x in res["load_average"])
    lines = [
        f"Measured {res['date']}, load average {la} (shared machine).",
        "",
        "| architecture | workload (I, n, m, width, B) | PyTorch (best of 1/2 threads) | geomtoy | speedup, wall (CPU-s) |",  # noqa: E501
        "|---|---|---|---|---|",
    ]
    for r in res.get("architectures", [dict(res, activation="relu")]):
        lines.append(
            f"| {r['activation']} | {w['I']}, {w['n']}, {w['m']}, {w['width']}, {w['B']} "
            f"| {r['torch_model_steps_per_s']:,.0f} model-steps/s "
            f"| {r['geomtoy_model_steps_per_s']:,.0f} model-steps/s "
            f"| **{r['speedup_wall']:.1f}x** ({r['speedup_cpu']:.1f}x) |"
        )
    return "\n".join(lines)


def write(res: dict) -> None:
    (HERE / "results-sae.json").write_text(json.dumps(res, indent=1) + "\n")
    path = HERE / "RESULTS.md"
    text = path.read_text()
    block = f"<!-- BEGIN sae -->\n{table(res)}\n<!-- END sae -->"
    pattern = re.compile(r"<!-- BEGIN sae -->.*?<!-- END sae -->", re.S)
    path.write_text(pattern.sub(lambda _: block, text) if pattern.search(text) else text + block)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["_child"]:
        return _child_main(argv[1], argv[2])
    res = measure()
    write(res)
    print(table(res))
    return 0


if __name__ == "__main__":
    assert ROOT.is_dir()
    sys.exit(main())
