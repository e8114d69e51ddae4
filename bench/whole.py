"""Whole processes, not steps: `geomtoy run` against the notebook loop, and start-up.

    python -m bench.whole [--steps 400 10000] [--startup-rounds 3] [--no-reference]
    make bench-whole

What a user waits for is a whole `geomtoy run` process: Python and JAX start-up,
compilation (or a load from the persistent compilation cache), training, evaluation on
2^17 fresh samples, the geometry analysis and the tables. This times, each in its own
child process and interleaved so that all see the same machine load:

* start-up: a bare `python -c "import jax"`, a 10-step many-small run with an empty
  compilation cache (cold) and the same run again with the cache it filled (warm);
* whole runs: many-small (bench/many_small.toml: n=5, m=2, 1,000 instances, batch 1024)
  at each --steps, with a warm cache, against the notebook's loop as a whole process
  (`import torch`, build, train those steps, sync: bench/reference_torch.py), which
  neither evaluates nor analyses anything; and once with --no-compile-cache.

Wall seconds are the best of the rounds; peak RSS from the child's rusage. Writes
bench/results-whole.json and the `whole` block of bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from bench.run import HERE, ROOT, _loadavg, _machine, replace_block

SWEEP = HERE / "many_small.toml"
TORCH = """
import sys, torch
from bench.reference_torch import make, optimize
steps, device = int(sys.argv[1]), sys.argv[2]
model, opt = make(5, 2, 1000, device=device)
optimize(model, opt, steps).item()
"""


def timed(cmd: list[str], env: dict | None = None, timeout: float = 7200) -> dict:
    """Wall seconds, peak RSS (MiB, the child's own rusage) and exit code of one child."""
    full_env = dict(os.environ) | (env or {})
    full_env["PYTHONPATH"] = os.pathsep.join(
        [str(ROOT)] + [p for p in [full_env.get("PYTHONPATH")] if p]
    )
    with tempfile.TemporaryFile() as err:
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, cwd=ROOT, env=full_env, stdout=subprocess.DEVNULL, stderr=err)
        killer = threading.Timer(timeout, proc.kill)
        killer.start()
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
        killer.cancel()
        proc.returncode = os.waitstatus_to_exitcode(status)
        out = {"wall_s": round(wall, 3), "rss_mib": round(usage.ru_maxrss / 1024, 1)}
        if proc.returncode:
            err.seek(0)
            tail = err.read().decode(errors="replace").strip().splitlines()[-1:]
            out |= {"rc": proc.returncode, "error": tail or [f"killed after {timeout:.0f} s"]}
    return out


def geomtoy_run(steps: int, out: Path, cache: Path | None) -> list[str]:
    cache_args = ["--compile-cache", str(cache)] if cache else ["--no-compile-cache"]
    return [
        sys.executable,
        "-m",
        "geomtoy",
        "run",
        str(SWEEP),
        "--set",
        f"train.steps={steps}",
        "--out",
        str(out),
        "--overwrite",
        "-q",
        *cache_args,
    ]


def torch_run(steps: int, device: str = "cpu") -> list[str]:
    return [sys.executable, "-c", TORCH, str(steps), device]


def best(runs: list[dict]) -> float | None:
    walls = [r["wall_s"] for r in runs if "wall_s" in r and not r.get("rc")]
    return min(walls) if walls else None


def run(
    steps: list[int],
    rounds: int,
    reference: bool,
    device: str = "cpu",
    reference_max: int = 10**9,
    repeat: bool = True,
    log=print,
) -> dict:
    """Every measurement, interleaved; returns the results document."""
    result = {
        "mode": "whole",
        "started": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "load_start": _loadavg(),
        "machine": _machine(),
        "steps": steps,
        "device": device,
    }
    with tempfile.TemporaryDirectory(prefix="geomtoy-bench-") as tmp:
        tmp = Path(tmp)
        start = {"import_jax": [], "cold_10": [], "warm_10": []}
        for r in range(rounds):
            cache = tmp / f"cache-{r}"  # empty: the cold run fills it for the warm one
            start["import_jax"].append(timed([sys.executable, "-c", "import jax"]))
            start["cold_10"].append(timed(geomtoy_run(10, tmp / "s", cache)))
            start["warm_10"].append(timed(geomtoy_run(10, tmp / "s", cache)))
            log(f"start-up round {r + 1}: " + ", ".join(f"{k} {v[-1]}" for k, v in start.items()))
        result["startup"] = {k: best(v) for k, v in start.items()} | {"runs": start}
        cache = tmp / "cache-0"
        whole, measured = {}, {}  # measured: reference wall seconds by steps
        for n in steps:
            # the longest runs once; shorter ones before and after the reference, and cold
            short = n <= 2000 and repeat
            row = {"geomtoy": [], "reference": [], "geomtoy_no_cache": []}
            row["geomtoy"].append(timed(geomtoy_run(n, tmp / f"w{n}", cache)))
            if reference and n <= reference_max:
                row["reference"].append(timed(torch_run(n, device)))
            elif reference:  # too long for the session: two shorter runs, a straight line
                a, b = max(10, reference_max // 5), reference_max
                tb = measured.get(b) or best([timed(torch_run(b, device))])
                ta = best([timed(torch_run(a, device))])
                if ta and tb:
                    row["reference"].append({"wall_s": tb + (tb - ta) * (n - b) / (b - a)})
                    row["reference_extrapolated_from"] = {str(a): ta, str(b): tb}
            if short:
                row["geomtoy"].append(timed(geomtoy_run(n, tmp / f"w{n}", cache)))
                row["geomtoy_no_cache"].append(timed(geomtoy_run(n, tmp / f"w{n}", None)))
            if row["reference"] and "reference_extrapolated_from" not in row:
                measured[n] = best(row["reference"])
            extrapolated = row.pop("reference_extrapolated_from", None)
            whole[str(n)] = {k: best(v) for k, v in row.items()} | {"runs": row}
            if extrapolated:
                whole[str(n)]["reference_extrapolated_from"] = extrapolated
            log(f"{n} steps: " + ", ".join(f"{k} {best(v)}" for k, v in row.items()))
        result["whole"] = whole
    result["load_end"] = _loadavg()
    return result


def _ratio(a: float | None, b: float | None) -> str:
    return f"**{a / b:.1f}x**" if a and b else "n/a"


def markdown(result: dict) -> str:
    s, m = result["startup"], result["machine"]
    lines = [
        f"Measured {result['started']} (`python -m bench.whole`), load average "
        f"{result['load_start']} at the start and {result['load_end']} at the end, on "
        f"{m.get('cpu')} ({m.get('cores')} cores). Absolute times drift on a shared machine; "
        "the ratios, measured side by side minutes apart, are the result.",
        "",
        "| start-up | best of rounds, wall s | vs bare `import jax` | each round, vs its own `import jax` |",
        "|---|---:|---:|---|",
    ]
    base, runs = s["import_jax"], s.get("runs", {})
    for key, label in (
        ("import_jax", "bare `python -c 'import jax'`"),
        ("cold_10", "10-step many-small run, empty compilation cache (cold)"),
        ("warm_10", "the same run again, warm cache"),
    ):
        v = s[key]
        rounds = ", ".join(
            f"{a['wall_s'] / b['wall_s']:.2f}x"
            for a, b in zip(runs.get(key, []), runs.get("import_jax", []))
            if a and b and a.get("wall_s") and b.get("wall_s")
        )
        lines.append(
            f"| {label} | {v:.2f} | {v / base:.2f}x | {rounds} |"
            if v and base
            else f"| {label} | n/a | | |"
        )
    lines += [
        "",
        "| many-small, whole process | geomtoy run, warm cache s | no cache s | notebook loop s | speedup |",
        "|---|---:|---:|---:|---:|",
    ]
    for n, row in result["whole"].items():
        g, nc, ref = row["geomtoy"], row["geomtoy_no_cache"], row["reference"]
        fmt = lambda v: f"{v:.1f}" if v else "n/a"
        how = row.get("reference_extrapolated_from")
        note = ", ".join(f"{int(k):,} steps {v:.1f} s" for k, v in (how or {}).items())
        ref_text = f"{fmt(ref)} (extrapolated from {note})" if how else fmt(ref)
        lines.append(f"| {int(n):,} steps | {fmt(g)} | {fmt(nc)} | {ref_text} | {_ratio(ref, g)} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.whole", description=__doc__.split("\n\n")[0])
    p.add_argument("--steps", type=int, nargs="+", default=[400, 10_000])
    p.add_argument("--startup-rounds", type=int, default=2)
    p.add_argument("--no-reference", action="store_true", help="skip the PyTorch loop")
    p.add_argument("--device", default="cpu", help="the reference's torch device (cuda on a GPU)")
    p.add_argument(
        "--reference-max-steps",
        type=int,
        default=10**9,
        help="longer reference runs are extrapolated (a straight line through runs at "
        "this and a fifth of this many steps)",
    )
    p.add_argument("--results", default=str(HERE / "RESULTS.md"))
    p.add_argument("--json", default=str(HERE / "results-whole.json"))
    p.add_argument(
        "--once", action="store_true", help="each geomtoy run once (no repeat, no cold run)"
    )
    p.add_argument("--markdown-only", action="store_true", help="rewrite the block from --json")
    args = p.parse_args(argv)
    if args.markdown_only:
        replace_block(
            Path(args.results), "whole", markdown(json.loads(Path(args.json).read_text()))
        )
        return 0
    result = run(
        args.steps,
        args.startup_rounds,
        not args.no_reference,
        args.device,
        args.reference_max_steps,
        not args.once,
    )
    Path(args.json).write_text(json.dumps(result, indent=1) + "\n")
    replace_block(Path(args.results), "whole", markdown(result))
    print(f"bench.whole: wrote {args.results} and {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
