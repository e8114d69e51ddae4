"""Every sweep file in sweeps/ parses at every scale and runs end to end at smoke scale."""

import re
from pathlib import Path

import numpy as np
import pytest

from geomtoy import spec
from geomtoy.results import store as results
from geomtoy.sweep import load as load_sweep
from geomtoy.sweep.grammar import is_sae_sweep

SWEEPS = sorted(
    p
    for p in (Path(__file__).resolve().parents[1] / "sweeps").glob("*.toml")
    if not is_sae_sweep(p)  # SAE sweeps: tests/test_sae_sweeps.py
)


def test_there_are_sweeps():
    names = {p.stem for p in SWEEPS}
    assert {
        "intro_5x2",
        "basic_20x5",
        "basic_80x20",
        "pentagon",
        "phase_2x1",
        "phase_3x2",
        "uniform_superposition",
        "nonuniform_pentagon",
    } <= names


@pytest.mark.parametrize("path", SWEEPS, ids=lambda p: p.stem)
def test_sweep_file_header_and_scales(path):
    text = path.read_text()
    header = text.split("\nname = ")[0]
    assert re.search(r"^# Figure", header, re.M), "header names the figure it serves"
    assert f"geomtoy run sweeps/{path.name}" in header
    assert "smoke" in header and "paper" in header and " s" in header, "header states run times"
    sweeps = {scale: load_sweep(path, scale=scale) for scale in spec.SCALES}
    assert all(s.name == path.stem for s in sweeps.values())
    assert (
        sweeps["smoke"].n_instances <= sweeps["default"].n_instances <= sweeps["paper"].n_instances
    )
    smoke_steps = max(g.shape.steps for g in sweeps["smoke"].groups)
    assert smoke_steps <= 100 and sweeps["smoke"].n_instances <= 64


@pytest.mark.parametrize("path", SWEEPS, ids=lambda p: p.stem)
def test_sweep_runs_at_smoke_scale(path, smoke_results):
    root, codes = smoke_results  # run once per session through cli.main (conftest)
    out = root / path.stem
    assert codes[path.stem] == 0
    sweep = load_sweep(path, scale="smoke")
    res = results.open_results(out)
    assert res.meta["status"] == "complete" and res.meta["scale"] == "smoke"
    assert res.instances.num_rows == sweep.n_instances
    n = res.params["n_features"]
    assert res.features.num_rows == int(n.sum())
    for axis in sweep.axes:
        assert axis.key in res.instances.column_names
    loss = res.column("loss")
    assert np.all(np.isfinite(loss)) and not res.column("diverged").any()
