"""Geometry of feature sets (paper §5.2, §6): cosines within and across sets, and the
cross-set octahedron that correlated sets of 3 features in 3 dimensions learn."""

from __future__ import annotations

import numpy as np


def cosines(W: np.ndarray) -> np.ndarray:
    """Cosines between feature directions, W (..., m, n) -> (..., n, n)."""
    norms = np.linalg.norm(W, axis=-2, keepdims=True)
    U = W / np.maximum(norms, 1e-6)
    return np.swapaxes(U, -1, -2) @ U


def set_cosines(W: np.ndarray, set_size: int) -> tuple[np.ndarray, np.ndarray]:
    """(within, across) over snapshots W (S, m, n): the mean cosine between two features
    of one set, and the mean over features of the most negative cosine to a feature of
    another set (-1 when every feature has an antipodal partner in another set)."""
    C = cosines(W)
    n = W.shape[-1]
    sets = np.arange(n) // set_size
    same = (sets[:, None] == sets[None, :]) & ~np.eye(n, dtype=bool)
    within = C[:, same].mean(axis=-1)
    across = np.where(sets[:, None] != sets[None, :], C, np.inf).min(axis=-1).mean(axis=-1)
    return within, across


def cross_set_octahedron(W: np.ndarray, set_size: int) -> bool:
    """True when W (m, n) is 3 antipodal pairs across sets with orthogonal sets inside."""
    n = W.shape[-1]
    if n != 6 or W.shape[0] != 3 or np.any(np.linalg.norm(W, axis=0) <= 0.5):
        return False
    C = cosines(W)
    sets = np.arange(n) // set_size
    partner = np.argmin(C, axis=1)
    pairs_ok = all(
        partner[partner[i]] == i and C[i, partner[i]] < -0.9 and sets[i] != sets[partner[i]]
        for i in range(n)
    )
    same = (sets[:, None] == sets[None, :]) & ~np.eye(n, dtype=bool)
    return bool(pairs_ok and np.all(np.abs(C[same]) < 0.1))
