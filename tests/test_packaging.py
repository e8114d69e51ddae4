"""Packaging: declared floors, the version, and a Makefile that lets JAX pick the backend."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from geomtoy import __version__, cli

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
import lowest_requirements  # noqa: E402


def test_every_dependency_has_a_floor_and_no_cap():
    pins = lowest_requirements.pins(ROOT / "pyproject.toml")
    names = [p.split("==")[0] for p in pins]
    assert {"jax", "jaxlib", "numpy", "optax", "pyarrow", "matplotlib"} <= set(names)
    floors = dict(p.split("==") for p in pins)
    assert floors["jax"] == floors["jaxlib"]
    assert tuple(int(x) for x in floors["jax"].split(".")) >= (0, 8, 1)  # 0.8.0 fails on import
    assert int(floors["numpy"].split(".")[0]) >= 2  # jax 0.8.1 needs numpy 2


def test_version(capsys):
    with pytest.raises(SystemExit) as exit_:
        cli.main(["--version"])
    assert exit_.value.code == 0
    assert capsys.readouterr().out.strip() == f"geomtoy {__version__}"


def _platform_seen_by_make(tmp_path: Path, environ: dict) -> str:
    """Run a make target through a fake venv whose `python` records JAX_PLATFORMS; the
    venv holds a (fake) CUDA plugin, as on a GPU host."""
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True, exist_ok=True)
    plugin = venv / "lib" / "python3" / "site-packages" / "jax_cuda12_plugin"
    plugin.mkdir(parents=True, exist_ok=True)
    (plugin / "__init__.py").write_text("")
    seen = tmp_path / "seen"
    python = venv / "bin" / "python"
    python.write_text(f'#!/bin/sh\necho "${{JAX_PLATFORMS-<unset>}}" > {seen}\n')
    python.chmod(0o755)
    subprocess.run(
        ["make", "-s", "-C", str(ROOT), "tpu-command", f"VENV={venv}"],
        env=environ,
        check=True,
        capture_output=True,
    )
    return seen.read_text().strip()


def test_makefile_leaves_the_platform_to_jax(tmp_path):
    environ = {k: v for k, v in os.environ.items() if k not in ("JAX_PLATFORMS", "MAKEFLAGS")}
    assert _platform_seen_by_make(tmp_path, environ) == "<unset>"
    assert _platform_seen_by_make(tmp_path, {**environ, "JAX_PLATFORMS": "cuda"}) == "cuda"
