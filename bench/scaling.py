"""geomtoy's sweep of Liu, Liu and Gore's grid against their one-model-at-a-time PyTorch
loop (bench/scaling_torch.py), on this machine, in one run.

    python -m bench.scaling            ~5 minutes on a 2-core CPU

Workload: the models of sweeps/scaling_superposition.toml at its default scale (n = 200,
widths m = 4..20, six alphas, weight decay -1 and 0.11, three seeds: 216 models, batch
128), the same models (and batch) on both sides, `STEPS` optimizer steps each. geomtoy
trains them as `geomtoy run` does: one compiled program per width (6 groups), all of a group's instances at once,
`parallel.setup("auto")` (on CPU one device per core); the first chunk of each group
(tracing and compilation) is timed apart, then a second chunk of STEPS steps is the rate.
The reference trains the 48 models one after another, as their scripts do (one torch
thread by default: `python -m bench.scaling STEPS THREADS ROUNDS`). Both sides run in
their own child processes, one after the other (interleaved over ROUNDS), so they see the
same machine load: the ratio is the result. Writes bench/results-scaling.json
and the block between `<!-- BEGIN scaling -->` and `<!-- END scaling -->` in
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
SWEEP = ROOT / "sweeps" / "scaling_superposition.toml"
STEPS = 100


def _models(steps: int):
    """The bundled sweep at default scale, trained for `steps`: the Sweep and, per model,
    (n, m, p, weight decay, lr, warm-up) for the reference."""
    import geomtoy.sweep as S

    sweep = S.load(SWEEP, "default", sets=[f"train.steps={steps}", "train.warmup_steps=10"])
    models = []
    for g in sweep.groups:
        for r in range(len(g)):
            s = g.shape
            fp, wd = g.feature_probability[r].tolist(), float(g.weight_decay[r])
            models.append((s.n_features, s.n_hidden, fp, wd, float(g.lr[r]), s.warmup_steps))
    return sweep, models


def _child_geomtoy(spec: dict) -> dict:
    from geomtoy.engine import parallel

    mesh = parallel.setup("auto")
    import numpy as np

    from geomtoy.engine import train

    sweep, _ = _models(2 * spec["steps"])
    k, first, wall, cpu = spec["steps"], 0.0, 0.0, 0.0
    for g in sweep.groups:
        hp = train.HParams.create(**g.leaves(np.arange(len(g))), mesh=mesh)
        t0 = time.perf_counter()
        state = train.init_state(g.shape, hp)
        state, loss = train.train_chunk(state, hp, g.shape, k)  # traces and compiles
        loss.block_until_ready()
        first += time.perf_counter() - t0
        c0, w0 = time.process_time(), time.perf_counter()
        state, loss = train.train_chunk(state, hp, g.shape, k)
        loss.block_until_ready()
        wall += time.perf_counter() - w0
        cpu += time.process_time() - c0
    return {"impl": "geomtoy", "wall_s": wall, "cpu_s": cpu, "first_chunks_s": first,
            "models": sweep.n_instances, "groups": len(sweep.groups)}  # fmt: skip


def _child_torch(spec: dict) -> dict:
    import torch

    from bench import scaling_torch as R

    torch.set_num_threads(spec["threads"])
    _, models = _models(2 * spec["steps"])
    c0, w0 = time.process_time(), time.perf_counter()
    for n, m, p, wd, lr, warm in models:
        R.train(n, m, p, wd, spec["steps"], spec["batch"], lr, warm, 2 * spec["steps"])
    return {"impl": "torch", "threads": spec["threads"], "wall_s": time.perf_counter() - w0,
            "cpu_s": time.process_time() - c0, "models": len(models),
            "torch": torch.__version__}  # fmt: skip


def _child_main(kind: str, spec_json: str) -> int:
    result = {"geomtoy": _child_geomtoy, "torch": _child_torch}[kind](json.loads(spec_json))
    print("RESULT " + json.dumps(result))
    return 0


def measure(steps: int = STEPS, threads: int = 1, rounds: int = 1) -> dict:
    """torch, then geomtoy, then torch and geomtoy again if `rounds` is 2; the reference
    runs with `threads` torch threads (1 on a shared machine: 2 threads oversubscribe it)."""
    shape = _models(2 * steps)[0].groups[0].shape  # the sweep's n and batch, both sides
    base = {"steps": steps, "batch": shape.batch_size, "n": shape.n_features}
    runs = [("torch", dict(base, threads=threads)), ("geomtoy", base)] * rounds
    results = []
    for kind, spec in runs:
        r = _run_child(kind, spec, timeout=1800, module="bench.scaling")
        if "error" in r:
            raise SystemExit(f"bench.scaling: a child failed: {r['error']}")
        results.append(dict(r, spec=spec))
    torch_best = min((r for r in results if r["impl"] == "torch"), key=lambda r: r["wall_s"])
    ours = min((r for r in results if r["impl"] == "geomtoy"), key=lambda r: r["wall_s"])
    model_steps = ours["models"] * steps
    return {
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "load_average": os.getloadavg(),
        "steps": steps,
        "batch": base["batch"],
        "n": base["n"],
        "runs": results,
        "models": ours["models"],
        "groups": ours["groups"],
        "torch_model_steps_per_s": model_steps / torch_best["wall_s"],
        "geomtoy_model_steps_per_s": model_steps / ours["wall_s"],
        "geomtoy_first_chunks_s": ours["first_chunks_s"],
        "speedup_wall": torch_best["wall_s"] / ours["wall_s"],
        "speedup_cpu": min(r["cpu_s"] for r in results if r["impl"] == "torch") / ours["cpu_s"],
    }


def table(res: dict) -> str:
    la = ", ".join(f"{x:.1f}" for x in res["load_average"])
    return "\n".join(
        [
            f"Measured {res['date']}, load average {la} (shared machine).",
            "",
            "| workload | PyTorch, one model at a time | geomtoy sweep | "
            "speedup, wall (CPU-s) | geomtoy first chunks (compile) |",
            "|---|---|---|---|---|",
            f"| scaling_superposition default: {res['models']} models, {res['groups']} widths, "
            f"n = {res['n']}, B = {res['batch']}, {res['steps']} steps "
            f"| {res['torch_model_steps_per_s']:,.0f} model-steps/s "
            f"| {res['geomtoy_model_steps_per_s']:,.0f} model-steps/s "
            f"| **{res['speedup_wall']:.1f}x** ({res['speedup_cpu']:.1f}x) "
            f"| {res['geomtoy_first_chunks_s']:.0f} s |",
        ]
    )


def write(res: dict) -> None:
    (HERE / "results-scaling.json").write_text(json.dumps(res, indent=1) + "\n")
    path = HERE / "RESULTS.md"
    text = path.read_text()
    block = f"<!-- BEGIN scaling -->\n{table(res)}\n<!-- END scaling -->"
    pattern = re.compile(r"<!-- BEGIN scaling -->.*?<!-- END scaling -->", re.S)
    if pattern.search(text):
        path.write_text(pattern.sub(lambda _: block, text))
    else:
        path.write_text(
            text.rstrip("\n") + "\n\n## Liu et al.'s grid (bench/scaling.py)\n\n" + block + "\n"
        )


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["_child"]:
        return _child_main(argv[1], argv[2])
    res = measure(*(int(a) for a in argv[:3])) if argv else measure()
    write(res)
    print(table(res))
    return 0


if __name__ == "__main__":
    assert ROOT.is_dir()
    sys.exit(main())
