"""The Makefile's three stages, by dry run on an up-to-date fake tree (`make -n -W FILE`
pretends FILE just changed): a style colour or a geometry threshold retrains nothing, a
geometry change re-analyses without training, an engine change retrains; figure rules
come from each script's declared SWEEPS."""

import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "figures"))
import rules  # noqa: E402

from geomtoy.sweep.grammar import is_sae_sweep  # noqa: E402

GALLERY = sum(rules.declared(p)[2] for p in (ROOT / "figures").glob("fig_*.py"))
"""Figures `make figures` builds."""
_DECLARED = [rules.declared(p) for p in (ROOT / "figures").glob("fig_*.py")]
OWN_TARGET = {s for d in _DECLARED if not d[2] for s in d[0]} - {
    s for d in _DECLARED if d[2] for s in d[0]
}
"""Sweeps read only by figures with their own target (not part of `make figures`)."""
MADE = [p for p in (ROOT / "sweeps").glob("*.toml") if p.stem not in OWN_TARGET]

pytestmark = pytest.mark.skipif(shutil.which("make") is None, reason="no make installed")


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    """Results, figures and a venv stamp, all newer than every source file."""
    base = tmp_path_factory.mktemp("make")
    sweeps = sorted(p.stem for p in (ROOT / "sweeps").glob("*.toml"))
    sae = [s for s in sweeps if is_sae_sweep(ROOT / "sweeps" / f"{s}.toml")]
    files = [base / "venv" / ".installed-stamp"]
    # toy models first, then the SAEs trained on them, then every sweep's analysis
    files += [base / "results" / s / ".trained" for s in sweeps if s not in sae]
    files += [base / "results" / s / ".trained" for s in sae]
    files += [base / "results" / s / ".analyzed" for s in sweeps]
    for script in sorted((ROOT / "figures").glob("fig_*.py")):
        files.append(base / "out" / f"{rules.declared(script)[1]}.png")
    files += [base / "out" / "explorer.html", base / "out" / "index.html"]
    future = time.time() + 3600
    for i, f in enumerate(files):
        f.parent.mkdir(parents=True, exist_ok=True)
        f.touch()
        os.utime(f, (future + i, future + i))  # each stage newer than the one before
    return base


def dry_run(tree: Path, changed: str) -> str:
    cmd = ["make", "-n", "-W", changed, "figures", f"VENV={tree}/venv", f"RESULTS={tree}/results"]
    cmd += [f"FIGOUT={tree}/out", f"PYTHON={sys.executable}"]
    out = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, check=True)
    return out.stdout


def commands(text: str) -> dict[str, int]:
    """How many sweeps would be trained and analysed, and figure scripts run."""
    return {
        "train": len(set(re.findall(r"geomtoy run sweeps/(\w+)\.toml", text))),
        "analyze": len(set(re.findall(r"geomtoy analyze (\S+)", text))),
        "figure": len(re.findall(r"figures/fig_\w+\.py --results", text)),
    }


def test_nothing_to_do_when_up_to_date(tree):
    assert commands(dry_run(tree, "README.md")) == {"train": 0, "analyze": 0, "figure": 0}


def test_a_style_colour_redraws_figures_and_retrains_nothing(tree):
    c = commands(dry_run(tree, "geomtoy/viz/style.py"))
    assert c["train"] == 0 and c["analyze"] == 0 and c["figure"] == GALLERY


def test_a_geometry_threshold_reanalyses_and_retrains_nothing(tree):
    c = commands(dry_run(tree, "geomtoy/geometry/thresholds.py"))
    toy = [p for p in MADE if not is_sae_sweep(p)]
    n_sweeps = len(toy)  # SAE sweeps hold no polytope geometry
    assert c["train"] == 0 and c["analyze"] == n_sweeps and c["figure"] == GALLERY


def test_an_engine_change_retrains(tree):
    c = commands(dry_run(tree, "geomtoy/engine/train.py"))
    assert c["train"] == len(MADE)


def test_a_sweep_file_retrains_only_its_sweep_and_its_figures(tree):
    """pentagon, and the SAE trained on its models; the figures that read either."""
    text = dry_run(tree, "sweeps/pentagon.toml")
    assert set(re.findall(r"geomtoy run sweeps/(\w+)\.toml", text)) == {"pentagon", "sae_pentagon"}
    figures = set(re.findall(r"figures/(fig_\w+)\.py --results", text))
    assert figures == {"fig_pentagon", "fig_sae_directions"}


def test_the_explorer_lists_the_sweeps_in_the_gallerys_order(tree):
    """The page `make figures` builds opens on its first sweep: the first figure's (the
    paper's introduction figure), then the others in the gallery's order, no SAE sweep."""
    text = dry_run(tree, "geomtoy/viz/assets/explorer.css")
    (line,) = [ln for ln in text.splitlines() if " explore " in ln]
    shown = [Path(d).name for d in line.split(" explore ", 1)[1].split(" --out ")[0].split()]
    intro = next(d for d in _DECLARED if d[1] == "fig_intro")
    assert shown[0] == intro[0][0] == "intro_5x2"
    assert shown == [s for s in rules.gallery_sweeps() if s in shown]
    assert not any(is_sae_sweep(ROOT / "sweeps" / f"{s}.toml") for s in shown)
    assert set(shown) == {p.stem for p in MADE if not is_sae_sweep(p)}
