"""Start-up: a run compiles one program per job (init, training chunk, evaluation, and
the geometry analysis' passes), and with the persistent cache a second identical run
compiles none of them (each is a hit of JAX's persistent cache, checked by geomtoy
first). Compilations are counted with JAX's monitoring events in a child process (a fresh
process is what a second `geomtoy run` is); the tests may name JAX's events, the library
does not. The cache's checks against damaged or planted entries: tests/test_cache_trust.py."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from geomtoy.engine import compile_cache

ROOT = Path(__file__).resolve().parents[1]

SWEEP = """
name = "compile"
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

CHILD = """
import collections, json, sys
from jax import monitoring
from geomtoy import cli
events, names, traced = collections.Counter(), [], []
def duration(event, seconds, fun_name=None, **kw):
    events.update([event])
    name = str(fun_name).removeprefix("jit(").removesuffix(")")
    if event == "/jax/core/compile/backend_compile_duration":
        names.append(name)
    if event == "/jax/core/compile/jaxpr_trace_duration":
        traced.append(name)
monitoring.register_event_listener(lambda e, **k: events.update([e]))
monitoring.register_event_duration_secs_listener(duration)
code = cli.main(sys.argv[1:])
print(json.dumps({"code": code, "names": names, "traced": traced, **events}))
"""

COMPILE = "/jax/core/compile/backend_compile_duration"  # a compile or a cache load
ENGINE = ("_init_instances", "_train_chunk", "_evaluate")
STAGING = {"stage", "_multi_slice", "convert_element_type", "concatenate", "copy"}
"""Programs a run compiled before for copies and conversions (12 programs then)."""
HITS = "/jax/compilation_cache/cache_hits"
MISSES = "/jax/compilation_cache/cache_misses"
TABLES = ("instances", "features")


def _run(tmp_path: Path, cache_args: list[str], env_cache: str | None = None) -> dict:
    sweep = tmp_path / "compile.toml"
    sweep.write_text(SWEEP)
    env = {
        k: v for k, v in os.environ.items() if k not in (compile_cache.ENV, compile_cache.JAX_ENV)
    }
    env |= {"JAX_PLATFORMS": "cpu", "JAX_NUM_CPU_DEVICES": "2"}
    if env_cache is not None:
        env["GEOMTOY_COMPILE_CACHE"] = env_cache
    argv = ["run", str(sweep), "--out", str(tmp_path / "out"), "--overwrite", "-q", *cache_args]
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, *argv], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr
    counts = json.loads(proc.stdout.strip().splitlines()[-1])
    assert counts["code"] == 0
    return counts


@pytest.mark.slow  # over the fast suite's time budget: make test-all
def test_second_identical_run_compiles_nothing(tmp_path):
    cache = tmp_path / "cache"
    cold = _run(tmp_path, ["--compile-cache", str(cache)])
    tables = {t: pq.read_table(tmp_path / "out" / f"{t}.parquet") for t in TABLES}
    # one program each for init, training chunk and evaluation; the rest is the geometry
    # analysis (its jitted passes): no staging copies or conversions
    names = cold["names"]
    engine = [n for n in names if n in ENGINE]
    assert sorted(engine) == sorted(ENGINE), names
    analysis = [n for n in names if n not in ENGINE]
    assert 1 <= len(analysis) <= 2 and not set(analysis) & STAGING, names
    assert cold.get(HITS, 0) == 0, cold
    (store,) = [p for p in cache.iterdir() if p.is_dir()]  # one store: this CPU, this jax
    stored = [p for p in store.iterdir() if p.name.endswith("-cache")]
    assert len(stored) == len(names), (stored, names)
    manifest = json.loads((store / compile_cache.MANIFEST).read_text())["entries"]
    assert sorted(manifest) == sorted(p.name for p in stored)
    assert not [p for p in store.iterdir() if p.name.startswith(compile_cache.PROC)]
    warm = _run(tmp_path, [], env_cache=str(cache))  # the same cache, named by the env var
    assert warm.get(HITS, 0) == len(names) and warm.get(MISSES, 0) == 0, warm  # all loaded
    for t in TABLES:  # the same results
        assert pq.read_table(tmp_path / "out" / f"{t}.parquet").equals(tables[t]), t


def test_cache_directory_resolution(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.delenv(compile_cache.ENV, raising=False)
    monkeypatch.delenv(compile_cache.JAX_ENV, raising=False)
    assert compile_cache.resolve() == tmp_path / "geomtoy" / "jax"
    assert compile_cache.resolve("/x/y") == Path("/x/y")
    assert compile_cache.resolve(enabled=False) is None
    monkeypatch.setenv(compile_cache.ENV, "off")
    assert compile_cache.resolve() is None
    monkeypatch.setenv(compile_cache.JAX_ENV, str(tmp_path / "j"))
    assert compile_cache.resolve() is None  # GEOMTOY_COMPILE_CACHE first
    monkeypatch.setenv(compile_cache.ENV, str(tmp_path / "c"))
    assert compile_cache.resolve() == tmp_path / "c"
    monkeypatch.delenv(compile_cache.ENV)
    assert compile_cache.resolve() == tmp_path / "j"  # then JAX's own variable
