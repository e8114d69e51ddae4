"""geomtoy's SAE engine, thousands of SAEs at once, against a PyTorch loop over the same SAEs
one at a time (bench/sae_torch.py, as SAELens trains one), side by side in one run.

    python -m bench.sae          (make bench-sae)

Workload (WORKLOAD): I = 2,048 SAEs of width 64 on the m = 16 dimensional hidden
activations of DICTIONARIES synthetic toy models (I / 8 SAEs each) with n = 64 features
(feature probability 0.05), batch 1024 of fresh samples per step, Adam lr 1e-3, sparsity
coefficient 0.01, k = 2, no resampling; measured for every architecture of ARCHITECTURES.
Rates are model-steps per second (SAEs x steps per second).

geomtoy runs as `geomtoy run` does for a sweep of SAEs on synthetic dictionaries
(`parallel.setup("auto")`: on CPU one device per core; the SAEs of one dictionary read
its one stream of batches, drawn once per block of SAEs): `init_state`, a first chunk
(compile included), then timed chunks of `train_chunk`. The
PyTorch loop trains TORCH_SUBSET of the I SAEs (each its own toy model, module and Adam)
one after the other, each for REPS runs of STEPS steps; the mean over those SAEs of each
one's best run, per step, times I, is the loop over all I SAEs (every SAE has the same
shapes, so its step costs the same). geomtoy's step is its best timed chunk's.
The reference runs with 1 and with 2 torch threads (JAX uses both cores): the faster
counts. Each side runs in its own child process, reference and geomtoy interleaved, so
both see the same machine load: the ratio is the result.

Two ratios per architecture: per step (steady state), and a whole run of RUN_STEPS steps
(geomtoy: init and first chunk as measured, compile included, then the remaining steps at
the measured step time; PyTorch: I times one SAE's setup and RUN_STEPS steps). Writes
bench/results-sae.json and the block between `<!-- BEGIN sae -->` and `<!-- END sae -->` in
bench/RESULTS.md.
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
WORKLOAD = {"I": 2048, "n": 64, "m": 16, "width": 64, "B": 1024, "k": 2, "l1": 0.01}
ARCHITECTURES = ("relu", "topk", "batchtopk", "jumprelu", "matryoshka_batchtopk")
DICTIONARIES = 8  # synthetic dictionaries (toy models) the I SAEs read, I / 8 SAEs each
TORCH_SUBSET = 4
RUN_STEPS = 1000
STEPS, REPS = 10, 3  # steps per timed run, timed runs (geomtoy: after the first chunk)


def _child_geomtoy(spec: dict) -> dict:
    from geomtoy.engine import parallel

    mesh = parallel.setup("auto")
    import numpy as np

    from geomtoy.sae import source
    from geomtoy.sae import train as sae_train

    I, n, m, width, B = (spec[k] for k in ("I", "n", "m", "width", "B"))
    shape = sae_train.SAEShape(
        n, m, width, batch_size=B, source="synthetic", resample_every=0, eval_samples=1024,
        activation=spec["activation"], shared_data=True,
    )  # fmt: skip
    toy = np.arange(I) * DICTIONARIES // I  # SAEs in toy-model order, as a sweep lists them
    W = np.stack([source.synthetic_dictionary(s, m, n) for s in range(DICTIONARIES)])[toy]
    hp = sae_train.SAEHParams.create(
        W, feature_probability=0.05, l1_coefficient=spec["l1"], k=spec["k"], source_id=toy
    )
    steps = spec["steps"]
    t0 = time.perf_counter()
    state = sae_train.init_state(shape, hp, mesh=mesh)
    state, loss = sae_train.train_chunk(state, hp, shape, steps)
    loss.block_until_ready()
    first = time.perf_counter() - t0
    wall, cpu = [], []
    for _ in range(spec["reps"]):
        c0, w0 = time.process_time(), time.perf_counter()
        state, loss = sae_train.train_chunk(state, hp, shape, steps)
        loss.block_until_ready()
        wall.append((time.perf_counter() - w0) / steps)
        cpu.append((time.process_time() - c0) / steps)
    devices = len(mesh.devices.flat) if mesh is not None else 1
    return {"impl": "geomtoy", "step_s": min(wall), "cpu_step_s": min(cpu),
            "first_chunk_s": first, "devices": devices, "loss": float(np.mean(loss))}  # fmt: skip


def _child_torch(spec: dict) -> dict:
    import torch

    from bench import sae_torch as R

    torch.set_num_threads(spec["threads"])
    args = (spec["n"], spec["m"], spec["width"])
    kw = {"activation": spec["activation"], "k": spec["k"], "l1": spec["l1"]}
    R.optimize(*R.make(*args, seed=99, **kw), 2, spec["B"]).item()  # warm-up
    setup, wall, cpu, losses = 0.0, 0.0, 0.0, []
    for s in range(spec["subset"]):  # each SAE: its best of `reps` runs of `steps` steps
        w0 = time.perf_counter()
        model, opt = R.make(*args, seed=s, **kw)
        setup += time.perf_counter() - w0
        best = (float("inf"), float("inf"))
        for _ in range(spec["reps"]):
            c0, w0 = time.process_time(), time.perf_counter()
            losses.append(R.optimize(model, opt, spec["steps"], spec["B"]).item())
            best = min(best, (time.perf_counter() - w0, time.process_time() - c0))
        wall, cpu = wall + best[0], cpu + best[1]
    n = spec["subset"] * spec["steps"]
    return {"impl": "torch", "threads": spec["threads"], "sae_step_s": wall / n,
            "cpu_sae_step_s": cpu / n, "setup_s": setup / spec["subset"],
            "loss": losses[-1], "torch": torch.__version__}  # fmt: skip


def _child_main(kind: str, spec_json: str) -> int:
    result = {"geomtoy": _child_geomtoy, "torch": _child_torch}[kind](json.loads(spec_json))
    print("RESULT " + json.dumps(result))
    return 0


def _run(kind: str, spec: dict) -> dict:
    return _run_child(kind, spec, timeout=1200, module="bench.sae")


def _measure_one(activation: str) -> dict:
    """Interleaved measurements of one architecture: torch 1 thread, geomtoy, torch 2
    threads; scaled to the I SAEs and RUN_STEPS steps."""
    base = dict(WORKLOAD, activation=activation)
    torch_spec = dict(base, subset=TORCH_SUBSET, steps=STEPS, reps=REPS)
    runs = [
        ("torch", dict(torch_spec, threads=1)),
        ("geomtoy", dict(base, steps=STEPS, reps=REPS)),
        ("torch", dict(torch_spec, threads=2)),
    ]
    results = []
    for kind, spec in runs:
        r = dict(_run(kind, spec), spec=spec)
        if "error" in r:
            raise SystemExit(f"bench.sae: a {kind} child ({activation}) failed: {r['error']}")
        results.append(r)
        print(f"  {activation} {kind}: {json.dumps({k: v for k, v in r.items() if k != 'spec'})}",
              file=sys.stderr, flush=True)  # fmt: skip
    torch_best = min((r for r in results if r["impl"] == "torch"), key=lambda r: r["sae_step_s"])
    ours = next(r for r in results if r["impl"] == "geomtoy")
    I, T = WORKLOAD["I"], RUN_STEPS
    torch_step, ours_step = I * torch_best["sae_step_s"], ours["step_s"]
    torch_run = I * (torch_best["setup_s"] + T * torch_best["sae_step_s"])
    ours_run = ours["first_chunk_s"] + (T - STEPS) * ours_step
    return {
        "activation": activation,
        "runs": results,
        "torch_threads": torch_best["threads"],
        "torch_model_steps_per_s": I / torch_step,
        "geomtoy_model_steps_per_s": I / ours_step,
        "speedup_step": torch_step / ours_step,
        "speedup_step_cpu": min(I * r["cpu_sae_step_s"] for r in results if r["impl"] == "torch")
        / ours["cpu_step_s"],
        "torch_run_s": torch_run,
        "geomtoy_run_s": ours_run,
        "speedup_run": torch_run / ours_run,
    }


def measure(architectures: tuple[str, ...] = ARCHITECTURES) -> dict:
    """Every architecture, each interleaved (see _measure_one)."""
    load_before = os.getloadavg()
    rows = [_measure_one(a) for a in architectures]
    return {
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "load_average": load_before,
        "load_average_end": os.getloadavg(),
        "nice": os.nice(0),
        "workload": WORKLOAD,
        "torch_subset": TORCH_SUBSET,
        "run_steps": RUN_STEPS,
        "architectures": rows,
    }


def table(res: dict) -> str:
    w = res["workload"]
    la = ", ".join(f"{x:.1f}" for x in res["load_average"])
    le = ", ".join(f"{x:.1f}" for x in res.get("load_average_end", res["load_average"]))
    lines = [
        f"Measured {res['date']}, nice {res.get('nice', 0)}, load average {la} at the start "
        f"and {le} at the end (2 cores, shared). Workload: I = {w['I']:,} SAEs, n = {w['n']}, "
        f"m = {w['m']}, width {w['width']}, B = {w['B']}, k = {w['k']}, coefficient "
        f"{w['l1']}; PyTorch timed on {res['torch_subset']} of the SAEs and scaled per SAE; "
        f"whole run = {res['run_steps']:,} steps, compile included.",
        "",
        "| architecture | PyTorch loop, one SAE at a time | geomtoy, all at once | speedup per step, wall (CPU-s) | whole run: PyTorch / geomtoy | speedup, whole run |",  # noqa: E501
        "|---|---|---|---|---|---|",
    ]
    for r in res["architectures"]:
        ours = next(x for x in r["runs"] if x["impl"] == "geomtoy")
        lines.append(
            f"| {r['activation']} | {r['torch_model_steps_per_s']:,.0f} model-steps/s "
            f"({r['torch_threads']} thread{'s' if r['torch_threads'] > 1 else ''}) "
            f"| {r['geomtoy_model_steps_per_s']:,.0f} model-steps/s "
            f"| **{r['speedup_step']:.1f}x** ({r['speedup_step_cpu']:.1f}x) "
            f"| {r['torch_run_s']:,.0f} s / {r['geomtoy_run_s']:,.0f} s "
            f"(first chunk {ours['first_chunk_s']:.0f} s) | **{r['speedup_run']:.1f}x** |"
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
    architectures = tuple(argv) or ARCHITECTURES  # e.g. `python -m bench.sae jumprelu`
    res = measure(architectures)
    if architectures == ARCHITECTURES:
        write(res)
    else:
        print(f"bench.sae: a subset of {ARCHITECTURES}; results not written")
    print(table(res))
    return 0


if __name__ == "__main__":
    assert ROOT.is_dir()
    sys.exit(main())
