"""Presentation constants shared by the figures (geomtoy.plot) and the explorer page
(geomtoy.explore); no matplotlib here, so the explorer does not start it."""

POLYTOPE_COLORS = {
    "dedicated": "#1f77b4",
    "tetrahedron": "#17becf",
    "triangle": "#2ca02c",
    "digon": "#d62728",
    "pentagon": "#9467bd",
    "square_antiprism": "#e377c2",
    "other": "#8c8c8c",
    "not_represented": "#d9d9d9",
}
"""Colour of each polytope label of the vocabulary of docs/design.md."""
