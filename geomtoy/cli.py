"""The `geomtoy` command: thin argument parsing over `sweep`, `runner` and `results`.

    geomtoy run SWEEP.toml [--out DIR] [--scale smoke|default|paper] [--resume]
                           [--set key=value ...] [--overwrite] [--quiet]
    geomtoy analyze DIR

Exit status 0 on success, 2 with one line on stderr for bad input (file, key, reason):
an invalid sweep file or override, or an output directory that holds something else;
130 on Ctrl-C (the run resumes from its last checkpoint when started again).
Each subcommand is a pair (add_<name>_parser, handler) in `COMMANDS`, so new ones
(explore, bench, merge) plug in without touching the others.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from geomtoy import __version__, bundled, jobs, results, signals, spec
from geomtoy.directory import plan_run
from geomtoy.grammar import is_sae_sweep
from geomtoy.progress import Progress
from geomtoy.spec import SweepError
from geomtoy.sweep import load as load_sweep


class _Parser(argparse.ArgumentParser):
    """argparse, but usage errors are one line (the project's bad-input contract)."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _add_run(sub) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "run",
        help="train a sweep into a results directory (resumes an interrupted one)",
        description="Train every instance of a sweep file and write the results directory. "
        "Rerunning the same command resumes an interrupted run and does nothing on a complete one.",
    )
    p.add_argument(
        "sweep",
        metavar="SWEEP",
        help="a sweep file, or the name of a bundled sweep such as pentagon (geomtoy sweeps "
        "lists them; the keys: docs/sweep-file.md)",
    )
    p.add_argument("--out", metavar="DIR", help="results directory (default: results/<name>)")
    p.add_argument(
        "--scale", choices=spec.SCALES, default="default", help="run size (default: %(default)s)"
    )
    p.add_argument("--resume", action="store_true", help="require a run to resume in DIR")
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a key, e.g. train.steps=2000, model.kind=linear, grid.train.lr=[1e-3,1e-2]",
    )
    p.add_argument(
        "--overwrite", action="store_true", help="replace a results directory holding another run"
    )
    p.add_argument("--quiet", "-q", action="store_true", help="no progress lines")
    _add_run_execution(p)
    return p


def _add_run_execution(p: argparse.ArgumentParser) -> None:
    """run's options of where and how it trains: tracker, devices, job array, dry run,
    compilation cache (the help lists them in this order, after the sweep's own)."""
    p.add_argument(
        "--log",
        choices=("none", "wandb"),
        default="none",
        help="also send every chunk's progress record to a tracker (needs the wandb package)",
    )
    p.add_argument(
        "--devices",
        type=_devices,
        default="auto",
        metavar="N",
        help="split instances over N local devices (default: all; on CPU one per core)",
    )
    p.add_argument(
        "--worker",
        metavar="K/N",
        help="task K of a job array of N sharing --out: train the blocks b %% N == K; "
        "'auto' reads the task from SLURM_ARRAY_TASK_ID, SGE_TASK_ID, ... (see README)",
    )
    p.add_argument(
        "--dry-run",
        action="store_true",
        help="print instances, groups, blocks, memory per block and estimated time; "
        "train and write nothing",
    )
    cache = p.add_mutually_exclusive_group()
    cache.add_argument(
        "--compile-cache",
        metavar="DIR",
        help="persistent cache of compiled programs, outside --out (default: "
        "$GEOMTOY_COMPILE_CACHE or ~/.cache/geomtoy/jax): a rerun of the same shapes compiles "
        "nothing. Your private data: created 0700, ignored with a warning if another user owns "
        "it or others can write it; entries are checked (manifest SHA-256, CPU, jax version) "
        "before JAX reads them, a mismatch is compiled again; nothing in it is unpickled",
    )
    cache.add_argument(
        "--no-compile-cache", action="store_true", help="compile every program afresh"
    )


def _devices(value: str):
    if value == "auto":
        return value
    if value.isdigit() and int(value) >= 1:
        return int(value)
    raise argparse.ArgumentTypeError(f"expected a positive integer or auto, got {value!r}")


def _run_sae(args: argparse.Namespace, path: Path) -> int:
    from geomtoy import compile_cache, parallel, runner
    from geomtoy.sae import runner as sae_runner
    from geomtoy.sae import sweep as sae_sweep

    for flag, used in (("--worker", args.worker), ("--log", args.log != "none")):
        if used:
            raise SweepError(path, flag, "is not supported for an SAE sweep")
    out = Path(args.out) if args.out else None
    root = out.parent if out else Path("results")
    sweep = sae_sweep.load(path, scale=args.scale, sets=args.set, results_root=root)
    if args.dry_run:
        print("\n".join(sweep.plan_lines()))
        return 0
    out, argv = out or root / sweep.name, sys.argv[1:] if args.argv is None else args.argv
    progress = Progress(None if args.quiet else sys.stderr)

    compile_cache.enable(args.compile_cache, not args.no_compile_cache, out=out)
    mesh = parallel.setup(args.devices)
    try:
        report = sae_runner.run(
            sweep, out, command=runner.command_line(["geomtoy", *argv]), resume=args.resume,
            overwrite=args.overwrite, progress=progress, mesh=mesh,
        )  # fmt: skip
    finally:
        compile_cache.publish()  # what this run compiled serves the next one
    if report.action == "complete":
        print(f"{out}: already complete, nothing to train")
    else:
        print(results.describe(out))
    return 0


def _run(args: argparse.Namespace) -> int:
    path = bundled.resolve(args.sweep)
    if is_sae_sweep(path):
        return _run_sae(args, path)
    sweep = load_sweep(path, scale=args.scale, sets=args.set)
    out = Path(args.out) if args.out else Path("results") / sweep.name
    trackers = []
    if args.log == "wandb":
        from geomtoy.progress import WandbTracker

        try:
            trackers.append(WandbTracker(sweep.name, sweep.spec, out))
        except ModuleNotFoundError as e:
            print(f"geomtoy: error: {e}", file=sys.stderr)
            return 2
    worker = jobs.resolve(args.worker)
    # Refusals that need no devices come before JAX starts (the runner plans again).
    plan_run(sweep, out, resume=args.resume, overwrite=args.overwrite, worker=worker)
    progress = Progress(None if args.quiet else sys.stderr, trackers=trackers)
    argv = sys.argv[1:] if args.argv is None else args.argv
    from geomtoy import compile_cache, parallel, runner  # JAX starts here, signals handled

    compile_cache.enable(args.compile_cache, not args.no_compile_cache, out=out)
    try:
        mesh = parallel.setup(args.devices)  # GEOMTOY_DISTRIBUTED=1: jax.distributed first
        signals.check()  # Ctrl-C or SIGTERM during start-up
        if args.dry_run:
            return _dry_run(sweep, mesh)
        runner.check_memory(sweep, mesh=mesh)
        report = runner.run_sweep(
            sweep,
            out,
            command=runner.command_line(["geomtoy", *argv]),
            resume=args.resume,
            overwrite=args.overwrite,
            progress=progress,
            process_index=parallel.process_index(),
            process_count=parallel.process_count(),
            worker=worker,
            mesh=mesh,
        )
    finally:
        compile_cache.publish()  # what this run compiled serves the next one
        for tracker in trackers:
            tracker.finish()
    if report.action == "complete":
        _say(f"{out}: already complete, nothing to train")
    elif report.complete:
        _say(results.describe(out))
    else:
        _say(
            f"{out}: trained {report.trained_blocks} blocks; blocks of other tasks not done "
            f"yet: the last task to finish assembles the tables (or run geomtoy merge {out})"
        )
    return 0


def _dry_run(sweep, mesh) -> int:
    from geomtoy import budget, parallel, runner

    platform, devices = runner.backend(), parallel.instance_multiple(mesh)
    memory = budget.device_memory()
    fitted = runner.device_blocks(sweep, mesh, platform=platform, memory=memory)
    print("\n".join(budget.plan_lines(fitted, platform, devices, memory)))
    for g, f in zip(sweep.groups, fitted.groups):
        if f.block_size != g.block_size:  # what the run does on an accelerator
            print(
                f"  group {g.index}: blocks of {f.block_size:,} instead of {g.block_size:,}, "
                f'chosen from this device\'s memory (train.block_size = "auto")'
            )
    return 0


def _add_analyze(sub) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "analyze",
        help="recompute the geometry tables of a results directory from params.npz",
        description="Recompute features.parquet and the geometry columns of instances.parquet "
        "(dims_per_feature, n_represented, geometry) from the saved weights.",
    )
    p.add_argument("dir", metavar="DIR", help="a complete results directory")
    return p


def _analyze(args: argparse.Namespace) -> int:
    from geomtoy import runner

    runner.analyze_dir(args.dir)
    _say(results.describe(Path(args.dir)))
    return 0


def _add_explore(sub) -> argparse.ArgumentParser:
    from geomtoy.viz import explore

    p = sub.add_parser(
        "explore",
        help="write one self-contained HTML page to browse every model of results directories",
        description="Write an interactive HTML page (no server, no network) to browse the "
        "geometry of every trained model of one or more complete results directories.",
    )
    explore.add_arguments(p)
    return p


def _explore(args: argparse.Namespace) -> int:
    from geomtoy.viz import explore

    out = explore.build_explorer(args.dirs, args.out)
    _say(explore.describe(out))
    return 0


def _add_merge(sub) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "merge",
        help="join the block files of a multi-process run into its tables",
        description="Assemble the tables of a run whose blocks were written by several "
        "processes (GEOMTOY_DISTRIBUTED=1); a complete directory is left as it is.",
    )
    p.add_argument("dir", metavar="DIR", help="results directory of a multi-process run")
    return p


def _merge(args: argparse.Namespace) -> int:
    from geomtoy import runner

    runner.finish(args.dir)
    _say(results.describe(Path(args.dir)))
    return 0


def _add_bench(sub) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "bench",
        help="speed against the paper notebook's PyTorch loop (bench/RESULTS.md)",
        description="Time geomtoy and the reference PyTorch loop side by side (needs a "
        "checkout with bench/ and the `bench` extra for torch).",
    )
    p.add_argument("--full", action="store_true", help="full scaling series (~10 min), not quick")
    p.add_argument("--no-reference", action="store_true", help="time geomtoy alone (no torch)")
    return p


def _bench(args: argparse.Namespace) -> int:
    root = Path(__file__).resolve().parents[1]
    if (root / "bench" / "run.py").exists() and str(root) not in sys.path:
        sys.path.insert(0, str(root))
    try:
        from bench.run import run_from_args
    except ImportError:
        print(
            "geomtoy: error: bench/ not found; run geomtoy bench from a checkout", file=sys.stderr
        )
        return 2
    return run_from_args(args)


def _add_export(sub) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "export",
        help="write a results directory's weights for PyTorch tools (safetensors)",
        description="Write W, b (and W2) of every instance, with the grid values as metadata, "
        "to one safetensors file (layout: docs/export.md).",
    )
    p.add_argument("dir", metavar="DIR", help="a complete results directory")
    p.add_argument("--format", default="safetensors", help="output format (default: %(default)s)")
    p.add_argument("--out", metavar="FILE", help="file to write (default: DIR.safetensors)")
    return p


def _export(args: argparse.Namespace) -> int:
    from geomtoy import export

    out = export.export(args.dir, args.out, args.format)
    size = out.stat().st_size
    print(f"{out}: {size / 1e6:.1f} MB" if size >= 1e5 else f"{out}: {size / 1e3:.1f} kB")
    return 0


def _add_sweeps(sub) -> argparse.ArgumentParser:
    return sub.add_parser(
        "sweeps",
        help="list the bundled sweeps (the paper's experiments) and the figure each serves",
        description="The paper's sweep files shipped with geomtoy; run one with "
        "`geomtoy run NAME [--scale smoke|default|paper]`.",
    )


def _sweeps(args: argparse.Namespace) -> int:
    rows = bundled.listing()
    if not rows:
        print("geomtoy: error: no bundled sweeps found (a broken install?)", file=sys.stderr)
        return 2
    width = max(len(r.name) for r in rows)
    for r in rows:
        print(f"{r.name:<{width}}  {r.figure}")
        if r.description:
            print(f"{'':<{width}}    {r.description}")
    print(f"\n{len(rows)} sweeps in {bundled.directory()}; run one with: geomtoy run NAME")
    return 0


def _add_keys(sub) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "keys",
        help="every sweep key with its type, default and meaning",
        description="Print the sweep-key reference (the same as docs/keys.md).",
    )
    p.add_argument("--markdown", action="store_true", help="as the docs/keys.md table")
    return p


def _keys(args: argparse.Namespace) -> int:
    from geomtoy import keys

    print(keys.markdown() if args.markdown else keys.text(), end="")
    return 0


COMMANDS: dict[str, tuple[Callable, Callable[[argparse.Namespace], int]]] = {
    "run": (_add_run, _run),
    "analyze": (_add_analyze, _analyze),
    "keys": (_add_keys, _keys),
    "explore": (_add_explore, _explore),
    "merge": (_add_merge, _merge),
    "bench": (_add_bench, _bench),
    "sweeps": (_add_sweeps, _sweeps),
    "export": (_add_export, _export),
}


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="geomtoy", description="Train thousands of toy models of superposition.")
    parser.add_argument("--version", action="version", version=f"geomtoy {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add, handler in COMMANDS.values():
        add(sub).set_defaults(handler=handler)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `geomtoy` console script and `python -m geomtoy`.

    Exit status: 0 done; 2 bad input or an OS error (one line naming the path); 3 a lost
    peer of a jax.distributed job; 128 + N stopped by signal N at a chunk boundary with a
    checkpoint written (143 SIGTERM, 129 SIGHUP, 130 Ctrl-C): rerun to resume."""
    args = build_parser().parse_args(argv)
    args.argv = None if argv is None else list(argv)
    from geomtoy import parallel

    if args.command == "run" and parallel.distributed_requested() and argv is None:
        if not os.environ.get(jobs.SUPERVISED_ENV):
            return jobs.supervise(sys.argv[1:])
        jobs.die_with_parent()
    try:
        with signals.handling():
            return args.handler(args)
    except SweepError as e:
        _say(f"geomtoy: error: {e}", sys.stderr)
        return 2
    except signals.Stopped as e:
        how = "run the same command again to resume from the checkpoint"
        _say(f"geomtoy: stopped by {e.name}; {how}", sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        _say("geomtoy: interrupted; run the same command again to resume", sys.stderr)
        return 130
    except OSError as e:
        _say(f"geomtoy: error: {_os_error(e)}", sys.stderr)
        return 2


def _os_error(e: OSError) -> str:
    """An OS error as 'PATH: what' (disk full, read-only, not a directory, ...)."""
    what = e.strerror or str(e)
    hint = {
        errno.ENOSPC: "; free some space and run the same command again to resume",
        errno.EDQUOT: "; free some space and run the same command again to resume",
        errno.EROFS: "; give an --out on a writable file system",
        errno.EACCES: "; give an --out you may write",
        errno.ELOOP: " (a loop of symbolic links)",
    }.get(e.errno, "")
    path = e.filename if e.filename is not None else "geomtoy"
    return f"{path}: {what}{hint}"


def _say(line: str, stream=None) -> None:
    """Print one line; a closed stdout or stderr (`geomtoy run ... | head`) is ignored."""
    stream = stream or sys.stdout
    try:
        print(line, file=stream, flush=True)
    except (OSError, ValueError):
        with contextlib.suppress(OSError, ValueError):  # no flush error at exit either
            os.dup2(os.open(os.devnull, os.O_WRONLY), stream.fileno())
