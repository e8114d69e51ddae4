"""Test setup: 4 fake CPU devices and strict rank promotion, set before JAX starts."""

import os

os.environ.setdefault("JAX_PLATFORMS", "cpu")
os.environ.setdefault("JAX_NUM_CPU_DEVICES", "4")
if "GEOMTOY_COMPILE_CACHE" not in os.environ:
    # One persistent compilation cache per test session, in a temporary directory (tests
    # leave ~/.cache alone): set before pytest-xdist starts its workers, so they and the
    # `geomtoy` subprocesses the tests start share it and compile each program once.
    import atexit
    import shutil
    import tempfile

    _cache = tempfile.mkdtemp(prefix="geomtoy-test-jax-cache-")
    os.environ["GEOMTOY_COMPILE_CACHE"] = _cache
    atexit.register(shutil.rmtree, _cache, ignore_errors=True)

import jax  # noqa: E402
import pytest  # noqa: E402

from geomtoy.engine import compile_cache  # noqa: E402
from geomtoy.sweep.grammar import is_sae_sweep  # noqa: E402

jax.config.update("jax_num_cpu_devices", int(os.environ["JAX_NUM_CPU_DEVICES"]))
jax.config.update("jax_numpy_rank_promotion", "raise")
# Start the backend now: `geomtoy run` (called in-process by the CLI tests) sets one CPU
# device per core when the backend has not started yet; tests keep their 4 devices.
assert len(jax.devices()) == int(os.environ["JAX_NUM_CPU_DEVICES"])
compile_cache.enable()


@pytest.fixture
def key():
    return jax.random.key(0)


SWEEP_FILES = sorted(
    (__import__("pathlib").Path(__file__).resolve().parents[1] / "sweeps").glob("*.toml"),
    key=lambda p: (is_sae_sweep(p), p.name),  # SAE sweeps after the toy sweeps they read
)


@pytest.fixture(scope="session")
def smoke_results(tmp_path_factory):
    """Every sweep file run once at smoke scale through the CLI, shared by the sweep and
    figure tests: (results root, {sweep name: exit code})."""
    from geomtoy import cli

    root = tmp_path_factory.mktemp("smoke_results")
    codes = {}
    for path in SWEEP_FILES:
        argv = ["run", str(path), "--scale", "smoke", "--out", str(root / path.stem), "--quiet"]
        codes[path.stem] = cli.main(argv)
    return root, codes


@pytest.hookimpl(tryfirst=True)  # before pytest-xdist reads the groups
def pytest_collection_modifyitems(config, items):
    """Under pytest-xdist (`make test`), a worker takes whole test files, so module-scoped
    fixtures are built once; every test that reads the smoke results runs on one worker,
    so the session fixture trains the smoke sweeps once."""
    for item in items:
        uses_smoke = "smoke_results" in getattr(item, "fixturenames", ())
        group = "smoke" if uses_smoke else item.nodeid.split("::")[0]
        item.add_marker(pytest.mark.xdist_group(group))
