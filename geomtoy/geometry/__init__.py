"""Geometry of trained toy models, pure functions of the weights (paper §3.2, §5.1).

`analyze(W)` is the host-side entry point used by `geomtoy analyze` and the results
tables: for weights `W` of shape (I, m, n) it returns a `Geometry` of NumPy arrays with
feature norms, interference, feature dimensionality D_i, tegum factors, polytope labels,
their fit errors, norm spreads and leaks, D* and a summary string per model;
`point_geometry(H)` labels the hidden vectors of a finite training set the same way
(docs/geometry.md). The single-model `jnp` functions of `geomtoy.geometry.dimensionality` are vmappable over instances. The
polytope vocabulary (`geomtoy.geometry.vocabulary`) is NumPy only: importing it, or
this package, does not start JAX; the names below load their module on first use.
"""

import importlib

_SOURCES = {
    "dimensionality": (
        "dims_per_feature",
        "feature_dimensionality",
        "feature_norms",
        "features_per_dim",
        "gram",
        "interference",
        "overlaps",
    ),
    "polytopes": ("Geometry", "analyze", "matches_polytope", "summary", "tegum_components"),
    "samples": ("point_geometry",),
    "vocabulary": ("FACTOR_LABELS", "LABELS", "POLYTOPES", "Polytope"),
}
_MODULE_OF = {name: module for module, names in _SOURCES.items() for name in names}

__all__ = sorted(_MODULE_OF)


def __getattr__(name):
    if name in _MODULE_OF:
        module = importlib.import_module(f"geomtoy.geometry.{_MODULE_OF[name]}")
        return getattr(module, name)
    raise AttributeError(f"module 'geomtoy.geometry' has no attribute {name!r}")
