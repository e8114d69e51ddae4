"""Start-up: a run compiles one program per job (init, training chunk, evaluation, and
the geometry analysis' passes), and with the persistent cache a second identical run
traces and compiles none of them. Compilations and traces are counted with JAX's
monitoring events in a child process (a fresh process is what a second `geomtoy run` is).
In-process tests check the whole-executable layer's keys and its failure paths."""

import json
import os
import subprocess
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
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
TABLES = ("instances", "features")


def _run(tmp_path: Path, cache_args: list[str], env_cache: str | None = None) -> dict:
    sweep = tmp_path / "compile.toml"
    sweep.write_text(SWEEP)
    env = {k: v for k, v in os.environ.items() if k != "GEOMTOY_COMPILE_CACHE"}
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
    stored = list((cache / compile_cache.EXECUTABLES).iterdir())
    assert len(stored) == len(names), (stored, names)
    warm = _run(tmp_path, [], env_cache=str(cache))  # the same cache, named by the env var
    assert warm.get(COMPILE, 0) == 0, warm  # nothing compiled or loaded by JAX
    assert not set(warm["traced"]) & set(names), warm["traced"]  # nor traced
    for t in TABLES:  # the same results
        assert pq.read_table(tmp_path / "out" / f"{t}.parquet").equals(tables[t]), t


def test_cache_directory_resolution(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.delenv(compile_cache.ENV, raising=False)
    assert compile_cache.resolve() == tmp_path / "geomtoy" / "jax"
    assert compile_cache.resolve("/x/y") == Path("/x/y")
    assert compile_cache.resolve(enabled=False) is None
    monkeypatch.setenv(compile_cache.ENV, "off")
    assert compile_cache.resolve() is None
    monkeypatch.setenv(compile_cache.ENV, str(tmp_path / "c"))
    assert compile_cache.resolve() == tmp_path / "c"


# The whole-executable layer, in process -------------------------------------------------


@compile_cache.program(static_argnums=(1,))
def _affine(x, scale: float):
    return jnp.tanh(x * scale) + 1.0


def _expected(x, scale):
    return np.tanh(np.asarray(x, np.float32) * scale) + 1.0


@pytest.fixture
def store(tmp_path, monkeypatch):
    """An executables directory of its own, with an empty in-process table."""
    monkeypatch.setattr(compile_cache, "_loaded", {})
    with compile_cache.executables(tmp_path):
        yield tmp_path / compile_cache.EXECUTABLES


def _call_fresh(*args):
    """Call _affine; skip when JAX's own persistent cache served the compile (a cache
    directory kept from an earlier session): such an executable is never stored."""
    hits = compile_cache._events()[compile_cache._HIT]
    out = _affine(*args)
    if compile_cache._events()[compile_cache._HIT] != hits:
        pytest.skip("JAX's persistent cache loaded this program; nothing was stored")
    return out


def test_a_stored_executable_serves_a_fresh_process_table(store, monkeypatch):
    x = np.linspace(-1, 1, 8, dtype=np.float32) + 0.123  # shapes unique to this test
    first = _call_fresh(x, 0.75)
    assert len(list(store.iterdir())) == 1
    np.testing.assert_allclose(first, _expected(x, 0.75), rtol=1e-6)
    monkeypatch.setattr(compile_cache, "_loaded", {})  # as a new process would start
    monkeypatch.setattr(_affine, "jitted", None)  # a hit must neither trace nor lower
    again = _affine(x, 0.75)
    np.testing.assert_array_equal(again, first)


def test_keys_differ_by_static_value_shape_dtype_and_placement():
    x = np.zeros(4, np.float32)
    devices = jax.devices()
    on_0, on_1 = (jax.device_put(x, d) for d in devices[:2])
    keys = {
        _affine._key((x, 1.0)),
        _affine._key((x, 2.0)),
        _affine._key((np.zeros(5, np.float32), 1.0)),
        _affine._key((np.zeros(4, np.float64), 1.0)),
        _affine._key((on_0, 1.0)),
        _affine._key((on_1, 1.0)),
    }
    assert len(keys) == 6
    assert _affine._key((x, 1.0)) == _affine._key((np.ones(4, np.float32), 1.0))  # values


def test_a_damaged_entry_is_a_miss_and_is_replaced(store):
    x = np.arange(6, dtype=np.float32) / 7
    key = _affine._key((x, 0.5))
    store.mkdir(parents=True, exist_ok=True)
    (store / key).write_bytes(b"not an executable")
    np.testing.assert_allclose(_call_fresh(x, 0.5), _expected(x, 0.5), rtol=1e-6)
    assert (store / key).read_bytes() != b"not an executable"
    compile_cache._loaded.clear()
    np.testing.assert_allclose(_affine(x, 0.5), _expected(x, 0.5), rtol=1e-6)  # loads it


def test_calls_under_a_transformation_and_identities_use_plain_jit(store):
    x = np.ones((3, 2), np.float32)
    batched = jax.vmap(lambda row: _affine(row, 2.0))(x)  # tracer arguments
    np.testing.assert_allclose(batched, _expected(x, 2.0), rtol=1e-6)
    with pytest.raises(compile_cache._Unkeyable):
        compile_cache._static(object())  # shown by identity: never the same key again
    assert not store.exists() or not any(store.iterdir())


def test_outside_the_context_nothing_is_stored(tmp_path):
    x = np.full(3, 0.25, np.float32)
    np.testing.assert_allclose(_affine(x, 3.0), _expected(x, 3.0), rtol=1e-6)
    assert compile_cache._directory is None
    assert not (tmp_path / compile_cache.EXECUTABLES).exists()


def test_source_fingerprint_follows_every_file(tmp_path):
    (tmp_path / "a.py").write_text("x = 1\n")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "b.py").write_text("y = 2\n")
    before = compile_cache.source_digest(tmp_path)
    (tmp_path / "sub" / "b.py").write_text("y = 3\n")
    assert compile_cache.source_digest(tmp_path) != before


def test_key_follows_program_options_not_logging():
    x = np.zeros(4, np.float32)
    key = _affine._key((x, 1.0))
    with jax.log_compiles(True):
        assert _affine._key((x, 1.0)) == key  # logging changes no program
    with jax.debug_nans(True):
        assert _affine._key((x, 1.0)) != key  # NaN checks are compiled in
    with jax.numpy_rank_promotion("allow"):
        assert _affine._key((x, 1.0)) != key  # a trace-time option


def test_an_executable_jax_already_holds_is_not_stored(store):
    """JAX's in-memory cache returns the executable of an earlier plain jit call, which
    may have come from JAX's persistent cache and could not be serialized whole: only
    a compilation made by the call itself is stored."""
    x = np.linspace(0, 1, 9, dtype=np.float32)
    expected = np.asarray(_affine.jitted(x, 1.5))  # compiled (or loaded) outside
    np.testing.assert_allclose(_affine(x, 1.5), expected, rtol=1e-6)
    assert not (store / _affine._key((x, 1.5))).exists()
