"""The write protocol of a results directory: what a run finds there, who may write it,
how an old run is replaced, and how the tables are assembled exactly once.

1. `plan_run` reads the directory (writing nothing) and decides: fresh, resume, complete,
   or refused with one line (another sweep, not a results directory, damaged tables, a
   directory inside another results directory, ...).
2. `Writer` takes the run lock (geomtoy.runs.lock: exclusive for a whole run, shared plus a
   worker lock for a task of a job array), plans again under the meta lock (another task
   may have started the run meanwhile), and only then writes: with --overwrite every
   table and log of the old run (`WRITTEN`: samples.parquet and progress.jsonl too) and
   its block files are first moved aside into `.geomtoy-replaced/`, which is deleted
   once the new meta.json is written, so a kill at any moment leaves either the old run
   or the new one, each resumable by the same command.
3. meta.json is only ever read, changed and rewritten under the meta lock, so the tasks
   of an array each add their own run record.
4. `Writer.finish` assembles the tables if every block file is there and sound (checked
   by content checksum), under the meta lock, exactly once; block files are removed only
   after the tables and the complete meta.json are written. Clean-up and --overwrite
   touch only files geomtoy wrote for the sweep: a block file or checkpoint by its exact
   name (`block-NNNNN.npz`, `block-NNNNN.ckpt.npz`) and the sweep fingerprint it holds,
   and temporaries by their exact name; anything else in blocks/ is kept, and so is
   blocks/ with it. blocks/ and the aside must be directories, not links.

`merge` does step 4 for a directory whose blocks were written by other processes; it
never deletes a file it did not use, and names each block it could not use and why.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import re
import shutil
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from geomtoy import spec
from geomtoy.results import integrity
from geomtoy.results.store import (
    RUN_META_KEYS,
    TEMPORARY,
    WRITTEN,
    ResultsDir,
    atomic_write_json,
    now,
    open_results,
    own_directory,
)
from geomtoy.runs import lock
from geomtoy.spec import SweepError
from geomtoy.sweep.plan import Block, Sweep

ASIDE = ".geomtoy-replaced"
"""Where --overwrite moves the old run's files until the new meta.json is written."""
BLOCK_FILE = re.compile(r"block-\d{5}(\.ckpt)?\.npz")
"""The exact names of the block files and checkpoints a run writes in blocks/."""
BLOCK_KEYS = ("fingerprint", "instance", "loss", "diverged", "curve_loss")
"""What every family's block file holds (the rest is its family's, under the checksum)."""


@dataclasses.dataclass(frozen=True)
class Plan:
    """What a run will do with its output directory, decided before writing anything."""

    action: str  # "fresh" | "resume" | "complete" (nothing to train)
    meta: dict | None  # the existing meta.json, if any
    overwrite: bool


def _flat(document: Mapping) -> dict[str, Any]:
    """A spec document as {dotted key: value}; grid axes as "grid.<key>"."""
    out = {}
    for k, v in document.items():
        if k in (*spec.SECTIONS, "grid") and isinstance(v, dict):
            out |= {f"{k}.{kk}": vv for kk, vv in v.items()}
        else:
            out[k] = v
    return out


def _first_difference(old: dict, new: dict) -> str:
    """The first key whose value differs between two spec documents, for messages."""
    a, b = _flat(old), _flat(new)
    for key in list(b) + [k for k in a if k not in b]:
        there, here = (json.dumps(d.get(key, "<absent>")) for d in (a, b))
        if there != here:
            return f"{key}: {there} there, {here} here"
    return "same spec, different fingerprint (another geomtoy version?)"


def _bookkeeping(name: str) -> bool:
    """Files a run leaves besides its results: blocks/, locks, temporaries, the aside."""
    return name in ("blocks", ASIDE) or lock.is_lock_file(name) or bool(TEMPORARY.fullmatch(name))


def leftovers(rd: ResultsDir) -> list[str]:
    """What a killed run left in a complete directory: blocks/, locks, temporaries."""
    return [p.name for p in rd.path.iterdir() if _bookkeeping(p.name)] if rd.path.is_dir() else []


def _enclosing_results(out: Path) -> Path | None:
    """A results directory that `out` would be inside of, if any."""
    for parent in Path(os.path.abspath(out)).parents:
        with contextlib.suppress(OSError, SweepError):
            if ResultsDir(parent).read_meta() is not None:
                return parent
    return None


def plan_run(
    sweep: Sweep,
    out: Path,
    *,
    resume: bool = False,
    overwrite: bool = False,
    worker=None,
    locked: bool = False,
) -> Plan:
    """Check the output directory against the sweep; SweepError (exit 2) if refused.

    Fresh directory (absent, empty, or holding only what a killed run leaves before its
    first meta.json): train. Same sweep, status running: resume. Same sweep, complete,
    tables sound: nothing to do. A different sweep, or a non-empty directory that is not
    a results directory: refused, unless `overwrite` (only for results directories).
    """
    out = Path(out)
    rd = ResultsDir(out)
    with contextlib.suppress(FileNotFoundError):  # ENOTDIR, ELOOP, ENAMETOOLONG: one line
        os.stat(out)
    if out.is_symlink() and not out.exists():
        raise SweepError(out, None, f"is a dangling symbolic link (to {os.readlink(out)})")
    if out.exists() and not out.is_dir():
        raise SweepError(out, None, "exists and is not a directory")
    enclosing = _enclosing_results(out)
    if enclosing is not None:
        raise SweepError(out, None, f"inside the results directory {enclosing}; give another --out")
    if overwrite and worker is not None:
        reason = "--overwrite replaces a whole run; not with --worker (remove the directory first)"
        raise SweepError(out, None, reason)
    if out.is_dir() and not locked:  # another writer at work: say who, before anything
        lock.check_free(out, worker)
    meta = rd.read_meta(RUN_META_KEYS) if out.is_dir() else None
    if meta is None:
        if out.is_dir() and any(not _bookkeeping(p.name) for p in out.iterdir()):
            reason = "not a geomtoy results directory (non-empty, no meta.json); use another --out"
            raise SweepError(out, "meta.json", reason)
        if resume:
            raise SweepError(out, None, "--resume: no run to resume here")
        return Plan("fresh", None, overwrite)
    if overwrite:
        return Plan("fresh", meta, True)
    if meta["fingerprint"] != sweep.fingerprint():
        why = _first_difference(meta.get("spec", {}), sweep.spec)
        if meta.get("scale") != sweep.scale:
            why = f"scale {meta.get('scale')} there, {sweep.scale} here; {why}"
        reason = f"holds a different sweep ({why}); use another --out, or --overwrite to replace it"
        raise SweepError(out, "meta.json", reason)
    if meta["status"] == "complete":
        try:
            open_results(out)  # every table read and checked
        except SweepError as e:
            raise SweepError(e.file, e.key, f"{e.reason}; rerun with --overwrite") from None
        return Plan("complete", meta, False)
    return Plan("resume", meta, False)


def block_problem(rd: ResultsDir, block: Block, sweep: Sweep) -> str | None:
    """Why block file `block` cannot be used ("missing", "damaged: ...", "of another
    sweep"), or None if it is sound and holds this block of this sweep."""
    path = rd.block(block.index)
    if not path.exists():
        return "missing"
    try:
        z = integrity.read_npz(path, BLOCK_KEYS, checksum=True)
    except integrity.Damaged as e:
        return e.reason
    if str(z["fingerprint"]) != sweep.fingerprint():
        return f"of another sweep (fingerprint {z['fingerprint']})"
    ids = sweep.groups[block.group].instance[block.rows]
    if len(z["instance"]) != len(ids) or (z["instance"] != ids).any():
        return "holds other instances than its block"
    return None


class Writer:
    """One process writing a results directory: its locks, meta.json, the assembly.

    `with Writer(...) as w:` takes the run lock; `w.start(new_meta, run_record)` plans
    again under the meta lock and writes meta.json (None if the run is complete
    meanwhile); `w.update(...)` records progress; `w.finish(assemble)` assembles once.
    """

    def __init__(self, sweep: Sweep, out: Path, plan: Plan, *, worker=None, command=""):
        self.sweep, self.rd, self.plan = sweep, ResultsDir(Path(out)), plan
        self.worker, self.command = worker, command
        self.locks: list[lock.FileLock] = []
        self.created = not self.rd.path.exists()
        self.run_index: int | None = None

    def __enter__(self) -> Writer:
        self.locks = lock.run_lock(self.rd.path, worker=self.worker, command=self.command)
        return self

    def __exit__(self, *exc) -> None:
        lock.release_all(self.locks)
        if self.created and self.rd.path.is_dir() and not any(self.rd.path.iterdir()):
            self.rd.path.rmdir()  # refused after all: leave no empty directory behind

    def start(self, new_meta: Callable[[], dict], record: dict) -> dict | None:
        """Write meta.json (the new run, or this run added to the existing one)."""
        with lock.meta_lock(self.rd.path):
            for d in (self.rd.blocks, self.rd.path / ASIDE):  # never write through a link
                if d.exists() or d.is_symlink():
                    own_directory(d)
            plan = plan_run(
                self.sweep,
                self.rd.path,
                overwrite=self.plan.overwrite,
                worker=self.worker,
                locked=True,
            )
            if plan.action == "complete":  # finished meanwhile, or left by a kill at the end
                self._clean()
                if self.worker is None:
                    self.rd.remove_stale_temporaries()
                    shutil.rmtree(self.rd.path / ASIDE, ignore_errors=True)
                    for p in self.rd.path.glob(".geomtoy-worker-*.lock"):
                        with contextlib.suppress(SweepError, OSError):  # removed unless held
                            lock.FileLock(p).acquire().release()
                return None
            aside = self.rd.path / ASIDE
            if plan.overwrite:
                self._move_aside(aside, plan.meta)
            meta = new_meta() if plan.action == "fresh" else plan.meta
            meta["runs"] = [*meta["runs"], record]
            self.run_index = len(meta["runs"]) - 1
            meta["updated"] = now()
            atomic_write_json(self.rd.meta, meta)
            if aside.exists():
                shutil.rmtree(aside)
            own_directory(self.rd.blocks)
            if self.worker is None:  # alone here: temporaries left by a kill are stale
                self.rd.remove_stale_temporaries()
            return meta

    def _move_aside(self, aside: Path, old_meta: dict | None) -> None:
        """--overwrite: every file the old run wrote into `aside` (the tables, logs and
        its block files); anything else stays where it is."""
        own_directory(aside)
        for name in WRITTEN:
            p = self.rd.path / name
            if p.exists() or p.is_symlink():
                os.replace(p, aside / name)
        if old_meta is not None and self.rd.blocks.is_dir():
            for p in self.rd.blocks.iterdir():
                if TEMPORARY.fullmatch(p.name) or _written_for(p, old_meta["fingerprint"]):
                    os.replace(p, own_directory(aside / "blocks") / p.name)
            with contextlib.suppress(OSError):
                self.rd.blocks.rmdir()

    def update(self, wall_time_s: float, blocks_done: int) -> dict:
        """This run's wall time and the block count, into meta.json (read afresh)."""
        with lock.meta_lock(self.rd.path):
            return self._update(wall_time_s, blocks_done)

    def _update(self, wall_time_s: float, blocks_done: int, status: str | None = None) -> dict:
        meta = self.rd.read_meta(RUN_META_KEYS)
        meta["runs"][self.run_index]["wall_time_s"] = round(wall_time_s, 3)
        meta["wall_time_s"] = round(sum(r.get("wall_time_s", 0.0) for r in meta["runs"]), 3)
        meta |= {"updated": now(), "blocks_done": blocks_done}
        if status:
            meta["status"] = status
        atomic_write_json(self.rd.meta, meta)
        return meta

    def finish(self, wall_time_s: float, assemble: Callable[[], None], blocks) -> bool:
        """Assemble the tables if every block is done and no one has yet; True if the
        directory is complete."""
        with lock.meta_lock(self.rd.path):
            if self.rd.read_meta()["status"] == "complete":
                return True
            done = [b for b in blocks if block_problem(self.rd, b, self.sweep) is None]
            if len(done) < len(blocks):
                self._update(wall_time_s, len(done))
                return False
            assemble()
            self._update(wall_time_s, len(done), "complete")
            self._clean()
            return True

    def _clean(self) -> None:
        """Remove what the run wrote in blocks/ once it is complete: its block files and
        checkpoints (exact names, this sweep's fingerprint) and temporaries; anything
        else found there is kept, and blocks/ with it."""
        if self.rd.blocks.is_symlink() or not self.rd.blocks.is_dir():
            return
        fingerprint = self.sweep.fingerprint()
        for p in self.rd.blocks.iterdir():
            if TEMPORARY.fullmatch(p.name) or _written_for(p, fingerprint):
                with contextlib.suppress(FileNotFoundError):
                    p.unlink()
        with contextlib.suppress(OSError):
            self.rd.blocks.rmdir()


def _written_for(path: Path, fingerprint: str) -> bool:
    """Whether `path` is a block file or checkpoint a run of the sweep `fingerprint`
    wrote: its exact name, a regular file, and the fingerprint it holds."""
    if not BLOCK_FILE.fullmatch(path.name) or path.is_symlink() or not path.is_file():
        return False
    try:
        z = integrity.read_npz(path, ("fingerprint",), members=("fingerprint",))
    except integrity.Damaged:
        return False
    return str(z["fingerprint"]) == fingerprint


def merge(path: Path, rebuild: Callable[[dict], Sweep], assemble) -> None:
    """Assemble the tables of a run whose block files are all in `path`/blocks (written
    by the tasks of a job array or the processes of a multi-host run). A complete
    directory is checked and left as it is. Nothing is deleted but the block files used,
    once the tables are written; each block that cannot be used is named, with why."""
    rd = ResultsDir(Path(path))
    meta = rd.read_meta(RUN_META_KEYS)
    if meta is None:
        raise SweepError(rd.path, "meta.json", "not a geomtoy results directory")
    if meta["status"] == "complete":
        open_results(rd.path)
        return
    sweep = rebuild(meta)
    held = lock.run_lock(rd.path, command="geomtoy merge")
    try:
        w = Writer(sweep, rd.path, Plan("resume", meta, False))
        blocks = sweep.blocks()
        problems = [(b, block_problem(rd, b, sweep)) for b in blocks]
        problems = [(b, why) for b, why in problems if why is not None]
        if problems:
            named = "; ".join(f"{rd.block(b.index).name} {why}" for b, why in problems[:4])
            more = f"; and {len(problems) - 4} more" if len(problems) > 4 else ""
            reason = (
                f"{len(problems)} of {len(blocks)} blocks cannot be used ({named}{more}); "
                "nothing was deleted: run the tasks that own them again"
            )
            raise SweepError(rd.blocks, None, reason)
        with lock.meta_lock(rd.path):
            assemble(sweep, rd)
            meta = rd.read_meta()
            meta |= {"status": "complete", "updated": now(), "blocks_done": len(blocks)}
            atomic_write_json(rd.meta, meta)
            w._clean()
    finally:
        lock.release_all(held)
