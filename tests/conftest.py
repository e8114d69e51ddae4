"""Test setup: 4 fake CPU devices and strict rank promotion, set before JAX starts."""

import os

os.environ.setdefault("JAX_PLATFORMS", "cpu")
os.environ.setdefault("JAX_NUM_CPU_DEVICES", "4")
os.environ.setdefault("GEOMTOY_COMPILE_CACHE", "off")  # tests leave ~/.cache alone

import jax  # noqa: E402
import pytest  # noqa: E402

jax.config.update("jax_num_cpu_devices", int(os.environ["JAX_NUM_CPU_DEVICES"]))
jax.config.update("jax_numpy_rank_promotion", "raise")
# Start the backend now: `geomtoy run` (called in-process by the CLI tests) sets one CPU
# device per core when the backend has not started yet; tests keep their 4 devices.
assert len(jax.devices()) == int(os.environ["JAX_NUM_CPU_DEVICES"])


@pytest.fixture
def key():
    return jax.random.key(0)


SWEEP_FILES = sorted(
    (__import__("pathlib").Path(__file__).resolve().parents[1] / "sweeps").glob("*.toml"),
    key=lambda p: ("\n[sae]" in "\n" + p.read_text(), p.name),  # SAE sweeps after their toys
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


def pytest_collection_modifyitems(config, items):
    """Under pytest-xdist, every test that reads the smoke results runs on one worker, so
    the session fixture trains the smoke sweeps once while other workers run the rest."""
    for item in items:
        if "smoke_results" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.xdist_group("smoke"))
