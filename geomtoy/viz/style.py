"""Presentation constants shared by the figures (geomtoy.viz.plot) and the explorer page
(geomtoy.viz.explore); no matplotlib here, so the explorer does not start it."""

from geomtoy.geometry import vocabulary

POLYTOPE_COLORS = dict(vocabulary.COLORS)
"""Colour of each polytope label, from the vocabulary registry (in `LABELS` order)."""

POLYTOPE_SHORT = dict(vocabulary.SHORT)
"""Short label of each polytope label, for crowded plots, from the vocabulary registry."""
