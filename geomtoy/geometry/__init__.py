"""Geometry of trained toy models, pure functions of the weights (paper §3.2, §5.1).

`analyze(W)` is the host-side entry point used by `geomtoy analyze` and the results
tables: for weights `W` of shape (I, m, n) it returns a `Geometry` of NumPy arrays with
feature norms, interference, feature dimensionality D_i, tegum factors, polytope labels,
D* and a summary string per model. The single-model `jnp` functions of
`geomtoy.geometry.dimensionality` are vmappable over instances.
"""

from geomtoy.geometry.dimensionality import (
    dims_per_feature,
    feature_dimensionality,
    feature_norms,
    features_per_dim,
    gram,
    interference,
    overlaps,
)
from geomtoy.geometry.polytopes import (
    FACTOR_LABELS,
    LABELS,
    POLYTOPES,
    Geometry,
    Polytope,
    analyze,
    matches_polytope,
    summary,
    tegum_components,
)

__all__ = [
    "FACTOR_LABELS",
    "LABELS",
    "POLYTOPES",
    "Geometry",
    "Polytope",
    "analyze",
    "dims_per_feature",
    "feature_dimensionality",
    "feature_norms",
    "features_per_dim",
    "gram",
    "interference",
    "matches_polytope",
    "overlaps",
    "summary",
    "tegum_components",
]
