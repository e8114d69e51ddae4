"""Every figure script runs on smoke-scale results and writes PNG, PDF and caption; the
gallery page links them all and holds a phase table per sweep."""

import json
import runpy
import sys
import traceback
from pathlib import Path

import matplotlib.image
import numpy as np
import pytest

FIGURES = Path(__file__).resolve().parents[1] / "figures"
SCRIPTS = sorted(FIGURES.glob("fig_*.py"))


def _run_script(script: Path, results: Path, out: Path) -> None:
    saved = sys.argv
    sys.argv = [str(script), "--results", str(results), "--out", str(out)]
    try:
        runpy.run_path(str(script), run_name="__main__")
    finally:
        sys.argv = saved


@pytest.fixture(scope="session")  # one worker runs them all (conftest: xdist_group)
def figure_outputs(smoke_results, tmp_path_factory):
    """Every figure script run once into its own folder, then the gallery over all."""
    root, codes = smoke_results
    assert all(c == 0 for c in codes.values())
    gallery = tmp_path_factory.mktemp("gallery")
    errors = {}
    for script in SCRIPTS:
        out = gallery / script.stem
        try:
            _run_script(script, root, out)
        except Exception:  # reported by that script's test
            errors[script.stem] = traceback.format_exc()
            continue
        for f in out.iterdir():
            (gallery / f.name).write_bytes(f.read_bytes())
    _run_script(FIGURES / "index.py", root, gallery)
    return root, gallery, errors


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.stem)
def test_figure_script_runs_on_smoke_results(script, figure_outputs):
    _, gallery, errors = figure_outputs
    assert script.stem not in errors, errors.get(script.stem)
    captions = sorted((gallery / script.stem).glob("fig_*.png"))
    assert captions, "the script wrote no figure"
    for png in captions:
        meta = json.loads((png.parent / f"{png.stem}.json").read_text())
        assert meta["title"] and meta["section"] and meta["numbers"] and meta["sweeps"]
        assert (png.parent / f"{png.stem}.pdf").stat().st_size > 1000
        pixels = matplotlib.image.imread(png)
        assert pixels.shape[0] > 200 and np.std(pixels[..., :3]) > 0.05, "blank figure"


def test_gallery_links_every_figure_and_a_phase_table_per_sweep(figure_outputs):
    root, gallery, _ = figure_outputs
    page = (gallery / "index.html").read_text()
    for caption in gallery.glob("fig_*.json"):
        assert f"{caption.stem}.png" in page
    for sweep in root.iterdir():
        assert (gallery / f"phase_table_{sweep.name}.csv").exists()
        assert sweep.name in page


def test_gallery_follows_the_papers_order(figure_outputs):
    """Introduction first, then §3.2, §4, §5.1, §5.2, ... (not the alphabet)."""
    _, gallery, _ = figure_outputs
    page = (gallery / "index.html").read_text()
    order = ["fig_intro", "fig_basic_20x5", "fig_phase", "fig_dims_per_feature", "fig_pentagon"]
    order += ["fig_nonuniform", "fig_correlated", "fig_dynamics", "fig_adversarial"]
    order += ["fig_privileged_basis", "fig_abs_100x40"]
    positions = [page.index(f"id='{stem}'") for stem in order]
    assert positions == sorted(positions)
