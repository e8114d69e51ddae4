"""How well an SAE's dictionary recovers a toy model's true features (Sharkey et al. 2022).

The true features of a toy model are the columns W_i of its W (m, n) that it represents
(norm above geometry.polytopes.REPRESENTED_NORM; a synthetic dictionary represents all of
them). Feature i's recovery is the best cosine between W_i and any decoder column; the mean
over represented features is the mean max cosine similarity (MMCS). A feature counts as
recovered at a threshold (0.9, 0.99: `THRESHOLDS`) when its recovery exceeds it.

Latents: dead if they fire on no evaluation sample, dense if on more than
`DENSE_FREQUENCY` of them. All functions take stacked weights (I, ...), NumPy in and out.
"""

from __future__ import annotations

import numpy as np

from geomtoy.geometry.polytopes import REPRESENTED_NORM

THRESHOLDS = (0.9, 0.99)
"""Recovery thresholds reported as shares of recovered features (columns recovered_0.9...)."""

DENSE_FREQUENCY = 0.5
"""A latent is dense when it fires on more than half of the samples: no feature of a sparse
toy model is present that often, so such a latent codes no single feature."""


def _unit(A: np.ndarray, axis: int) -> np.ndarray:
    norm = np.linalg.norm(A, axis=axis, keepdims=True)
    return np.divide(A, norm, out=np.zeros_like(A), where=norm > 0)


def cosines(W: np.ndarray, W_dec: np.ndarray) -> np.ndarray:
    """Cosines (I, n, width) between true features W (I, m, n) and decoder columns
    W_dec (I, m, width)."""
    W, W_dec = np.asarray(W, np.float64), np.asarray(W_dec, np.float64)
    return np.einsum("imn,imw->inw", _unit(W, 1), _unit(W_dec, 1))


def represented(W: np.ndarray) -> np.ndarray:
    """(I, n) bool: the true features, ||W_i|| > REPRESENTED_NORM."""
    return np.linalg.norm(np.asarray(W, np.float64), axis=1) > REPRESENTED_NORM


def feature_recovery(W: np.ndarray, W_dec: np.ndarray) -> np.ndarray:
    """(I, n) best cosine of each true feature to any decoder column; NaN if the toy model
    does not represent the feature."""
    best = cosines(W, W_dec).max(axis=2)
    return np.where(represented(W), best, np.nan)


def latent_match(W: np.ndarray, W_dec: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(best |cosine| (I, width), index of that true feature (I, width)) for each latent,
    over the represented features (-1 and NaN when there is none)."""
    cos = np.where(represented(W)[:, :, None], cosines(W, W_dec), -np.inf)
    index = np.argmax(cos, axis=1)
    best = np.take_along_axis(cos, index[:, None, :], axis=1)[:, 0, :]
    none = ~np.isfinite(best)
    return np.where(none, np.nan, best), np.where(none, -1, index)


def summary(recovery: np.ndarray, frequency: np.ndarray) -> dict[str, np.ndarray]:
    """Per-SAE columns from feature recovery (I, n) and latent firing frequency (I, width):
    mmcs, recovered_0.9, recovered_0.99 (shares of true features), n_true, dead, dense."""
    true = np.isfinite(recovery)
    n_true = true.sum(axis=1)
    safe = np.where(true, recovery, 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        columns = {"n_true": n_true, "mmcs": safe.sum(axis=1) / n_true}
        for t in THRESHOLDS:
            columns[f"recovered_{t}"] = ((safe > t) & true).sum(axis=1) / n_true
    columns["dead"] = (frequency <= 0).sum(axis=1)
    columns["dense"] = (frequency > DENSE_FREQUENCY).sum(axis=1)
    return columns
