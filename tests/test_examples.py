"""The example notebook runs top to bottom (nbclient) and shows what the paper shows; the
plot helpers change no matplotlib state on import."""

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "examples" / "pentagon_and_phase.ipynb"


def test_importing_plot_changes_no_matplotlib_state():
    code = (
        "import matplotlib\n"
        "backend, rc = matplotlib.get_backend(), dict(matplotlib.rcParams)\n"
        "from geomtoy import plot\n"
        "assert matplotlib.get_backend() == backend, (backend, matplotlib.get_backend())\n"
        "changed = [k for k, v in matplotlib.rcParams.items() if rc[k] != v]\n"
        "assert not changed, changed\n"
    )
    env = {"MPLBACKEND": "", "PATH": "/usr/bin:/bin"}
    subprocess.run([sys.executable, "-c", code], check=True, env=env)


def test_top_level_exports_are_lazy():
    code = (
        "import sys, geomtoy\n"
        "assert 'jax' not in sys.modules and 'geomtoy.engine.train' not in sys.modules\n"
        "assert callable(geomtoy.open) and geomtoy.Results and 'jax' not in sys.modules\n"
        "assert callable(geomtoy.run) and callable(geomtoy.open) and callable(geomtoy.analyze)\n"
        "assert callable(geomtoy.train_instances) and callable(geomtoy.explore.show)\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_open_tables_xarray_and_plot_helpers(smoke_results):
    """geomtoy.open on a smoke run of the n=2, m=1 phase sweep: pandas tables with the
    dotted grid columns, an xarray Dataset over the grid axes, and figures from the helpers."""
    pytest.importorskip("pandas")
    xr = pytest.importorskip("xarray")
    import matplotlib.figure

    import geomtoy

    root, codes = smoke_results
    assert codes["phase_2x1"] == 0
    res = geomtoy.open(root / "phase_2x1")
    axes = ["data.varied_importance", "data.feature_probability"]
    assert res.axes == axes
    assert set(axes) <= set(res.instances.columns)
    assert len(res.features) == len(res.instances) * 2
    ds = res.to_xarray()
    assert isinstance(ds, xr.Dataset)
    shape = tuple(res.instances[a].nunique() for a in axes) + (res.meta["seeds"],)
    assert ds["loss"].shape == shape and ds["norm"].shape == shape + (2,)
    one = res.instances.iloc[5]
    cell = ds["loss"].sel({a: one[a] for a in axes} | {"seed": one["seed"]})
    assert float(cell) == one["loss"]
    fig = geomtoy.plot.phase_map(res, *axes)
    assert isinstance(fig, matplotlib.figure.Figure)
    fig = geomtoy.plot.model_figure(res.params["W"][0], res.params["b"][0])
    assert len(fig.axes) == 4  # W^T W, its colour bar, the norms, their colour bar
    import matplotlib.pyplot as plt

    plt.close("all")


@pytest.mark.slow
def test_example_notebook_runs(tmp_path):
    """About 25-40 s on the 2-core dev machine (a kernel, two small trainings)."""
    nbclient = pytest.importorskip("nbclient")
    nbformat = pytest.importorskip("nbformat")
    pytest.importorskip("pandas")
    pytest.importorskip("xarray")
    nb = nbformat.read(NOTEBOOK, as_version=4)
    nbclient.NotebookClient(
        nb, timeout=60, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    ).execute()
    text = "\n".join(
        str(o.get("text", "")) + str(o.get("data", {}).get("text/plain", ""))
        for cell in nb.cells
        if cell.cell_type == "code"
        for o in cell.get("outputs", [])
    )
    assert "pentagon" in text  # the best seed's geometry
    images = [o for c in nb.cells for o in c.get("outputs", []) if "image/png" in o.get("data", {})]
    assert len(images) == 2  # the model and the phase diagram
    assert any(
        "iframe" in o.get("data", {}).get("text/html", "")
        for c in nb.cells
        for o in c.get("outputs", [])
    )
