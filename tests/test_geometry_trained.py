"""Geometry labels on models trained by the engine (issue: geometry acceptance, docs/paper.md checks C3, C9)."""

import numpy as np

from geomtoy.geometry import analyze
from geomtoy.train import HParams, Shape, train_instances


def test_uniform_pentagon_best_of_8_seeds():
    """n=5, m=2, importance 1, 1-S = 0.05: the lowest-loss seed's five features are all
    labelled pentagon with D_i within 0.03 of 2/5 (calibration: 0.400 +- 0.004)."""
    res = train_instances(
        Shape(n_features=5, n_hidden=2),
        HParams.create(8, 5, feature_probability=0.05, seed=np.arange(8)),
        chunk_steps=2500,
    )
    g = analyze(res.params.W)
    best = int(np.argmin(res.loss))
    assert g.polytope[best].tolist() == ["pentagon"] * 5, g.summary
    np.testing.assert_allclose(g.dimensionality[best], 0.4, atol=0.03)
    assert g.summary[best] == "pentagon"
    assert np.all(res.params.b[best] < 0) and np.all(g.norm[best] > 1)


def test_dense_model_two_dedicated_three_not_represented():
    res = train_instances(
        Shape(n_features=5, n_hidden=2),
        HParams.create(2, 5, feature_probability=1.0, importance=0.9 ** np.arange(5), seed=[0, 1]),
        chunk_steps=2500,
    )
    g = analyze(res.params.W)
    for i in range(2):
        assert g.polytope[i].tolist() == ["dedicated"] * 2 + ["not_represented"] * 3
        assert g.summary[i] == "2 dedicated"
        np.testing.assert_allclose(g.dimensionality[i, :2], 1.0, atol=0.01)
