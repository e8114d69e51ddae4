"""The built wheel is a working geomtoy: it carries the paper's sweeps and the explorer
assets, and installed into a clean venv it runs a bundled sweep by name outside any
checkout (the slow test); `geomtoy run NAME` and `geomtoy sweeps` in a checkout (fast)."""

import os
import subprocess
import sys
import sysconfig
import tomllib
import zipfile
from pathlib import Path

import pytest

from geomtoy import cli, zoo
from geomtoy.sweep import bundled
from geomtoy.viz import explore

ROOT = Path(__file__).resolve().parents[1]
SWEEPS = sorted(p.name for p in (ROOT / "sweeps").glob("*.toml"))


def _build(out: Path, *kinds: str) -> None:
    pytest.importorskip("build")
    subprocess.run(
        [sys.executable, "-m", "build", "--no-isolation", *kinds, "--outdir", str(out), str(ROOT)],
        check=True,
        capture_output=True,
    )


def test_bundled_names_cover_the_sweeps_and_resolve(capsys):
    assert bundled.names() == [s.removesuffix(".toml") for s in SWEEPS]
    assert bundled.resolve("pentagon") == bundled.directory() / "pentagon.toml"
    assert bundled.resolve("pentagon.toml").name == "pentagon.toml"
    assert bundled.resolve("no_such_sweep") == Path("no_such_sweep")  # loader reports it
    assert cli.main(["sweeps"]) == 0
    out = capsys.readouterr().out
    for line in ("pentagon ", "phase_2x1 "):
        assert any(row.startswith(line) and "Figure" in row for row in out.splitlines())


def test_unknown_sweep_name_is_one_line_and_exit_2(capsys, tmp_path):
    assert cli.main(["run", "no_such_sweep", "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no_such_sweep" in err[0]
    assert not (tmp_path / "o").exists()


def test_wheel_carries_sweeps_assets_and_license(tmp_path):
    _build(tmp_path, "--wheel")
    (wheel,) = tmp_path.glob("geomtoy-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert {f"geomtoy/sweeps/{s}" for s in SWEEPS} <= set(names)
    assert all(any(n.endswith(f"viz/assets/{f}") for n in names) for f in explore.JS_FILES)
    zoo_files = [zoo.MANIFEST, *zoo.manifest()["files"]]
    assert {f"geomtoy/zoo/data/{f}" for f in zoo_files} <= set(names)
    assert any(n.endswith("licenses/LICENSE") for n in names)
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"].get("version")
    assert version is None  # dynamic: geomtoy.__version__ is the one place


@pytest.mark.slow
def test_installed_wheel_runs_a_bundled_sweep_outside_a_checkout(tmp_path):
    """Wheel and sdist build; the wheel installs (no deps: they come from this venv's
    site-packages) into a fresh venv; in an empty folder `geomtoy run pentagon --scale
    smoke` and `geomtoy explore` work."""
    dist = tmp_path / "dist"
    _build(dist, "--wheel", "--sdist")
    (wheel,) = dist.glob("geomtoy-*.whl")
    (sdist,) = dist.glob("geomtoy-*.tar.gz")
    assert sdist.stat().st_size > 0
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    py = venv / "bin" / "python"
    site = subprocess.run(
        [py, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    # the dependencies, from this venv (a .pth path: its own .pth files, e.g. an editable
    # geomtoy, are not processed there)
    Path(site, "deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "--python",
            str(py),
            "install",
            "-q",
            "--no-deps",
            str(wheel),
        ],
        check=True,
        capture_output=True,
    )
    work = tmp_path / "elsewhere"
    work.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH",)}
    env["JAX_PLATFORMS"] = "cpu"
    geomtoy = venv / "bin" / "geomtoy"
    where = subprocess.run(
        [py, "-c", "import geomtoy, geomtoy.sweep.bundled as b; print(geomtoy.__file__, b.directory())"],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert str(ROOT) not in where and site in where
    run = subprocess.run(
        [geomtoy, "run", "pentagon", "--scale", "smoke", "--out", "OUT"],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
    )
    assert run.returncode == 0, run.stderr
    first = run.stderr.splitlines()[0]
    assert first.startswith("pentagon: ") and "; backend cpu: " in first and "1 process" in first
    assert (work / "OUT" / "instances.parquet").is_file()
    explore = subprocess.run(
        [geomtoy, "explore", "OUT", "--out", "OUT.html"],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
    )
    assert explore.returncode == 0, explore.stderr
    assert (work / "OUT.html").stat().st_size > 10_000
