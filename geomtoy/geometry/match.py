"""Whether a candidate factor is a polytope of the vocabulary, read from its directions.

A person reading a Gram matrix compares directions, not lengths, so every check here
works on the factor's cosines (`fit.cosine_matrix`); its norm spread is reported as a
column of its own (`geomtoy.geometry.polytopes`). A candidate of k features is the
polytope P of k vertices and d dimensions when

1. it spans d dimensions: singular values of its unit columns above ``RANK_RTOL``
   times the largest (eigenvalues of the cosine matrix);
2. its shape is P's:

   * a regular k-gon in 2-D (k >= 3, d = 2) by its angular gaps: the members' angles
     in the plane they span, sorted around it, have consecutive gaps within
     ``GAP_RTOL x 360/k`` of 360/k;
   * every other polytope (digon, simplices, 3-D polytopes) by its cosines: after the
     best vertex matching (`fit.cosine_errors`) the RMS cosine error is at most
     ``COS_RMS_TOL`` and the worst at most ``COS_MAX_TOL``. Sorted rows within the
     worst-cosine bound are necessary for that, so the matching runs only on candidates
     whose sorted rows pass.

A candidate whose leak ``l`` (strongest link to the rest) is weak next to its own links
may lean towards the rest: the cosine tolerances grow by ``1.5 l^2``, the gap tolerance
by the gap change that cosine change makes and the rank tolerance by ``sqrt(2) l`` (``l``
capped at `LEAN_MAX`; see `geomtoy.geometry.thresholds`).
"""

from __future__ import annotations

import numpy as np

from geomtoy.geometry import fit
from geomtoy.geometry.thresholds import (
    COS_MAX_TOL,
    COS_RMS_TOL,
    GAP_RTOL,
    LEAN_MAX,
    RANK_RTOL,
)
from geomtoy.geometry.vocabulary import Polytope


def is_polygon(polytope: Polytope) -> bool:
    """Regular k-gons in 2-D (k >= 3) are read by their gaps; the rest by cosines."""
    return polytope.n_dims == 2 and polytope.n_vertices >= 3


def match(sub_gram: np.ndarray, polytope: Polytope, leak=None):
    """(passes (F,) bool, fit error (F,), NaN where it does not pass) of each factor's
    Gram matrix (F, k, k) against the polytope, up to rotation, order and norms."""
    sub_gram = np.asarray(sub_gram, dtype=np.float64)
    F, k = sub_gram.shape[0], polytope.n_vertices
    if sub_gram.shape[1:] != (k, k):
        raise ValueError(f"{polytope.name} needs (F, {k}, {k}) Gram blocks")
    error = np.full(F, np.nan)
    norm = np.sqrt(np.clip(np.diagonal(sub_gram, axis1=1, axis2=2), 0.0, None))
    if k == 1:
        ok = norm[:, 0] > 0
        error[ok] = 0.0
        return ok, error
    lean = np.zeros(F) if leak is None else np.clip(np.asarray(leak, float), 0.0, LEAN_MAX)
    ok = np.all(norm > 0, axis=1)
    C = fit.cosine_matrix(sub_gram)
    values, vectors = np.linalg.eigh(C)
    singular = np.sqrt(np.clip(values, 0.0, None))
    rank_rtol = RANK_RTOL + np.sqrt(2.0) * lean
    ok &= np.sum(singular > rank_rtol[:, None] * singular[:, -1:], axis=1) == polytope.n_dims
    cos_slack = 1.5 * lean**2
    if is_polygon(polytope):
        ok &= _gaps_pass(vectors[:, :, -2:] * singular[:, None, -2:], k, cos_slack)
    else:
        rows = np.sort(C[:, ~np.eye(k, dtype=bool)].reshape(F, k, k - 1), axis=-1)
        worst_row = np.max(np.abs(rows - polytope.row_cosines), axis=(1, 2))
        ok &= worst_row <= COS_MAX_TOL + cos_slack
    candidates = np.flatnonzero(ok)
    rms, worst = fit.cosine_errors(C[candidates], polytope)
    if not is_polygon(polytope):
        passed = (rms <= COS_RMS_TOL + cos_slack[candidates]) & (
            worst <= COS_MAX_TOL + cos_slack[candidates]
        )
        ok[candidates[~passed]] = False
    error[ok] = rms[ok[candidates]]
    return ok, error


def matches_polytope(sub_gram: np.ndarray, polytope: Polytope, leak=None) -> np.ndarray:
    """Whether each factor's Gram matrix (F, k, k) is the polytope's, up to rotation,
    order and norms (see the module docstring). Returns (F,) bool."""
    return match(sub_gram, polytope, leak)[0]


def angular_gaps(X: np.ndarray) -> np.ndarray:
    """Gaps (radians) between consecutive points of (F, k, 2) around the origin, (F, k)."""
    angle = np.sort(np.arctan2(X[..., 1], X[..., 0]), axis=-1)
    return np.diff(np.concatenate([angle, angle[:, :1] + 2 * np.pi], axis=-1), axis=-1)


def _gaps_pass(X: np.ndarray, k: int, cos_slack: np.ndarray) -> np.ndarray:
    """Whether the points X (F, k, 2) (the factor in the plane it spans) are a regular
    k-gon up to `GAP_RTOL` of its gap, widened by the gap change of `cos_slack`."""
    ideal = 2 * np.pi / k
    tolerance = GAP_RTOL * ideal + cos_slack / np.sin(ideal)
    return np.all(np.abs(angular_gaps(X) - ideal) <= tolerance[:, None], axis=1)
