"""geomtoy against the paper notebook's PyTorch training loop, on this machine, in one run.

    python -m bench              quick mode (under 5 minutes): the four workloads and a
                                 short instance-scaling series
    python -m bench --full       plus instances 10 .. 100,000 and n 5 .. 200 (~15 minutes)
    make bench                   the quick mode; `geomtoy bench [--full]` the same

Workloads are (n features, m hidden, I instances, batch B = 1024) of the ReLU-output model
with the notebook recipe (AdamW lr 1e-3, weight decay 0.01), as model-steps per second:
I x optimizer steps per second. Every measurement runs in its own child process (a clean
peak-RSS reading, and the CPU-device count that geomtoy picks at start-up), one after the
other in the same process tree, interleaved reference / geomtoy, so that both see the same
machine load: ratios are the result, absolute numbers move with the load. The reference
(bench/reference_torch.py) runs with 1 and with 2 torch threads and the faster counts; on
a machine with an NVIDIA GPU (JAX's gpu backend and a CUDA build of torch), both sides
run on the GPU instead.

geomtoy runs as `geomtoy run` does: `parallel.setup("auto")` (on CPU one device per core)
then `train.train_chunk` in chunks. Compile time is the AOT `lower + compile` of the
training chunk, measured apart from the steps (the jit cache then serves the timed calls).

Writes bench/results-{quick,full}.json, the matching block of bench/RESULTS.md (between
its `<!-- BEGIN {mode} -->` / `<!-- END {mode} -->` markers; the hand-written analysis
around them stays), and bench/scaling.png.
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import os
import platform
import re
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
BATCH = 1024

WORKLOADS = {
    "intro": (5, 2, 10),
    "many-small": (5, 2, 1000),
    "mid": (20, 5, 100),
    "geometry": (200, 20, 20),
}
INSTANCE_SERIES = {"quick": [100, 10_000], "full": [10, 100, 1000, 10_000, 100_000]}
FEATURE_SERIES = {"quick": [], "full": [5, 20, 50, 100, 200]}  # at I = 100, m = max(2, n // 10)
SERIES_INSTANCES = 100
REFERENCE_MAX_ELEMENTS = {"quick": 6_000_000, "full": 60_000_000}
"""Largest I * n * B the reference runs: I = 1000 (quick) or 10,000 (full) at n = 5; its
step grows to seconds beyond, and geomtoy's scaling is the point there."""


# --- child processes: one measurement each ----------------------------------------


def _steps_per_chunk(n: int, I: int, B: int) -> int:
    """Steps per timed chunk: ~3e8 sampled elements (about a second), 3 .. 200 steps."""
    return int(min(200, max(3, 3e8 // (n * I * B))))


def _rss_mib() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _child_geomtoy(spec: dict) -> dict:
    from geomtoy.engine import parallel

    mesh = parallel.setup(spec.get("devices", "auto"))
    import jax
    import numpy as np

    from geomtoy.engine import train

    n, m, I, B = spec["n"], spec["m"], spec["I"], spec["B"]
    shape = train.Shape(n_features=n, n_hidden=m, batch_size=B)
    p = 20.0 ** -np.linspace(0.0, 1.0, I)  # the notebook's intro sweep, as the reference
    hp = train.HParams.create(
        I, n, feature_probability=p[:, None], importance=0.9 ** np.arange(n), mesh=mesh
    )
    rss0 = _rss_mib()
    state = train.init_state(shape, hp)
    k = _steps_per_chunk(n, I, B)

    mesh = parallel.mesh_of(hp)  # None when I does not split evenly over the devices
    block = train.instance_block(shape, parallel.local_instances(I, mesh), parallel.platform_of(hp))
    t0 = time.perf_counter()
    lowered = train.lower_chunk(state, hp, shape, k, block=block)
    t1 = time.perf_counter()
    compiled = lowered.compile()
    t2 = time.perf_counter()
    mem = compiled.memory_analysis()
    state, loss = train.train_chunk(state, hp, shape, k)  # warm-up (served by the jit cache)
    loss.block_until_ready()
    warm = time.perf_counter() - t2
    reps = int(max(2, min(20, spec["budget"] / max(warm, 1e-3))))
    wall, cpu = [], []
    for _ in range(reps):
        c0, w0 = time.process_time(), time.perf_counter()
        state, loss = train.train_chunk(state, hp, shape, k)
        loss.block_until_ready()
        wall.append((time.perf_counter() - w0) / k)
        cpu.append((time.process_time() - c0) / k)
    stats = jax.local_devices()[0].memory_stats() or {}  # None on CPU
    return {
        "impl": "geomtoy",
        "device_peak_mib": stats.get("peak_bytes_in_use", 0) / 2**20 or None,
        "devices": len(mesh.devices.flat) if mesh is not None else 1,
        "platform": jax.default_backend(),
        "block": block,
        "steps_per_chunk": k,
        "reps": reps,
        "step_s": min(wall),
        "step_s_median": float(np.median(wall)),
        "cpu_step_s": min(cpu),
        "lower_s": t1 - t0,
        "compile_s": t2 - t1,
        "xla_temp_bytes": getattr(mem, "temp_size_in_bytes", None),
        "xla_argument_bytes": getattr(mem, "argument_size_in_bytes", None),
        "rss_peak_mib": _rss_mib(),
        "rss_start_mib": rss0,
        "loss": float(np.mean(np.asarray(loss))),
    }


def _child_torch(spec: dict) -> dict:
    import torch

    from bench import reference_torch as R

    n, m, I, B = spec["n"], spec["m"], spec["I"], spec["B"]
    torch.set_num_threads(spec["threads"])
    device = spec.get("device", "cpu")
    rss0 = _rss_mib()
    model, opt = R.make(n, m, I, device=device)
    t0 = time.perf_counter()
    R.optimize(model, opt, 2, B).item()
    est = (time.perf_counter() - t0) / 2
    reps = 3
    k = int(max(1, min(200, spec["budget"] / reps / max(est, 1e-6))))
    wall, cpu = [], []
    for _ in range(reps):
        c0, w0 = time.process_time(), time.perf_counter()
        loss = R.optimize(model, opt, k, B).item()
        wall.append((time.perf_counter() - w0) / k)
        cpu.append((time.process_time() - c0) / k)
    return {
        "impl": "torch",
        "threads": spec["threads"] if device == "cpu" else device,
        "steps_per_rep": k,
        "reps": reps,
        "step_s": min(wall),
        "step_s_median": sorted(wall)[len(wall) // 2],
        "cpu_step_s": min(cpu),
        "rss_peak_mib": _rss_mib(),
        "rss_start_mib": rss0,
        "loss": loss / I,
        "torch": torch.__version__,
    }


def _child_calibrate(spec: dict) -> dict:
    """This machine's bounds: copy bandwidth (numpy, one thread) and a large float32
    matmul (XLA, all cores). Best of several runs: the closest to an unloaded machine."""
    import numpy as np

    best_of = _best_of

    a = np.ones(64 * 2**20, np.float32)  # 256 MiB
    b = np.empty_like(a)
    copy_dram = 2 * a.nbytes / best_of(lambda: np.copyto(b, a), 5)  # noqa: F821 (del below)
    a2, b2 = a[: 2**18], b[: 2**18]  # 1 MiB: in L2
    copy_l2 = 2 * a2.nbytes / best_of(lambda: np.copyto(b2, a2), 200)
    del a, b

    import jax
    import jax.numpy as jnp

    platform = jax.default_backend()
    x = jnp.ones((2048, 2048), jnp.float32)
    mm = jax.jit(lambda a, b: a @ b)
    mm(x, x).block_until_ready()
    matmul = 2 * 2048**3 / best_of(lambda: mm(x, x).block_until_ready(), 10)

    torch_cuda = False
    try:
        import torch

        torch_cuda = bool(torch.cuda.is_available())
    except ImportError:
        pass
    return {
        "platform": platform,
        "torch_cuda": torch_cuda,
        "copy_dram_gbs": copy_dram / 1e9,
        "copy_l2_gbs": copy_l2 / 1e9,
        "matmul_gflops": matmul / 1e9,
    }


def _best_of(f, reps: int) -> float:
    best = math.inf
    for _ in range(reps):
        t0 = time.perf_counter()
        f()
        best = min(best, time.perf_counter() - t0)
    return best


def _child_calibrate_core(spec: dict) -> dict:
    """XLA's integer and float elementwise rates on data in cache, on one core: the child
    is pinned to one CPU before JAX starts its threads (they inherit the affinity)."""
    try:
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    except (AttributeError, OSError):
        pass
    import jax
    import jax.numpy as jnp

    def int_chain(x):  # the sampler's mixing function: 8 integer ops a round
        for _ in range(4):
            x = x ^ (x >> 16)
            x = x * jnp.uint32(0x7FEB352D)
            x = x ^ (x >> 15)
            x = x * jnp.uint32(0x846CA68B)
            x = x ^ (x >> 16)
        return x

    def float_chain(v):  # 2 float ops a round
        for _ in range(16):
            v = v * 0.999 + 0.001
        return v

    rates = {}
    for name, chain, x, ops in (
        ("int", int_chain, jnp.arange(8192, dtype=jnp.uint32), 4 * 8),
        ("float", float_chain, jnp.linspace(0, 1, 8192, dtype=jnp.float32), 16 * 2),
    ):
        f = jax.jit(lambda x, chain=chain: jax.lax.fori_loop(0, 64, lambda i, x: chain(x), x))
        f(x).block_until_ready()  # 32 KiB in cache, small enough for one thread
        rates[name] = ops * 64 * x.size / _best_of(lambda f=f, x=x: f(x).block_until_ready(), 40)
    return {"int_gops_1core": rates["int"] / 1e9, "float_gflops_1core": rates["float"] / 1e9}


CHILDREN = {
    "geomtoy": _child_geomtoy,
    "torch": _child_torch,
    "calibrate": _child_calibrate,
    "calibrate_core": _child_calibrate_core,
}


def _child_main(kind: str, spec_json: str) -> int:
    out = CHILDREN[kind](json.loads(spec_json))
    print("RESULT " + json.dumps(out), flush=True)
    return 0


# --- the parent: plan, run children, write results --------------------------------


def _run_child(kind: str, spec: dict, timeout: float, module: str = "bench.run") -> dict:
    env = dict(os.environ)  # JAX picks its platform as `geomtoy run` would
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT)] + [p for p in [env.get("PYTHONPATH")] if p])
    cmd = [sys.executable, "-m", module, "_child", kind, json.dumps(spec)]
    try:
        proc = subprocess.run(
            cmd, env=env, cwd=ROOT, capture_output=True, text=True, timeout=timeout
        )
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout:.0f} s"}
    for line in proc.stdout.splitlines()[::-1]:
        if line.startswith("RESULT "):
            return json.loads(line[len("RESULT ") :])
    tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
    return {"error": " | ".join(tail) or f"exit {proc.returncode}"}


def _machine() -> dict:
    info = {"python": platform.python_version(), "platform": platform.platform()}
    try:
        text = Path("/proc/cpuinfo").read_text()
        info["cpu"] = re.search(r"model name\s*:\s*(.*)", text).group(1).strip()
        flags = re.search(r"flags\s*:\s*(.*)", text).group(1).split()
        info["simd"] = " ".join(f for f in ("avx2", "fma", "avx512f", "amx_tile") if f in flags)
        info["cpu_mhz"] = float(re.search(r"cpu MHz\s*:\s*(.*)", text).group(1))
        mem = Path("/proc/meminfo").read_text()
        info["memory_gib"] = round(int(re.search(r"MemTotal:\s*(\d+)", mem).group(1)) / 2**20, 1)
    except (OSError, AttributeError):
        info["cpu"] = platform.processor()
    try:
        info["cores"] = len(os.sched_getaffinity(0))
    except AttributeError:
        info["cores"] = os.cpu_count()
    try:
        lscpu = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
        for key in ("L2 cache", "L3 cache", "Hypervisor vendor"):
            hit = re.search(rf"{key}:\s*(.*)", lscpu)
            if hit:
                info[key.lower().replace(" ", "_")] = hit.group(1).strip()
    except OSError:
        pass
    from importlib import metadata

    for pkg in ("jax", "jaxlib", "optax", "numpy", "torch"):
        try:
            info[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            info[pkg] = None
    return info


def _loadavg() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "n/a"


def plan(mode: str) -> list[dict]:
    """Every configuration to measure, in order, with the role it plays in the report."""
    rows, seen = [], set()

    def add(name, n, m, I, role, reference=True, single=False):
        key = (n, m, I)
        if key in seen:
            return
        seen.add(key)
        rows.append(
            {
                "name": name,
                "n": n,
                "m": m,
                "I": I,
                "role": role,
                "reference": reference and n * I * BATCH <= REFERENCE_MAX_ELEMENTS[mode],
                "single_device": single,
            }
        )

    for name, (n, m, I) in WORKLOADS.items():
        add(name, n, m, I, "workload", single=True)
    for I in INSTANCE_SERIES[mode]:
        add(f"I={I}", 5, 2, I, "instances")
    for n in FEATURE_SERIES[mode]:
        add(f"n={n}", n, max(2, n // 10), SERIES_INSTANCES, "features")
    return rows


def run(mode: str, rounds: int, reference: bool, log=print) -> dict:
    budget = 2.0 if mode == "quick" else 4.0
    started = datetime.datetime.now().astimezone().isoformat(timespec="seconds")
    result = {
        "mode": mode,
        "started": started,
        "batch": BATCH,
        "machine": _machine(),
        "load_start": _loadavg(),
        "rows": [],
    }
    log(
        f"bench {mode}: {result['machine'].get('cpu')}, {result['machine'].get('cores')} cores, "
        f"load {result['load_start']}"
    )
    result["calibration"] = cal = _run_child("calibrate", {}, timeout=300)
    if "error" not in cal:
        cal |= _run_child("calibrate_core", {}, timeout=300)
    log(f"  calibration: {cal}")
    on_gpu = cal.get("platform") == "gpu" and cal.get("torch_cuda")
    torch_runs = [{"device": "cuda", "threads": 1}] if on_gpu else [{"threads": 1}, {"threads": 2}]
    for row in plan(mode):
        n, m, I = row["n"], row["m"], row["I"]
        base = {"n": n, "m": m, "I": I, "B": BATCH, "budget": budget}
        elements = n * I * BATCH
        timeout = 120 + elements / 1e6 * (0.5 if mode == "quick" else 1.0)
        runs: dict[str, list[dict]] = {}
        for _ in range(rounds):
            if reference and (row["reference"] or on_gpu):
                for k, extra in enumerate(torch_runs, 1):
                    runs.setdefault(f"torch{k}", []).append(
                        _run_child("torch", base | extra, timeout)
                    )
            runs.setdefault("geomtoy", []).append(
                _run_child("geomtoy", base | {"devices": "auto"}, timeout)
            )
            if row["single_device"]:
                runs.setdefault("geomtoy1", []).append(
                    _run_child("geomtoy", base | {"devices": 1}, timeout)
                )
        best = {}
        for key, results in runs.items():
            ok = [r for r in results if "error" not in r]
            best[key] = min(ok, key=lambda r: r["step_s"]) if ok else results[-1]
        refs = [best[k] for k in ("torch1", "torch2") if k in best and "error" not in best[k]]
        ref = min(refs, key=lambda r: r["step_s"]) if refs else None
        out = row | {"results": best, "reference_best": ref}
        g = best.get("geomtoy", {})
        if ref and "error" not in g:
            out["speedup"] = ref["step_s"] / g["step_s"]
            out["speedup_cpu"] = ref["cpu_step_s"] / g["cpu_step_s"]
        result["rows"].append(out)
        log("  " + _summary_line(out))
    result["load_end"] = _loadavg()
    result["finished"] = datetime.datetime.now().astimezone().isoformat(timespec="seconds")
    return result


def _summary_line(row: dict) -> str:
    g = row["results"].get("geomtoy", {})
    ref = row.get("reference_best")
    if "error" in g:
        return f"{row['name']}: geomtoy failed: {g['error']}"
    s = (
        f"{row['name']:>10} (n={row['n']}, m={row['m']}, I={row['I']}): geomtoy "
        f"{g['step_s'] * 1e3:8.2f} ms/step ({row['I'] / g['step_s']:,.0f} model-steps/s, "
        f"compile {g['compile_s']:.1f} s)"
    )
    if ref:
        s += (
            f" | torch({ref['threads']}t) {ref['step_s'] * 1e3:8.2f} ms/step | "
            f"{row['speedup']:.1f}x wall, {row['speedup_cpu']:.1f}x CPU-s"
        )
    return s


# --- report -----------------------------------------------------------------------


def _fmt_rate(x: float) -> str:
    return f"{x / 1e6:.2f} M" if x >= 1e6 else f"{x / 1e3:.1f} k" if x >= 1e3 else f"{x:.0f}"


SAMPLER_INT_OPS = (
    21  # per element: two lowbias32 rounds (16), counter multiply-add, xor, shift, convert
)
ELEMENTWISE_FLOPS = 14  # per element: scale, compare, select; bias, relu, residual, square,
#                         importance, loss sum; relu mask, scale, select, bias-gradient sum


def bounds(row: dict, cal: dict, devices: int) -> dict:
    """Floors for one model-step of relu_output (tied W) on this machine: the per-element
    work of the sampler and the elementwise parts at XLA's in-cache integer and float rates
    (one core per device), plus the contractions' FLOPs (forward W x, W^T h; backward
    W G, h G^T, dA x^T: 10 m n B) at the large-matmul rate. `t_dram` is one write and read
    of x through DRAM: the least traffic of a design that streams (I, n, B) arrays through
    memory every step, as the reference and a plain vmap do (geomtoy's blocks do not)."""
    n, m, B = row["n"], row["m"], BATCH
    elements = n * B
    flops = 10 * m * n * B
    t_elem = (
        elements
        * (
            SAMPLER_INT_OPS / (cal["int_gops_1core"] * 1e9)
            + ELEMENTWISE_FLOPS / (cal["float_gflops_1core"] * 1e9)
        )
        / devices
    )
    t_flop = flops / (cal["matmul_gflops"] * 1e9)
    t_dram = 8 * elements / (cal["copy_dram_gbs"] * 1e9)
    return {
        "flops": flops,
        "t_elem": t_elem,
        "t_flop": t_flop,
        "floor": t_elem + t_flop,
        "t_dram": t_dram,
    }


def markdown(result: dict) -> str:
    mach, cal = result["machine"], result.get("calibration", {})
    lines = [
        f"Measured {result['started']} ({result['mode']} mode, `python -m bench"
        f"{' --full' if result['mode'] == 'full' else ''}`), load average {result['load_start']} at the "
        f"start and {result.get('load_end', '?')} at the end (1, 5, 15 min).",
        "",
        f"Machine: {mach.get('cpu')} ({mach.get('simd')}), {mach.get('cores')} cores, "
        f"{mach.get('memory_gib')} GiB, L2 {mach.get('l2_cache', '?')}, L3 {mach.get('l3_cache', '?')}"
        f"{', under ' + mach['hypervisor_vendor'] if mach.get('hypervisor_vendor') else ''}; "
        f"Python {mach.get('python')}, jax {mach.get('jax')}, jaxlib {mach.get('jaxlib')}, "
        f"optax {mach.get('optax')}, numpy {mach.get('numpy')}, torch {mach.get('torch')}; "
        f"geomtoy on JAX's {cal.get('platform', 'cpu')} backend.",
        "",
    ]
    if "error" not in cal and cal:
        lines += [
            f"Machine limits (best of several runs): copy bandwidth {cal['copy_dram_gbs']:.1f} GB/s "
            f"from DRAM ({cal['copy_l2_gbs']:.0f} GB/s in L2; numpy, one thread), float32 matmul "
            f"{cal['matmul_gflops']:.0f} GFLOP/s (XLA, 2048^2, all cores), elementwise in cache "
            f"{cal['int_gops_1core']:.0f} G integer ops/s and {cal['float_gflops_1core']:.0f} GFLOP/s "
            "per core (XLA).",
            "",
        ]
    lines += [
        "| workload | n | m | I | reference ms/step (threads) | geomtoy ms/step (devices) | reference model-steps/s"
        " | geomtoy model-steps/s | speedup | speedup, CPU-s | geomtoy 1 device ms/step | compile s | peak RSS MiB geomtoy / ref"
        " | XLA temp MiB |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in result["rows"]:
        g = row["results"].get("geomtoy", {})
        g1 = row["results"].get("geomtoy1", {})
        ref = row.get("reference_best")
        if "error" in g:
            lines.append(
                f"| {row['name']} | {row['n']} | {row['m']} | {row['I']} | | failed: {g['error']} |"
                + " |" * 8
            )
            continue
        cells = [
            row["name"],
            row["n"],
            row["m"],
            f"{row['I']:,}",
            f"{ref['step_s'] * 1e3:.1f} ({ref['threads']})" if ref else "not run",
            f"{g['step_s'] * 1e3:.2f} ({g['devices']})",
            _fmt_rate(row["I"] / ref["step_s"]) if ref else "",
            _fmt_rate(row["I"] / g["step_s"]),
            f"**{row['speedup']:.1f}x**" if ref else "",
            f"{row['speedup_cpu']:.1f}x" if ref else "",
            f"{g1['step_s'] * 1e3:.2f}" if g1 and "error" not in g1 else "",
            f"{g['compile_s']:.1f}",
            f"{g['rss_peak_mib']:.0f} / {ref['rss_peak_mib']:.0f}"
            if ref
            else f"{g['rss_peak_mib']:.0f}",
            f"{g['xla_temp_bytes'] / 2**20:.1f}" if g.get("xla_temp_bytes") is not None else "",
        ]
        lines.append("| " + " | ".join(str(c) for c in cells) + " |")
    if "error" not in cal and cal and cal.get("platform", "cpu") == "cpu":
        lines += [
            "",
            "Distance from this machine's limits, per model-step (`bounds` in bench/run.py): the floor "
            f"is the sampler's and the elementwise work ({SAMPLER_INT_OPS} integer and {ELEMENTWISE_FLOPS} "
            "float ops per (n, B) element) at the in-cache rates on all devices, plus the 10 m n B "
            "contraction FLOPs at the matmul rate. x through DRAM is one write and read of the batch: the "
            "least a design streaming (I, n, B) arrays through memory pays (the reference; geomtoy's "
            "blocks stay in cache).",
            "",
            "| workload | devices | sampler + elementwise floor µs | contraction floor µs | x through DRAM µs"
            " | geomtoy µs | x of the floor | reference µs | reference x of the DRAM floor |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for row in result["rows"]:
            g = row["results"].get("geomtoy", {})
            if "error" in g or row["role"] != "workload":
                continue
            b = bounds(row, cal, g["devices"])
            per = g["step_s"] / row["I"]
            ref = row.get("reference_best")
            rper = ref["step_s"] / row["I"] if ref else None
            ref_cells = f"{rper * 1e6:.1f} | {rper / b['t_dram']:.0f}x" if ref else " | "
            lines.append(
                f"| {row['name']} | {g['devices']} | {b['t_elem'] * 1e6:.2f} | {b['t_flop'] * 1e6:.2f} "
                f"| {b['t_dram'] * 1e6:.2f} | {per * 1e6:.2f} | {per / b['floor']:.1f}x | {ref_cells} |"
            )
    return "\n".join(lines)


def write_results(result: dict, results_md: Path) -> None:
    mode = result["mode"]
    json_path = Path(results_md).parent / f"results-{mode}.json"  # bench/ by default
    json_path.write_text(json.dumps(result, indent=1) + "\n")
    replace_block(results_md, mode, markdown(result))


def replace_block(results_md: Path, name: str, body: str) -> None:
    """Put `body` between the `<!-- BEGIN name -->` / `<!-- END name -->` markers of the
    markdown file (appended when they are missing); the text around them stays."""
    begin, end = f"<!-- BEGIN {name} -->", f"<!-- END {name} -->"
    block = f"{begin}\n{body}\n{end}"
    text = (
        results_md.read_text()
        if results_md.exists()
        else f"# Benchmark results\n\n{begin}\n{end}\n"
    )
    if begin in text and end in text:
        text = text[: text.index(begin)] + block + text[text.index(end) + len(end) :]
    else:
        text = text.rstrip() + "\n\n" + block + "\n"
    results_md.write_text(text)


def plot(out: Path) -> Path | None:
    """bench/scaling.png from the fullest results file there is."""
    src = next(
        (
            HERE / f"results-{m}.json"
            for m in ("full", "quick")
            if (HERE / f"results-{m}.json").exists()
        ),
        None,
    )
    if src is None:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    result = json.loads(src.read_text())
    rows = [r for r in result["rows"] if "error" not in r["results"].get("geomtoy", {"error": 1})]
    fig, axes = plt.subplots(1, 3, figsize=(16, 4.4), gridspec_kw={"width_ratios": [1.2, 1.0, 0.9]})

    def series(select, xkey, ax, xlabel):
        pts = sorted((r[xkey], r) for r in rows if select(r))
        if len(pts) < 2:
            ax.text(
                0.5,
                0.5,
                "(the --full run measures this series)",
                ha="center",
                va="center",
                transform=ax.transAxes,
                color="gray",
            )
            ax.set_xticks([])
            ax.set_yticks([])
            return
        xs = [x for x, _ in pts]
        g = [r["I"] / r["results"]["geomtoy"]["step_s"] for _, r in pts]
        dev = pts[0][1]["results"]["geomtoy"]["devices"]
        ax.plot(
            xs, g, "o-", color="C0", label=f"geomtoy ({dev} CPU device{'s' if dev > 1 else ''})"
        )
        g1 = [
            (x, r["I"] / r["results"]["geomtoy1"]["step_s"])
            for x, r in pts
            if "error" not in r["results"].get("geomtoy1", {"error": 1})
        ]
        if len(g1) > 1:
            ax.plot(*zip(*g1), "s--", color="C0", alpha=0.5, label="geomtoy (1 device)")
        ref = [
            (x, r["I"] / r["reference_best"]["step_s"]) for x, r in pts if r.get("reference_best")
        ]
        if ref:
            ax.plot(
                *zip(*ref), "^-", color="C3", label="notebook loop, PyTorch (best of 1, 2 threads)"
            )
        for x, r in pts:
            if r.get("speedup"):
                ax.annotate(
                    f"{r['speedup']:.0f}x",
                    (x, r["I"] / r["results"]["geomtoy"]["step_s"]),
                    textcoords="offset points",
                    xytext=(0, 7),
                    ha="center",
                    fontsize=8,
                )
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel(xlabel)
        ax.set_ylabel("model-steps / s (batch 1024)")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)

    series(lambda r: r["n"] == 5 and r["m"] == 2, "I", axes[0], "instances I (n = 5, m = 2)")
    axes[0].set_title("scaling with instances")
    series(
        lambda r: (
            r["role"] == "features" or (r["I"] == SERIES_INSTANCES and r["role"] != "workload")
        ),
        "n",
        axes[1],
        f"features n (m = max(2, n/10), I = {SERIES_INSTANCES})",
    )
    axes[1].set_title("scaling with features")
    work = [r for r in rows if r["role"] == "workload" and r.get("speedup")]
    ax = axes[2]
    ys = range(len(work))
    ax.barh(
        [y + 0.2 for y in ys],
        [r["speedup"] for r in work],
        height=0.4,
        color="C0",
        label="wall clock",
    )
    ax.barh(
        [y - 0.2 for y in ys],
        [r["speedup_cpu"] for r in work],
        height=0.4,
        color="C0",
        alpha=0.45,
        label="CPU seconds",
    )
    for y, r in zip(ys, work):
        ax.text(r["speedup"], y + 0.2, f" {r['speedup']:.1f}x", va="center", fontsize=8)
    ax.set_yticks(
        list(ys), [f"{r['name']}\n({r['n']}, {r['m']}, {r['I']})" for r in work], fontsize=8
    )
    ax.axvline(1, color="gray", lw=0.8)
    ax.set_xlim(0, 1.18 * max([r["speedup"] for r in work] + [1.0]))
    ax.set_xlabel("speedup over the notebook loop")
    ax.set_title("workloads (n, m, I)")
    ax.legend(fontsize=8, loc="upper right")
    mach = result["machine"]
    fig.suptitle(
        f"{mach.get('cpu')}, {mach.get('cores')} cores, {result['mode']} run {result['started'][:10]}",
        fontsize=9,
    )
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


# --- entry points -----------------------------------------------------------------


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--full",
        action="store_true",
        help="the full scaling series (~15 min) instead of quick (<5 min)",
    )
    p.add_argument(
        "--rounds",
        type=int,
        default=None,
        help="interleaved repetitions per configuration (quick 1, full 2)",
    )
    p.add_argument(
        "--no-reference", action="store_true", help="skip the PyTorch loop (no torch installed)"
    )
    p.add_argument(
        "--results", default=str(HERE / "RESULTS.md"), help="the markdown file to update"
    )


def run_from_args(args: argparse.Namespace) -> int:
    """Run the benchmark from parsed arguments (`python -m bench`, `geomtoy bench`); any
    option missing from `args` takes its default."""
    full = getattr(args, "full", False)
    rounds = getattr(args, "rounds", None)
    results = getattr(args, "results", None) or str(HERE / "RESULTS.md")
    mode = "full" if full else "quick"
    reference = not getattr(args, "no_reference", False)
    if reference:
        try:
            import torch  # noqa: F401
        except ImportError:
            print(
                "bench: torch is not installed (pip install -e '.[bench]'); "
                "use --no-reference to time geomtoy alone",
                file=sys.stderr,
            )
            return 2
    t0 = time.perf_counter()
    result = run(mode, rounds or (1 if mode == "quick" else 2), reference)
    result["wall_s"] = time.perf_counter() - t0
    write_results(result, Path(results))
    png = plot(HERE / "scaling.png")
    print(
        f"bench: wrote {results}, {HERE / f'results-{mode}.json'}"
        f"{', ' + str(png) if png else ''} in {result['wall_s']:.0f} s"
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["_child"]:
        return _child_main(argv[1], argv[2])
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[0])
    add_arguments(p)
    return run_from_args(p.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
