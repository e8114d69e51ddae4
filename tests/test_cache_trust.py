"""The compile cache is data, not code from anyone (geomtoy/engine/compile_cache.py): the attacks
of a red-team review, each reproduced. A planted pickle runs nothing, a damaged entry or
one copied under another entry's name is a miss and is replaced, a store for another CPU
is never read, a directory others can write is ignored with one line, a FIFO or a link
never blocks or is followed, and a cache inside --out does not spoil that --out."""

import hashlib
import json
import os
import pickle
import subprocess
import sys
import threading
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pyarrow.parquet as pq
import pytest

from geomtoy import cli
from geomtoy.engine import compile_cache

ROOT = Path(__file__).resolve().parents[1]
SWEEP = """
name = "trust"
[model]
n_features = 5
n_hidden = 2
[data]
feature_probability = 0.1
[train]
steps = 10
chunk_steps = 10
batch_size = 64
eval_samples = 1024
seeds = 2
"""
TABLES = ("instances", "features")


@pytest.fixture
def base(tmp_path):
    """A cache directory of the test's own; the session's cache again afterwards."""
    yield tmp_path / "cache"
    compile_cache.enable()


def _compile(n: int) -> np.ndarray:
    """A program of its own shape, compiled (or loaded from the persistent cache)."""
    jax.clear_caches()
    x = np.linspace(-1, 1, n, dtype=np.float32)
    return np.asarray(jax.jit(lambda v: jnp.tanh(v * 1.5) + 1.0)(x))


def _entries(store: Path) -> list[Path]:
    return sorted(p for p in store.iterdir() if p.name.endswith("-cache"))


def _manifest(store: Path) -> dict:
    return json.loads((store / compile_cache.MANIFEST).read_text())["entries"]


def _filled(base: Path, *sizes: int) -> Path:
    """A store holding one published entry per size, closed again (as after a run)."""
    store = compile_cache.enable(base)
    for n in sizes:
        _compile(n)
    assert compile_cache.publish() == len(sizes)
    compile_cache.close()
    return store


def _reopen(base: Path, capsys) -> tuple[Path, list[str]]:
    capsys.readouterr()
    store = compile_cache.enable(base)
    return store, capsys.readouterr().err.splitlines()


def test_flipped_bits_are_a_miss_and_are_replaced(base, capsys):
    store = _filled(base, 7)
    expected = _compile(7)
    (entry,) = _entries(store)
    data = bytearray(entry.read_bytes())
    data[len(data) // 2] ^= 0x10
    entry.write_bytes(bytes(data))
    err = _reopen(base, capsys)[1]
    assert len(err) == 1 and err[0].startswith(f"geomtoy: warning: compile cache {store}: 1 ")
    assert entry.name[:30] in err[0] and err[0].endswith("removed unread, compiled again")
    assert not entry.exists()
    np.testing.assert_array_equal(_compile(7), expected)
    assert compile_cache.publish() == 1  # compiled afresh, stored again
    assert hashlib.sha256(entry.read_bytes()).hexdigest() == _manifest(store)[entry.name]["sha256"]


def test_an_entry_copied_under_another_name_is_a_miss(base, capsys):
    store = _filled(base, 5, 6)
    a, b = _entries(store)
    b.write_bytes(a.read_bytes())
    store, err = _reopen(base, capsys)
    assert len(err) == 1 and b.name[:30] in err[0]
    assert _entries(store) == [a]
    proc = Path(jax.config.jax_compilation_cache_dir)
    assert sorted(p.name for p in proc.iterdir()) == [a.name]  # JAX sees only checked ones


class _Payload:
    """Unpickling it would create a directory: the proof that code ran."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.mkdir, (str(self.marker),))


def _cli(tmp_path: Path, out: str, *cache_args: str) -> int:
    sweep = tmp_path / "trust.toml"
    sweep.write_text(SWEEP)
    argv = ["run", str(sweep), "--out", str(tmp_path / out), "--overwrite", "-q", *cache_args]
    return cli.main(argv)


def _tables(out: Path) -> dict:
    return {t: pq.read_table(out / f"{t}.parquet") for t in TABLES}


def test_a_planted_pickle_runs_nothing(base, tmp_path, capsys):
    marker = tmp_path / "pwned"
    payload = pickle.dumps(_Payload(marker))
    store = base / compile_cache.machine_tag()
    store.mkdir(parents=True, mode=0o700)
    planted = store / f"jit__train_chunk-{'0' * 64}-cache"
    planted.write_bytes(payload)
    (base / "geomtoy-executables").mkdir()  # where an older geomtoy kept its pickles
    (base / "geomtoy-executables" / ("ab" * 32)).write_bytes(payload)
    assert _cli(tmp_path, "clean", "--no-compile-cache") == 0
    assert _cli(tmp_path, "cached", "--compile-cache", str(base)) == 0
    assert not marker.exists() and not planted.exists()
    assert _tables(tmp_path / "cached") == _tables(tmp_path / "clean")
    (store / compile_cache.MANIFEST).write_bytes(payload)  # the manifest is JSON, read as data
    assert _cli(tmp_path, "cached", "--compile-cache", str(base)) == 0
    assert not marker.exists()
    assert _tables(tmp_path / "cached") == _tables(tmp_path / "clean")


def test_a_store_for_another_cpu_is_never_read(base, capsys, monkeypatch):
    real = compile_cache.machine_tag()
    forged = ("x86_64", "Forged CPU @ 9 GHz", "avx512f forged_flag sse2")
    with monkeypatch.context() as m:
        m.setattr(compile_cache, "cpu_identity", lambda: forged)
        assert compile_cache.machine_tag() != real
        other = _filled(base, 9)
    store, err = _reopen(base, capsys)
    assert store.name == real and other.name != real and not err
    assert Path(jax.config.jax_compilation_cache_dir).parent == store
    assert not any(Path(jax.config.jax_compilation_cache_dir).iterdir())
    _compile(9)
    assert compile_cache.publish() == 1  # compiled again: the other CPU's entry was not read
    assert len(_entries(other)) == 1  # and left alone


def test_the_store_name_follows_cpu_model_flags_and_versions(monkeypatch):
    tags = set()
    for identity in [
        ("x86_64", "A", "sse2"),
        ("x86_64", "A", "avx2 sse2"),
        ("x86_64", "B", "sse2"),
    ]:
        monkeypatch.setattr(compile_cache, "cpu_identity", lambda i=identity: i)
        tags.add(compile_cache.machine_tag())
    monkeypatch.setattr(compile_cache.jaxlib, "__version__", "0.0.0")
    tags.add(compile_cache.machine_tag())
    assert len(tags) == 4


@pytest.mark.parametrize("how", ["mode 0777", "store mode 0777", "another owner"])
def test_a_directory_others_can_write_is_ignored_with_one_line(base, capsys, monkeypatch, how):
    base.mkdir(mode=0o700)
    if how == "mode 0777":
        os.chmod(base, 0o777)
    elif how == "store mode 0777":
        (base / compile_cache.machine_tag()).mkdir()
        os.chmod(base / compile_cache.machine_tag(), 0o777)
    elif os.geteuid() == 0:
        os.chown(base, 65534, 65534)
    else:
        monkeypatch.setattr(compile_cache.os, "geteuid", lambda: os.getuid() + 1)
    store, err = _reopen(base, capsys)
    assert store is None and len(err) == 1, err
    assert "not used" in err[0] and str(base) in err[0]
    assert not jax.config.jax_enable_compilation_cache


def test_a_world_writable_cache_warns_and_the_run_goes_on(base, tmp_path, capsys):
    base.mkdir(mode=0o700)
    os.chmod(base, 0o777)
    capsys.readouterr()
    assert _cli(tmp_path, "out", "--compile-cache", str(base)) == 0
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and "writable by other users" in err[0], err
    assert list(base.iterdir()) == []  # nothing written into it


def test_fifos_and_links_are_never_opened(base, capsys):
    store = _filled(base, 11)
    (entry,) = _entries(store)
    manifest = json.loads((store / compile_cache.MANIFEST).read_text())
    fifo, link = store / f"jit__f-{'1' * 64}-cache", store / f"jit__l-{'2' * 64}-cache"
    os.mkfifo(fifo)
    link.symlink_to(entry)
    empty = {"size": 0, "sha256": hashlib.sha256(b"").hexdigest()}
    manifest["entries"] |= {fifo.name: empty, link.name: manifest["entries"][entry.name]}
    (store / compile_cache.MANIFEST).write_text(json.dumps(manifest))
    done = threading.Thread(target=_reopen, args=(base, capsys), daemon=True)
    done.start()
    done.join(timeout=30)
    assert not done.is_alive(), "enable blocked on a FIFO"
    assert _entries(store) == [entry] and not os.path.lexists(link)
    compile_cache.close()
    os.unlink(store / compile_cache.MANIFEST)
    os.mkfifo(store / compile_cache.MANIFEST)  # the manifest itself a FIFO: all misses
    done = threading.Thread(target=compile_cache.enable, args=(base,), daemon=True)
    done.start()
    done.join(timeout=30)
    assert not done.is_alive(), "enable blocked on a FIFO manifest"
    assert _entries(store) == [] and (store / compile_cache.MANIFEST).is_file()


def test_a_killed_runs_leftovers_are_removed_silently(base, capsys):
    store = _filled(base, 12)
    (store / f"{compile_cache.TMP}4242-jit__x-cache").write_bytes(b"half")
    dead = store / f"{compile_cache.PROC}4242-deadbeef"
    dead.mkdir()
    (dead / f"jit__y-{'3' * 64}-cache").write_bytes(b"unverified")
    (store / f"{dead.name}.lock").touch()
    store, err = _reopen(base, capsys)
    assert not err
    names = {p.name for p in store.iterdir()}
    assert not {n for n in names if n.startswith(compile_cache.TMP)}
    assert dead.name not in names and f"{dead.name}.lock" not in names
    assert len(_entries(store)) == 1


def test_a_full_or_read_only_cache_warns_once(base, capsys, monkeypatch):
    with monkeypatch.context() as m:
        m.setattr(compile_cache, "MIN_FREE_BYTES", 1 << 62)
        store, err = _reopen(base, capsys)
    assert store is None and len(err) == 1 and "the disk is full" in err[0]
    store = compile_cache.enable(base / "other")

    def full(*args):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(compile_cache, "_write_manifest", full)
    for n in (13, 14):  # two runs' worth of new programs, one line
        _compile(n)
        assert compile_cache.publish() == 0
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and "No space left on device" in err[0], err


def test_a_cache_inside_a_fresh_out_is_refused_and_spoils_nothing(base, tmp_path, capsys):
    out = tmp_path / "out"
    assert _cli(tmp_path, "out", "--compile-cache", str(out / "cache")) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and "inside --out" in err[0], err
    assert not out.exists()
    assert _cli(tmp_path, "out", "--compile-cache", str(base)) == 0  # the same --out, usable


@pytest.mark.slow  # two whole processes
def test_a_damaged_cache_gives_the_same_tables_in_a_new_process(tmp_path):
    sweep, base = tmp_path / "trust.toml", tmp_path / "cache"
    sweep.write_text(SWEEP)
    env = dict(os.environ, JAX_PLATFORMS="cpu", PYTHONPATH=str(ROOT))
    runs = []
    for name in ("cold", "damaged"):
        argv = [
            "run",
            str(sweep),
            "--out",
            str(tmp_path / name),
            "-q",
            "--compile-cache",
            str(base),
        ]
        cmd = [sys.executable, "-m", "geomtoy", *argv]
        runs.append(subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300))
        for entry in _entries(base / compile_cache.machine_tag()):
            entry.write_bytes(entry.read_bytes()[::-1])  # every entry damaged
    assert [r.returncode for r in runs] == [0, 0], runs[-1].stderr
    assert "removed unread" in runs[1].stderr and len(runs[1].stderr.splitlines()) == 1
    assert _tables(tmp_path / "damaged") == _tables(tmp_path / "cold")


@pytest.mark.slow  # three whole processes at once
def test_processes_sharing_one_cache_at_once_warn_nothing(tmp_path):
    sweep, base = tmp_path / "trust.toml", tmp_path / "cache"
    sweep.write_text(SWEEP)
    env = dict(os.environ, JAX_PLATFORMS="cpu", PYTHONPATH=str(ROOT))
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "geomtoy",
                "run",
                str(sweep),
                "--out",
                str(tmp_path / f"o{i}"),
                "-q",
                "--compile-cache",
                str(base),
            ],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )  # fmt: skip
        for i in range(3)
    ]
    errs = [p.communicate(timeout=600)[1] for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0] and not any(errs), errs
    store = base / compile_cache.machine_tag()
    assert sorted(_manifest(store)) == [p.name for p in _entries(store)]
    assert not [p for p in store.iterdir() if p.name.startswith((compile_cache.PROC, "."))]
    assert _tables(tmp_path / "o1") == _tables(tmp_path / "o0")
