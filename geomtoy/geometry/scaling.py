"""Scaling laws from superposition (Liu, Liu and Gore 2025, arXiv 2505.10465): pure NumPy
on the results tables of a sweep over the width m.

The loss of a toy model with power-law feature frequencies p_i ~ i^-(1+alpha) (their data
exponent is 1 + alpha) falls as a power law in m. In weak superposition only the ~m most
frequent features are represented and the loss is the frequency mass of the rest,
~ m^-alpha (`weak_exponent`: alpha, or its finite-n value over the widths fitted); in
strong superposition every feature is represented, the squared overlaps of n >> m vectors
in m dimensions are ~ 1/m, and the loss is ~ 1/m (`STRONG_EXPONENT`) for frequencies that
are not too steep; for steep ones (alpha > 1/2) the frequent features take the more
orthogonal directions and the loss falls faster, as m^-2 alpha (`paper_exponent`: their
figure 6e). The regime of a model is read from its geometry (`regime`): the share of
represented features and their mean squared overlap against 1/m.
"""

from __future__ import annotations

import json

import numpy as np

from geomtoy import registry

MEAN_SQUARE = {"uniform": 1.0 / 3.0, "half_normal": 1.0, "uniform_2": 4.0 / 3.0}
"""E[x^2] of a present feature, by data.magnitude (the cost of leaving it unrepresented)."""
registry.check_math("geomtoy.geometry.scaling.MEAN_SQUARE", registry.MAGNITUDES, MEAN_SQUARE)

STRONG_EXPONENT = 1.0
"""The loss-vs-m exponent of strong superposition for not too steep frequencies (Liu et
al.: loss ~ 1/m, their line up to data exponent 1 + alpha = 1.5; their fitted points rise
above it from about 1.25)."""
REPRESENTED_NORM = 0.5
"""A feature is represented when its vector's norm ||W_i|| exceeds this (Liu et al.'s
fraction of represented features counts ||W_i|| > 1/2; norms are ~0 or ~1)."""
STRONG_SHARE = 0.9
"""Strong superposition: at least this share of the n features represented."""
WEAK_PER_DIMENSION = 2.0
"""Weak superposition: at most this many represented features per hidden dimension
(antipodal pairs at most; Liu et al.: "only the most frequent features, without interference")."""


def power_law_alpha(values) -> np.ndarray:
    """alpha of each data.feature_probability value ({power_law = {alpha = a}} as a dict or
    the instances table's JSON text); NaN where it is not a power law."""
    out = []
    for v in values:
        if isinstance(v, str) and v.startswith("{"):
            v = json.loads(v)
        out.append(v["power_law"]["alpha"] if isinstance(v, dict) else np.nan)
    return np.asarray(out, np.float64)


def paper_exponent(alpha, regime: str):
    """Liu et al.'s prediction of the loss-vs-m exponent for p_i ~ i^-(1+alpha), the dashed
    lines of their figure 6e in their data exponent a = 1 + alpha: weak, a - 1 = alpha
    (NaN for alpha <= 0, where the unlearned mass is no power law in m); strong,
    max(1, 2 (a - 1)) = max(1, 2 alpha)."""
    alpha = np.asarray(alpha, np.float64)
    if regime == "weak":
        return np.where(alpha > 0, alpha, np.nan)
    if regime == "strong":
        return np.maximum(STRONG_EXPONENT, 2.0 * alpha)
    raise ValueError(f"regime {regime!r} is not weak or strong")


def fit_power_law(m, loss) -> tuple[float, float, float]:
    """Least squares of log loss = c - exponent log m: (exponent, c, standard error of the
    exponent; NaN with fewer than three widths)."""
    x, y = np.log(np.asarray(m, np.float64)), np.log(np.asarray(loss, np.float64))
    A = np.stack([np.ones_like(x), -x], axis=1)
    (c, exponent), *_ = np.linalg.lstsq(A, y, rcond=None)
    dof = len(x) - 2
    if dof < 1:
        return float(exponent), float(c), float("nan")
    resid = y - A @ np.array([c, exponent])
    se = np.sqrt(resid @ resid / dof / np.sum((x - x.mean()) ** 2))
    return float(exponent), float(c), float(se)


def exponent_table(m, loss, **keys) -> dict[str, np.ndarray]:
    """One power-law fit of loss against m per distinct combination of `keys` (equal-length
    arrays, e.g. alpha=..., weight_decay=...): columns `keys`, exponent, log_prefactor,
    stderr, n_widths. Non-finite losses are left out of a fit."""
    m, loss = np.asarray(m, np.float64), np.asarray(loss, np.float64)
    names = list(keys)
    cols = [np.asarray(keys[k]) for k in names]
    combos = sorted({tuple(c[i] for c in cols) for i in range(len(m))})
    rows = []
    for combo in combos:
        sel = np.ones(len(m), bool)
        for c, v in zip(cols, combo):
            sel &= c == v
        sel &= np.isfinite(loss) & (loss > 0)
        fit = fit_power_law(m[sel], loss[sel]) if sel.sum() >= 2 else (np.nan,) * 3
        rows.append((*combo, *fit, int(sel.sum())))
    out_names = [*names, "exponent", "log_prefactor", "stderr", "n_widths"]
    return {k: np.asarray([r[j] for r in rows]) for j, k in enumerate(out_names)}


def unlearned_mass(p, m: int) -> float:
    """Frequency mass of the features beyond the m most frequent: the weak-regime loss is
    proportional to it (each unrepresented feature costs its p_i E[x^2] / n)."""
    q = np.sort(np.asarray(p, np.float64))[::-1]
    return float(q[int(m) :].sum())


def unrepresented_loss(W, p, mean_square: float, threshold: float = REPRESENTED_NORM):
    """The weak-regime loss a model's geometry predicts (Liu et al.: the expected number of
    present but unrepresented features): mean_square / n * sum of p_i over the features with
    ||W_i|| <= threshold, each costing E[x^2] (4/3 for Uniform[0, 2), 1/3 for [0, 1)) when
    present, averaged over the n outputs. W (m, n), p (n,); padding left out."""
    norms = feature_norms(W)
    real = np.isfinite(norms)
    p = np.asarray(p, np.float64)
    return float(mean_square * p[real & ~(norms > threshold)].sum() / real.sum())


def weak_exponent(p, widths) -> float:
    """The weak-regime exponent predicted for frequencies p over these widths: the fitted
    exponent of unlearned_mass against m (alpha for p_i ~ i^-(1+alpha) as n/m -> inf)."""
    return fit_power_law(widths, [unlearned_mass(p, m) for m in widths])[0]


def welch_bound(n: int, m) -> np.ndarray:
    """The least mean squared overlap of n unit vectors in m dimensions, (n - m) / (m (n - 1))
    (Welch; reached by tight frames): ~ 1/m for n >> m, the strong-regime loss's scale."""
    m = np.asarray(m, np.float64)
    return (n - m) / (m * (n - 1))


def strong_exponent(n: int, widths) -> float:
    """The strong-regime exponent over these widths with the finite-n correction: the
    fitted exponent of welch_bound(n, m) (1 as n/m -> inf, a little above 1 otherwise)."""
    return fit_power_law(widths, welch_bound(n, widths))[0]


def feature_norms(W) -> np.ndarray:
    """||W_i|| of every feature: (..., n) from W (..., m, n) (columns are features); the
    NaN rows and columns that pad narrower models of a sweep are left out (NaN norm for a
    padding column)."""
    W = np.asarray(W, np.float64)
    real = np.any(np.isfinite(W), axis=-2)
    return np.where(real, np.sqrt(np.nansum(W**2, axis=-2)), np.nan)


def represented_share(W, threshold: float = REPRESENTED_NORM) -> np.ndarray:
    """Share of the features (padding left out) with ||W_i|| > threshold."""
    norms = feature_norms(W)
    real = np.isfinite(norms)
    return np.sum(real & (norms > threshold), axis=-1) / np.maximum(real.sum(axis=-1), 1)


def mean_squared_overlap(W, threshold: float = REPRESENTED_NORM) -> float:
    """Mean of (w_i . w_j)^2 / (|w_i|^2 |w_j|^2) over pairs i != j of represented features
    of one model W (m, n); 1/m for many random directions, (n - m) / (m (n - 1)) for a tight
    frame of n unit vectors in m dimensions, 0 for orthogonal ones; NaN with < 2 features."""
    W = np.asarray(W, np.float64)
    W = W[np.any(np.isfinite(W), axis=1)]  # padding rows (m < the sweep's largest)
    W = W[:, np.all(np.isfinite(W), axis=0)]  # padding columns
    norms = np.linalg.norm(W, axis=0)
    U = W[:, norms > threshold] / norms[norms > threshold]
    k = U.shape[1]
    if k < 2:
        return float("nan")
    cos2 = (U.T @ U) ** 2
    return float((cos2.sum() - np.trace(cos2)) / (k * (k - 1)))


def weighted_overlap(W, p) -> float:
    """sum_{i != j} p_i p_j cos^2(w_i, w_j) / sum_{i != j} p_i p_j of one model W (m, n)
    with feature probabilities p (n,): the squared overlap a typical pair of co-occurring
    features meets. Equal to mean_squared_overlap for equal p; below it when the frequent
    features are given the more orthogonal directions."""
    W = np.asarray(W, np.float64)
    W = W[np.any(np.isfinite(W), axis=1)]
    real = np.all(np.isfinite(W), axis=0)
    W, p = W[:, real], np.asarray(p, np.float64)[real]
    U = W / np.maximum(np.linalg.norm(W, axis=0), 1e-12)
    cos2 = (U.T @ U) ** 2
    pp = p[:, None] * p[None, :]
    np.fill_diagonal(pp, 0.0)
    return float((pp * cos2).sum() / pp.sum())


def regime(n_represented, n_features, m) -> np.ndarray:
    """ "strong" (>= STRONG_SHARE of the features represented), "weak" (<= WEAK_PER_DIMENSION
    represented features per dimension) or "between", per model."""
    n_rep, n, m = (np.asarray(a, np.float64) for a in (n_represented, n_features, m))
    out = np.full(np.broadcast(n_rep, n, m).shape, "between", dtype=object)
    out[n_rep <= WEAK_PER_DIMENSION * m] = "weak"
    out[n_rep >= STRONG_SHARE * n] = "strong"
    return out


def label_shares(instance, labels, n_instances: int) -> dict[str, np.ndarray]:
    """{label: (I,) share of each instance's features with that label} from the features
    table's instance and label columns (e.g. polytope)."""
    instance = np.asarray(instance)
    labels = np.asarray(labels, dtype=object)
    total = np.bincount(instance, minlength=n_instances).astype(np.float64)
    out = {}
    for label in sorted(set(labels.tolist())):
        count = np.bincount(instance[labels == label], minlength=n_instances)
        out[label] = count / np.maximum(total, 1)
    return out


def first_represented(m, represented) -> np.ndarray:
    """For each feature, the smallest width at which it is represented and stays so at
    every larger width (inf if never): represented is (W, n) bool over widths m (W,)."""
    order = np.argsort(m)
    m, rep = np.asarray(m, np.float64)[order], np.asarray(represented, bool)[order]
    stays = np.flip(np.logical_and.accumulate(np.flip(rep, 0), axis=0), 0)
    first = np.argmax(stays, axis=0)
    return np.where(stays.any(axis=0), m[first], np.inf)


def transitions(m, values, jump: float) -> np.ndarray:
    """Where a geometric quantity changes abruptly between consecutive widths: the
    geometric mid-points sqrt(m_k m_k+1) at which |values_k+1 - values_k| > jump."""
    order = np.argsort(m)
    m, v = np.asarray(m, np.float64)[order], np.asarray(values, np.float64)[order]
    k = np.flatnonzero(np.abs(np.diff(v)) > jump)
    return np.sqrt(m[k] * m[k + 1])


def log_residual(m, loss) -> float:
    """Largest |log loss - fit| of a power-law fit: how far loss departs from a smooth law."""
    exponent, c, _ = fit_power_law(m, loss)
    resid = np.log(np.asarray(loss, np.float64)) - (c - exponent * np.log(np.asarray(m, float)))
    return float(np.max(np.abs(resid)))
