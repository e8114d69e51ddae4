"""The `geomtoy` command: thin argument parsing over `sweep/`, `runs/` and `results/`.

    geomtoy run SWEEP.toml [--out DIR] [--scale smoke|default|paper] [--resume]
                           [--set key=value ...] [--overwrite] [--quiet]
    geomtoy analyze DIR

Exit status 0 on success, 2 with one line on stderr for bad input (file, key, reason):
an invalid sweep file or override, or an output directory that holds something else;
130 on Ctrl-C (the run resumes from its last checkpoint when started again).
Each subcommand is a pair (add_<name>_parser, handler) in `COMMANDS`: new ones plug in alone.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

# Light imports only: `geomtoy --version`, `--help` and a one-line error start neither JAX
# nor NumPy (tests/test_first_use.py); each handler imports what it needs.
from geomtoy import __version__, spec
from geomtoy.runs import arguments as run_arguments
from geomtoy.runs import jobs, signals
from geomtoy.spec import SweepError


class _Parser(argparse.ArgumentParser):
    """argparse, but usage errors are one line (the project's bad-input contract)."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _load(args: argparse.Namespace, path: Path):
    """The sweep of a toy or SAE sweep file (an SAE sweep reads its source beside --out)."""
    from geomtoy.sweep import load as load_sweep
    from geomtoy.sweep.grammar import is_sae_sweep

    if not is_sae_sweep(path):
        return load_sweep(path, scale=args.scale, sets=args.set)
    from geomtoy.sae import family as sae_family

    root = Path(args.out).parent if args.out else Path("results")
    return sae_family.load(path, scale=args.scale, sets=args.set, results_root=root)


def _sae_source(sweep) -> str:
    """An SAE sweep's scale and source for its header; a warning when the source was
    trained at a smaller scale than the SAEs (a smoke-scale toy under default-scale SAEs)."""
    toys = sweep.toys
    about = f"scale {sweep.scale}; source {toys.where}"
    if toys.scale is None:  # synthetic dictionaries
        return about
    n = len(toys.ids)
    about += f" (scale {toys.scale}, {n} toy model{'' if n == 1 else 's'})"
    if spec.SCALES.index(toys.scale) < spec.SCALES.index(sweep.scale):
        _say(
            f"geomtoy: warning: {sweep.name} at scale {sweep.scale} reads toy models trained "
            f"at scale {toys.scale} ({toys.where}); for {sweep.scale}-scale toys, run their "
            f"sweep with --scale {sweep.scale} first",
            sys.stderr,
        )
    return about


def _run(args: argparse.Namespace) -> int:
    from geomtoy.results import store as results
    from geomtoy.sweep import bundled

    path = bundled.resolve(args.sweep)
    sweep = _load(args, path)
    about = _sae_source(sweep) if hasattr(sweep, "toys") else f"scale {sweep.scale}"
    out = Path(args.out) if args.out else Path("results") / sweep.name
    trackers = _trackers(args, sweep)
    if trackers is None:
        return 2
    worker = jobs.resolve(args.worker)
    refusal = _plan(args, sweep, out, worker)
    argv = sys.argv[1:] if args.argv is None else args.argv
    from geomtoy.engine import compile_cache, parallel  # JAX starts here, signals handled
    from geomtoy.runs import runner
    from geomtoy.runs.progress import Progress

    progress = Progress(None if args.quiet else sys.stderr, trackers=trackers, about=about)
    compile_cache.enable(args.compile_cache, not args.no_compile_cache, out=out)
    try:
        mesh = parallel.setup(args.devices)  # GEOMTOY_DISTRIBUTED=1: jax.distributed first
        signals.check()  # Ctrl-C or SIGTERM during start-up
        if args.dry_run:
            if hasattr(sweep, "toys"):  # an SAE sweep: which toy models, at which scale
                print(f"{sweep.name}: {about}")
            return _dry_run(sweep, mesh, refusal)
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


def _plan(args: argparse.Namespace, sweep, out: Path, worker) -> str | None:
    """Refusals that need no devices, before JAX starts (the runner plans again); a dry
    run writes nothing, so it only notes what the run would refuse."""
    from geomtoy.runs.directory import plan_run

    try:
        plan_run(sweep, out, resume=args.resume, overwrite=args.overwrite, worker=worker)
    except SweepError as e:
        if not args.dry_run:
            raise
        return f"note: the run itself would stop: {e}"
    return None


def _trackers(args: argparse.Namespace, sweep) -> list | None:
    """--log's trackers; None (after one line on stderr) when the tracker is missing."""
    if args.log != "wandb":
        return []
    from geomtoy.runs.progress import WandbTracker

    try:
        return [WandbTracker(sweep.name, sweep.spec, project=args.log_project)]
    except ModuleNotFoundError as e:
        print(f"geomtoy: error: {e}", file=sys.stderr)
        return None


def _dry_run(sweep, mesh, refusal: str | None = None) -> int:
    from geomtoy.engine import parallel
    from geomtoy.runs import budget, runner

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
    if refusal:  # what the run itself would refuse (another scale there, ...)
        print(refusal)
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
    from geomtoy.results import store as results
    from geomtoy.runs import runner

    runner.analyze_dir(args.dir)
    _say(results.describe(Path(args.dir)))
    return 0


def _add_explore(sub) -> argparse.ArgumentParser:
    from geomtoy.viz import arguments

    p = sub.add_parser(
        "explore",
        help="write one self-contained HTML page to browse every model of results directories",
        description="Write an interactive HTML page (no server, no network) to browse the "
        "geometry of every trained model of one or more complete results directories.",
    )
    arguments.add_arguments(p)
    return p


def _explore(args: argparse.Namespace) -> int:
    from geomtoy.viz import explore

    replaced = Path(args.out).is_file()
    out = explore.build_explorer(args.dirs, args.out, args.overwrite)
    _say(explore.describe(out) + ("; replaced the page that was there" if replaced else ""))
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
    from geomtoy.results import store as results
    from geomtoy.runs import runner

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
        help="write a results directory's weights for PyTorch tools (safetensors, SAELens)",
        description="safetensors: W, b (and W2) of every instance, with the grid values as "
        "metadata, in one file; saelens: each SAE of an SAE sweep as a folder SAELens's "
        "SAE.load_from_disk reads (layouts: docs/export.md).",
    )
    p.add_argument("dir", metavar="DIR", help="a complete results directory")
    p.add_argument(
        "--format",
        default="safetensors",
        metavar="{safetensors,saelens}",
        help="output format (default: %(default)s)",
    )
    p.add_argument(
        "--out",
        metavar="PATH",
        help="file to write (default: DIR.safetensors); saelens: folder (default: DIR.saelens)",
    )
    return p


def _export(args: argparse.Namespace) -> int:
    from geomtoy.results import export

    out = export.export(args.dir, args.out, args.format)
    if out.is_dir():
        print(f"{out}: {len(list(out.iterdir()))} SAEs, each a folder SAE.load_from_disk reads")
        return 0
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
    from geomtoy.sweep import bundled

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
        help="every sweep key (toy and SAE sweeps) with its type, default and meaning",
        description="Print the sweep-key reference (the same as docs/keys.md), the SAE "
        "sweeps' [source] and [sae] keys last.",
    )
    p.add_argument("--markdown", action="store_true", help="as the docs/keys.md table")
    return p


def _keys(args: argparse.Namespace) -> int:
    from geomtoy.sweep import keys  # the JAX-free field lists: no JAX start-up

    sae = keys.SAE_KEYS
    print(keys.markdown(sae) if args.markdown else keys.text(sae), end="")
    return 0


COMMANDS: dict[str, tuple[Callable, Callable[[argparse.Namespace], int]]] = {
    "run": (run_arguments.add_run, _run),
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
    if args.command == "run" and argv is None and _distributed_requested():
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


def _distributed_requested() -> bool:
    """GEOMTOY_DISTRIBUTED asks for a multi-process job (parallel.distributed_requested
    decides); without the variable JAX is not imported here."""
    if "GEOMTOY_DISTRIBUTED" not in os.environ:
        return False
    from geomtoy.engine import parallel

    return parallel.distributed_requested()


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
