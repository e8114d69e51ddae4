"""geomtoy.zoo: the reference models shipped in the package load by name with their labels
and provenance, their labels are what the geometry module computes from their weights,
they show the paper's geometry, and (slow) retraining an entry by its recorded command
gives the same models."""

from __future__ import annotations

import shutil
import subprocess
import sys

import numpy as np
import pytest

from geomtoy import zoo
from geomtoy.errors import SweepError
from geomtoy.geometry import neurons
from geomtoy.geometry.polytopes import analyze
from geomtoy.zoo import build, catalog

D_TOL = 0.01
"""D_i of a trained pentagon within 0.01 of 2/5 (the labeller's own tolerance is wider)."""

ZOO_BYTES = 600_000
"""The whole zoo stays a few hundred kB in the wheel."""


def per_model(table, column: str, k: int) -> np.ndarray:
    """A features column as (k, n), rows ordered by (instance, feature)."""
    inst = table.column("instance").to_numpy()
    feat = table.column("feature").to_numpy()
    values = table.column(column).to_numpy(zero_copy_only=False)
    order = np.lexsort((feat, inst))
    return values[order].reshape(k, -1)


@pytest.mark.parametrize("name", zoo.names())
def test_every_entry_loads_with_its_labels_and_provenance(name):
    m = zoo.load(name)
    entry = catalog.BY_NAME[name]
    k, hidden, n = m.W.shape
    spec = m.provenance["spec"]
    assert (hidden, n) == (spec["model"]["n_hidden"], spec["model"]["n_features"])
    assert len(m) == k == m.instances.num_rows == len(m.provenance["run_instances"]) >= 1
    assert m.features.num_rows == k * n and m.b.shape == (k, n)
    assert m.provenance["command"] == entry.command and m.provenance["sweep"] == entry.sweep
    assert m.provenance["zoo_version"] == catalog.ZOO_VERSION
    assert list(m.instances.column("run_instance").to_pylist()) == m.provenance["run_instances"]
    assert all(m.instances.column("best").to_pylist())  # the best seed of its grid point
    assert list(m.instances.column("geometry").to_pylist()) == m.provenance["geometry"]


@pytest.mark.parametrize("name", zoo.names())
def test_labels_are_the_geometry_modules(name):
    """Recomputed from the shipped weights, every label, factor and D_i is the shipped one."""
    m = zoo.load(name)
    g = analyze(m.W)
    k = len(m)
    assert (per_model(m.features, "polytope", k) == g.polytope.astype(str)).all()
    assert (per_model(m.features, "factor", k) == g.factor).all()
    np.testing.assert_allclose(per_model(m.features, "dimensionality", k), g.dimensionality, 1e-6)
    assert list(g.summary) == m.provenance["geometry"]


def test_pentagon_is_a_regular_pentagon():
    """§5.2, check C9: five features at 1 - S = 0.05 in two dimensions, D_i = 2/5."""
    m = zoo.load("pentagon")
    assert m.provenance["geometry"] == ["pentagon"]
    assert set(m.features.column("polytope").to_pylist()) == {"pentagon"}
    np.testing.assert_allclose(m.features.column("dimensionality").to_numpy(), 0.4, atol=D_TOL)


def test_abs_model_has_a_positive_and_a_negative_neuron_per_feature():
    """§9, check C14: ReLU(x_i) + ReLU(-x_i) for each of the 3 features."""
    m = zoo.load("abs_3x6")
    assert len(m) == 1 and m.provenance["where"] == {"data.feature_probability": 0.3}
    assert neurons.sign_pairs(m.W[0], m.params["W2"][0]).all()


def test_uniform_and_feature_geometry_span_their_densities():
    """One best model per density of each sweep (6 for uniform_40x10, the 3 set ones for the
    n = 200, m = 20 recipe), densest first, each with polytopes of the paper's vocabulary."""
    u = zoo.load("uniform_40x10")
    p = u.params["feature_probability"][:, 0]
    np.testing.assert_allclose(p, np.geomspace(0.5, 0.04, 6), rtol=1e-6)
    f = zoo.load("feature_geometry")
    p = f.params["feature_probability"][:, 0]
    np.testing.assert_allclose(p, catalog.FEATURE_GEOMETRY_DENSITIES, rtol=1e-6)
    for m in (u, f):
        labels = set(m.features.column("polytope").to_pylist())
        assert labels & {"digon", "triangle", "pentagon", "tetrahedron"}, labels


def test_feature_geometry_dimensionality_falls_with_sparsity():
    """§5.1, figure 5: sparser features share more dimensions; at 1/(1-S) = 2.5 every
    represented feature sits in an antipodal digon (D_i = 1/2), at 5 pentagons appear."""
    f = zoo.load("feature_geometry")
    dims = per_model(f.features, "dimensionality", len(f))
    labels = per_model(f.features, "polytope", len(f))
    rep = labels != "not_represented"
    medians = [float(np.median(d[r])) for d, r in zip(dims, rep)]
    assert medians == sorted(medians, reverse=True), medians
    assert set(labels[1][rep[1]]) == {"digon"}
    np.testing.assert_allclose(dims[1][rep[1]], 0.5, atol=D_TOL)
    assert "pentagon" in set(labels[2])


def test_unknown_name_and_damaged_file_are_one_line_errors(tmp_path, monkeypatch):
    with pytest.raises(SweepError, match="no such model; the zoo holds pentagon"):
        zoo.load("pentagonn")
    data = tmp_path / "data"
    shutil.copytree(zoo._data(), data)
    blob = bytearray((data / "pentagon.npz").read_bytes())
    blob[-20] ^= 0xFF
    (data / "pentagon.npz").write_bytes(bytes(blob))
    monkeypatch.setattr(zoo, "_data", lambda: data)
    with pytest.raises(SweepError, match="pentagon.npz: checksum mismatch"):
        zoo.load("pentagon")


def test_loading_starts_no_jax_and_the_zoo_is_small():
    code = (
        "import sys, geomtoy\n"
        "m = geomtoy.zoo.load('feature_geometry')\n"
        "assert m.W.shape[1:] == (20, 200), m.W.shape\n"
        "assert 'jax' not in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
    files = zoo.manifest()["files"]
    assert sum((zoo._data() / f).read_bytes().__len__() for f in files) < ZOO_BYTES


@pytest.mark.slow
def test_retraining_an_entry_by_its_command_gives_the_same_models(tmp_path):
    """The pentagon entry retrained from its recorded sweep, scale and overrides: the same
    instance chosen, the same labels, the same weights (float32 rounding apart)."""
    entry = catalog.BY_NAME["pentagon"]
    build.build_entry(entry, tmp_path / "work", tmp_path / "out")
    build.write_manifest(tmp_path / "out")
    shipped = zoo.load("pentagon")
    monkey = zoo._data
    try:
        zoo._data = lambda: tmp_path / "out"
        again = zoo.load("pentagon")
    finally:
        zoo._data = monkey
    assert again.provenance["run_instances"] == shipped.provenance["run_instances"]
    assert again.provenance["fingerprint"] == shipped.provenance["fingerprint"]
    assert again.features.column("polytope") == shipped.features.column("polytope")
    np.testing.assert_allclose(again.W, shipped.W, atol=1e-5)
