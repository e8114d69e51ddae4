"""Ground-truth scores of SAEs in the vocabulary of SynthSAEBench (Chanin and Garriga-Alonso
2026) and SAELens' synthetic module: pure NumPy functions on stacked arrays (I, ...).

Dictionary scores (decoder columns W_dec (I, m, width) against true features W (I, m, n);
only represented features count, geomtoy.geometry.recovery.represented):

  mcc         one-to-one matching of latents to true features maximising the summed
              |cosine| (Hungarian algorithm, scipy.optimize.linear_sum_assignment); the
              mean |cosine| over the min(n_true, width) matched pairs (O'Neill et al. 2025)
  uniqueness  each latent's best true feature (largest |cosine|); the number of distinct
              best features over the number of latents (1: no two latents share one)

Detection scores (counts on evaluation samples, geomtoy.sae.evaluate): each latent is a
binary classifier of its best true feature being active (x_i > 0). Per latent
precision = TP / (TP + FP), recall = TP / (TP + FN), F1 their harmonic mean, each 0 where
undefined (a dead latent scores 0); `precision`, `recall`, `f1` are their means over the
latents, as SAELens reports them.

  shrinkage   mean over samples with ||h|| > SHRINKAGE_MIN_NORM of ||h_hat|| / ||h||
  absorption  on hierarchical data: the share of (sample, child) pairs, a child feature
              active, at which the latent matched (Hungarian) to its parent is silent,
              although the parent is active whenever a child is (Chanin et al. 2024)
  pw_mcc      the mcc between two SAEs' decoders (seed consistency, SAELens PR 572)
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import linear_sum_assignment

from geomtoy.geometry.recovery import cosines, represented

SHRINKAGE_MIN_NORM = 1e-6
"""Samples with a smaller input norm are left out of the shrinkage (it is undefined)."""


def abs_cosines(W: np.ndarray, W_dec: np.ndarray) -> np.ndarray:
    """|cosine| (I, n, width) of true features to decoder columns; -1 for features the
    toy model does not represent (never matched, never a best feature)."""
    cos = np.abs(cosines(W, W_dec))
    return np.where(represented(W)[:, :, None], cos, -1.0)


def hungarian(cos: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """One-to-one matching of each instance's |cosine| matrix (I, n, width) with -1 for
    features to leave out: (the latent matched to each feature (I, n), -1 if none; its
    |cosine| (I, n), NaN if none)."""
    I, n, _ = cos.shape
    latent = np.full((I, n), -1, np.int64)
    value = np.full((I, n), np.nan)
    for i in range(I):
        rows = np.flatnonzero(cos[i, :, 0] >= 0) if cos.shape[2] else np.array([], int)
        if not len(rows):
            continue
        r, c = linear_sum_assignment(cos[i, rows], maximize=True)
        latent[i, rows[r]] = c
        value[i, rows[r]] = cos[i, rows[r], c]
    return latent, value


def mcc(matched: np.ndarray) -> np.ndarray:
    """(I,) mean |cosine| of the matched pairs, from hungarian's second output."""
    count = np.sum(np.isfinite(matched), axis=1)
    total = np.sum(np.nan_to_num(matched, nan=0.0), axis=1)
    return np.where(count > 0, total / np.maximum(count, 1), np.nan)


def best_feature(cos: np.ndarray) -> np.ndarray:
    """(I, width) each latent's true feature of largest |cosine| (-1: no true feature)."""
    best = np.argmax(cos, axis=1)
    return np.where(np.max(cos, axis=1, initial=-1.0) >= 0, best, -1)


def uniqueness(best: np.ndarray, width: np.ndarray | None = None) -> np.ndarray:
    """(I,) distinct best features over the number of latents (`width` (I,): real latents
    of zero-padded groups; the first width[i] columns count)."""
    I, W = best.shape
    width = np.full(I, W) if width is None else np.asarray(width)
    out = np.zeros(I)
    for i in range(I):
        b = best[i, : width[i]]
        out[i] = len(np.unique(b[b >= 0])) / max(width[i], 1)
    return out


def detection(tp: np.ndarray, fp: np.ndarray, fn: np.ndarray) -> dict[str, np.ndarray]:
    """Per-latent (or per-feature) precision, recall and F1 from counts (..., k); 0 where
    the ratio is undefined."""
    tp, fp, fn = (np.asarray(a, np.float64) for a in (tp, fp, fn))
    with np.errstate(invalid="ignore", divide="ignore"):
        precision = np.where(tp + fp > 0, tp / (tp + fp), 0.0)
        recall = np.where(tp + fn > 0, tp / (tp + fn), 0.0)
        f1 = np.where(precision + recall > 0, 2 * precision * recall / (precision + recall), 0.0)
    return {"precision": precision, "recall": recall, "f1": f1}


def latent_means(per_latent: dict, width: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """(I,) means over each SAE's real latents of detection()'s per-latent arrays (I, W)."""
    out = {}
    for name, a in per_latent.items():
        W = a.shape[1]
        real = np.arange(W)[None, :] < (np.full(len(a), W) if width is None else width)[:, None]
        out[name] = np.sum(np.where(real, a, 0.0), axis=1) / np.maximum(real.sum(axis=1), 1)
    return out


def absorption(absorbed: np.ndarray, child_active: np.ndarray) -> np.ndarray:
    """(I,) summed absorbed counts over summed child activations (NaN without children)."""
    total = np.sum(child_active, axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total > 0, np.sum(absorbed, axis=1) / total, np.nan)


def pairwise_mcc(A: np.ndarray, B: np.ndarray) -> float:
    """MCC between two dictionaries' columns A (m, a) and B (m, b)."""
    cos = np.abs(cosines(A[None], B[None]))[0]
    r, c = linear_sum_assignment(cos, maximize=True)
    return float(np.mean(cos[r, c])) if len(r) else float("nan")


def seed_mcc(W_dec: np.ndarray, group: np.ndarray, width: np.ndarray) -> np.ndarray:
    """(I,) each SAE's mean pairwise MCC to the other SAEs of its group (e.g. the seeds of
    its grid point); NaN alone in its group. W_dec (I, m, W) zero-padded to width (I,)."""
    out = np.full(len(group), np.nan)
    for g in np.unique(group):
        rows = np.flatnonzero(group == g)
        if len(rows) < 2:
            continue
        M = np.zeros((len(rows), len(rows)))
        for a in range(len(rows)):
            for b in range(a + 1, len(rows)):
                i, j = rows[a], rows[b]
                M[a, b] = M[b, a] = pairwise_mcc(W_dec[i, :, : width[i]], W_dec[j, :, : width[j]])
        out[rows] = M.sum(axis=1) / (len(rows) - 1)
    return out


def seed_spread(values: np.ndarray, group: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """((I,) mean, (I,) sample standard deviation) of values over each row's group (NaN
    values left out; std NaN below two values)."""
    mean, std = np.full(len(values), np.nan), np.full(len(values), np.nan)
    values = np.asarray(values, np.float64)
    for g in np.unique(group):
        rows = np.flatnonzero(group == g)
        v = values[rows][np.isfinite(values[rows])]
        if len(v):
            mean[rows] = v.mean()
        if len(v) > 1:
            std[rows] = v.std(ddof=1)
    return mean, std


SEED_SUMMARY = ("mcc", "uniqueness", "f1", "l0", "explained_variance", "absorption")
"""Scores given a mean and spread over the seeds of each SAE grid point."""


def seed_columns(cols: dict, W_dec: np.ndarray, width, point, toy_group) -> dict:
    """Seed statistics of the instances table: pw_mcc (mean MCC to the other seeds of the
    grid point), pw_mcc_toy (to the SAEs that differ only in the toy model's seed; group
    -1: none), and <score>_seed_mean, <score>_seed_std over the seeds of the grid point."""
    toy_group = np.asarray(toy_group)
    out = {"pw_mcc": seed_mcc(W_dec, np.asarray(point), np.asarray(width))}
    toy = seed_mcc(W_dec, toy_group, np.asarray(width))
    out["pw_mcc_toy"] = np.where(toy_group >= 0, toy, np.nan)
    for name in SEED_SUMMARY:
        if name in cols:
            mean, std = seed_spread(cols[name], np.asarray(point))
            out[f"{name}_seed_mean"], out[f"{name}_seed_std"] = mean, std
    return out


FEATURE_SCORES = ("recovery", "mcc", "precision", "recall", "f1", "absorption")
"""Per-feature columns of features.parquet that `breakdown` averages by polytope."""
INSTANCE_SCORES = ("mcc", "uniqueness", "precision", "recall", "f1", "shrinkage", "absorption",
                   "mmcs", "l0", "explained_variance")  # fmt: skip
"""Per-SAE columns of instances.parquet that `breakdown` averages by the toy's geometry."""


def breakdown(res, by: str = "polytope") -> dict[str, dict[str, float]]:
    """Mean scores of an SAE results directory (geomtoy.results.store.Results) per label:
    per-feature scores by the toy model's polytope label of each feature (by="polytope"),
    or per-SAE scores by the toy model's geometry summary, its phase (by="geometry").
    NaN entries (unmatched or unrepresented features) are left out; "count" is the
    number of rows with the label."""
    if by == "polytope":
        table, names, labels = "features", FEATURE_SCORES, res.column("polytope", "features")
    elif by == "geometry":
        table, names, labels = "instances", INSTANCE_SCORES, res.column("geometry")
    else:
        raise ValueError(f"by must be 'polytope' or 'geometry', got {by!r}")
    labels = np.asarray(labels).astype(str)
    cols = {c: np.asarray(res.column(c, table), np.float64) for c in names}
    out = {}
    for label in np.unique(labels):
        rows = labels == label
        out[str(label)] = {"count": int(rows.sum())}
        for c, v in cols.items():
            v = v[rows][np.isfinite(v[rows])]
            out[str(label)][c] = float(v.mean()) if len(v) else float("nan")
    return out
