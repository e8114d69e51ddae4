"""Closed-form losses and phase boundaries of the small toy models (paper "Superposition as
a Phase Change", paper §3.3 and §4; docs/paper.md checks C4, C5, C7).

The paper's theoretical phase diagrams (after Wattenberg's "Exploring Exact Toy Models"
notebook) compare the exact expected loss of a few fixed candidate solutions of the ReLU
output model ``x_hat = ReLU(W^T W x + b)`` and colour each (r, p) point by the cheapest one:

- n = 2, m = 1 (§4): feature 1 has importance 1, feature 2 (the "extra" feature) has
  relative importance ``r``; candidates W = [1, 0], W = [0, 1], W = [1, -1].
- n = 3, m = 2 (§4): features 1 and 2 have importance 1, feature 3 (the extra feature) has
  relative importance ``r``; candidates named by the direction W ignores:
  W ⟂ [0,0,1], W ⟂ [1,0,0], W ⟂ [0,1,1], W ⟂ [1,1,0].

Data as in the paper (1.1): each x_i is 0 with probability 1 - p, else Uniform[0, 1];
``p = 1 - S`` is the feature density (``feature_probability``), shared by all features.

Conventions:

- Loss is the expectation of the importance-weighted squared error *summed* over
  features, E[sum_i I_i (x_i - x_hat_i)^2], as in the paper's L (1.3). The training
  engine reports the notebook's mean over features instead; ``per_feature_mean``
  converts (divide by n). Dividing by n changes no comparison, hence no boundary.
- Bias sign: ``x_hat = ReLU(W^T W x + b)`` (the engine's, paper §3.1), so a dropped
  feature outputs ``b = p/2``; the paper's §4 writes ``ReLU(W^T W x - b)``, a sign
  convention only.
- The candidates are fixed configurations, not optimised ones: a dropped feature has
  W_i = 0 and b_i = E[x_i] = p/2, a represented feature has ||W_i|| = 1 and b_i = 0, and an
  antipodal pair has W_j = -W_i. The paper draws its theoretical panel from exactly
  these, so the boundaries are the paper's; a trained model can find lower losses (for
  example an antipodal pair with a negative bias), and the n = 3 diagram leaves out
  W ⟂ [1,1,1] (all three features in joint superposition) as the paper does.

All diagram functions are pure NumPy and broadcast over arrays of ``r`` and ``p``, so a
200 x 200 diagram is one call.
"""

from __future__ import annotations

import numpy as np

PHASES_N2M1 = ("not_represented", "dedicated", "superposition")
"""Phases of the n = 2, m = 1 diagram (§4), in the order of ``candidate_losses_n2m1``.

``not_represented``: W = [1, 0], the extra feature is dropped (grey in the paper).
``dedicated``: W = [0, 1], the extra feature gets the dimension, feature 1 is dropped (blue).
``superposition``: W = [1, -1], both features share the dimension as an antipodal pair (red).
"""

PHASES_N3M2 = ("not_represented", "dedicated", "extra_antipodal", "others_antipodal")
"""Phases of the n = 3, m = 2 diagram (§4), in the order of ``candidate_losses_n3m2``.

``not_represented``: W ⟂ [0,0,1], features 1, 2 dedicated, the extra feature dropped.
``dedicated``: W ⟂ [1,0,0], feature 1 dropped, feature 2 and the extra feature dedicated.
``extra_antipodal``: W ⟂ [0,1,1], the extra feature forms an antipodal pair with feature 2,
feature 1 dedicated (the superposition phase for r < 1).
``others_antipodal``: W ⟂ [1,1,0], features 1, 2 form an antipodal pair, the extra feature
dedicated (the superposition phase for r > 1).
"""

NULL_DIRECTIONS_N3M2 = {
    "not_represented": (0.0, 0.0, 1.0),
    "dedicated": (1.0, 0.0, 0.0),
    "extra_antipodal": (0.0, 1.0, 1.0),
    "others_antipodal": (1.0, 1.0, 0.0),
}
"""The direction each n = 3, m = 2 candidate ignores, as the paper names them (§4)."""

TRIPLE_POINT = (1.0, 4.0 / 7.0)
"""(r, p) where the three n = 2, m = 1 phases meet (§4); the four n = 3, m = 2 phases meet
at the same point."""


def dropped_feature_loss(importance, p):
    """Expected loss of a feature with W_i = 0 that outputs its mean as bias (§4).

    With b_i = E[x_i] = p/2 the loss is the variance: importance * (E[x^2] - (p/2)^2)
    = importance * (p/3 - p^2/4); p/2 is also the loss-minimising constant output.
    """
    p = np.asarray(p, dtype=float)
    return np.asarray(importance, dtype=float) * (p / 3.0 - p**2 / 4.0)


def antipodal_pair_loss(importance_a, importance_b, p):
    """Expected loss of two unit features with W_b = -W_a, b = 0, alone in their span (§4).

    ``x_hat_a = ReLU(x_a - x_b)``: exact when one feature is active; when both are
    (probability p^2) each output errs by min(x_a, x_b), and E[min(U, V)^2] = 1/6 for
    independent uniforms, so the loss is (importance_a + importance_b) p^2 / 6.
    """
    p = np.asarray(p, dtype=float)
    importance_sum = np.asarray(importance_a, dtype=float) + np.asarray(importance_b, dtype=float)
    return importance_sum * p**2 / 6.0


def candidate_losses_n2m1(r, p):
    """Losses of the three n = 2, m = 1 candidates, stacked on a leading axis (§4, check C4).

    Returns an array of shape (3, *broadcast(r, p).shape) in the order of ``PHASES_N2M1``:
    L[W=[1,0]] = r (p/3 - p^2/4), L[W=[0,1]] = p/3 - p^2/4, L[W=[1,-1]] = (1 + r) p^2/6.
    ``r`` is the extra feature's importance relative to feature 1, ``p`` = 1 - S.
    Losses are summed over features (see the module docstring).
    """
    r, p = np.broadcast_arrays(np.asarray(r, dtype=float), np.asarray(p, dtype=float))
    return np.stack(
        [
            dropped_feature_loss(r, p),
            dropped_feature_loss(1.0, p),
            antipodal_pair_loss(1.0, r, p),
        ]
    )


def candidate_losses_n3m2(r, p):
    """Losses of the four n = 3, m = 2 candidates, stacked on a leading axis (§4, check C5).

    Returns an array of shape (4, *broadcast(r, p).shape) in the order of ``PHASES_N3M2``:
    W ⟂ [0,0,1]: r (p/3 - p^2/4); W ⟂ [1,0,0]: p/3 - p^2/4; W ⟂ [0,1,1]: (1 + r) p^2/6;
    W ⟂ [1,1,0]: p^2/3. Dedicated features cost nothing, so each loss is that of the
    dropped feature or the antipodal pair alone. These are the forms of docs/paper.md; the
    derivation from the W and b of ``candidate_solutions_n3m2`` gives the same four.
    """
    r, p = np.broadcast_arrays(np.asarray(r, dtype=float), np.asarray(p, dtype=float))
    return np.stack(
        [
            dropped_feature_loss(r, p),
            dropped_feature_loss(1.0, p),
            antipodal_pair_loss(1.0, r, p),
            antipodal_pair_loss(1.0, 1.0, p),
        ]
    )


def candidate_solutions_n2m1(p):
    """The (W, b) each n = 2, m = 1 candidate implies at density ``p`` (a scalar), by phase name.

    W has shape (1, 2) (paper notation, columns are features), b has shape (2,); a dropped
    feature gets b = p/2. Importance does not enter: with importance (1, r) the expected
    loss of each equals ``candidate_losses_n2m1(r, p)``.
    """
    half = float(p) / 2.0
    return {
        "not_represented": (np.array([[1.0, 0.0]]), np.array([0.0, half])),
        "dedicated": (np.array([[0.0, 1.0]]), np.array([half, 0.0])),
        "superposition": (np.array([[1.0, -1.0]]), np.array([0.0, 0.0])),
    }


def candidate_solutions_n3m2(p):
    """The (W, b) each n = 3, m = 2 candidate implies at density ``p`` (a scalar), by phase name.

    W has shape (2, 3), b has shape (3,). Each W annihilates its ``NULL_DIRECTIONS_N3M2``
    entry; dropped features get b = p/2, antipodal pairs and dedicated features b = 0. With
    importance (1, 1, r) the expected loss of each equals ``candidate_losses_n3m2(r, p)``.
    """
    half = float(p) / 2.0
    return {
        "not_represented": (np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]), np.array([0, 0, half])),
        "dedicated": (np.array([[0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]), np.array([half, 0, 0])),
        "extra_antipodal": (np.array([[1.0, 0.0, 0.0], [0.0, 1.0, -1.0]]), np.zeros(3)),
        "others_antipodal": (np.array([[1.0, -1.0, 0.0], [0.0, 0.0, 1.0]]), np.zeros(3)),
    }


def phase_index_n2m1(r, p):
    """Index into ``PHASES_N2M1`` of the cheapest n = 2, m = 1 candidate at each (r, p) (§4).

    Integer array of shape broadcast(r, p).shape, ready for ``imshow``. An exact tie goes
    to the earlier phase in ``PHASES_N2M1``, so superposition needs a strictly lower loss
    (p < p*(r)) and at r = 1 above the triple point the label is ``not_represented``.
    """
    return np.argmin(candidate_losses_n2m1(r, p), axis=0)


def phase_n2m1(r, p):
    """Name (from ``PHASES_N2M1``) of the cheapest n = 2, m = 1 candidate at each (r, p) (§4)."""
    return np.asarray(PHASES_N2M1)[phase_index_n2m1(r, p)]


def phase_index_n3m2(r, p):
    """Index into ``PHASES_N3M2`` of the cheapest n = 3, m = 2 candidate at each (r, p) (§4).

    Ties go to the earlier phase in ``PHASES_N3M2``, as in ``phase_index_n2m1``.
    """
    return np.argmin(candidate_losses_n3m2(r, p), axis=0)


def phase_n3m2(r, p):
    """Name (from ``PHASES_N3M2``) of the cheapest n = 3, m = 2 candidate at each (r, p) (§4)."""
    return np.asarray(PHASES_N3M2)[phase_index_n3m2(r, p)]


def boundary_n2m1(r):
    """Density p*(r) below which superposition wins for n = 2, m = 1 (§4, check C4).

    Equating the antipodal loss with the cheaper dense candidate:
    p* = 4r / (2 + 5r) for r <= 1 (against dropping the extra feature) and
    p* = 4 / (5 + 2r) for r >= 1 (against dropping feature 1). Symmetric under r -> 1/r;
    p*(0.1) = p*(10) = 0.16, p*(0.5) = p*(2) = 4/9, p*(1) = 4/7. Above p*, the phase is
    ``not_represented`` for r < 1 and ``dedicated`` for r > 1 (the line r = 1 separates them).
    """
    r = np.asarray(r, dtype=float)
    return np.where(r <= 1.0, 4.0 * r / (2.0 + 5.0 * r), 4.0 / (5.0 + 2.0 * r))


def boundary_n3m2(r):
    """Density p*(r) below which a superposition phase wins for n = 3, m = 2 (§4, check C5).

    p* = 4r / (2 + 5r) for r <= 1 (``extra_antipodal`` below, ``not_represented`` above)
    and p* = 4/7 for r >= 1, a flat line (``others_antipodal`` below, ``dedicated``
    above): comparing p^2/3 with p/3 - p^2/4 does not involve r. The two superposition
    phases meet along r = 1 below the point (1, 4/7).
    """
    r = np.asarray(r, dtype=float)
    return np.where(r <= 1.0, 4.0 * r / (2.0 + 5.0 * r), 4.0 / 7.0)


def per_feature_mean(loss, n):
    """Convert a loss summed over features (this module) to the engine's mean over n features.

    The paper's L sums over features; the notebook, and so the engine's reported loss,
    averages over them (paper §3.1).
    """
    return np.asarray(loss, dtype=float) / n


def expected_loss_mc(W, b, importance, p, n_samples, rng, *, return_stderr=False, chunk=1 << 20):
    """Monte-Carlo estimate of E[sum_i I_i (x_i - ReLU((W^T W x)_i + b_i))^2] (§3.3, §3.1).

    W: (m, n); b: (n,); importance: scalar, (n,), or a stack (k, n) of importance vectors
    evaluated on the same samples (the loss is linear in importance, so one draw serves a
    whole row of a phase diagram); p: density, scalar or (n,); rng: a
    ``numpy.random.Generator``. x_i is 0 with probability 1 - p, else Uniform[0, 1],
    independently per feature; one uniform u per element gives both (present iff u < p,
    value u / p, which is Uniform[0, 1) given u < p), as the engine's sampler does (DESIGN).
    Samples are drawn in chunks of ``chunk`` rows to bound memory (the estimate does not
    depend on ``chunk``) and used feature-major, x of shape (n, chunk), the layout that
    keeps the small (n, n) product fast on CPU.

    Returns the estimate, shape () or (k,). With ``return_stderr``, returns
    (estimate, standard error), the standard error being the sample standard deviation of
    the per-sample loss over sqrt(n_samples).
    """
    W = np.asarray(W, dtype=float)
    n = W.shape[1]
    b = np.broadcast_to(np.asarray(b, dtype=float), (n,))
    importance = np.asarray(importance, dtype=float)
    importance = np.broadcast_to(importance, importance.shape[:-1] + (n,) if importance.ndim else n)
    p = np.broadcast_to(np.asarray(p, dtype=float), (n,))
    gram = W.T @ W
    count, mean, m2 = 0, 0.0, 0.0
    while count < n_samples:
        size = min(chunk, n_samples - count)
        u = rng.random((size, n)).T
        x = np.where(u < p[:, None], u / p[:, None], 0.0)
        error = gram @ x
        error += b[:, None]
        np.maximum(error, 0.0, out=error)
        error -= x
        error *= error
        per_sample = importance @ error
        chunk_mean = per_sample.mean(axis=-1)
        chunk_m2 = ((per_sample - chunk_mean[..., None]) ** 2).sum(axis=-1)
        delta = chunk_mean - mean
        total = count + size
        mean = mean + delta * size / total
        m2 = m2 + chunk_m2 + delta**2 * count * size / total
        count = total
    if not return_stderr:
        return mean
    return mean, np.sqrt(m2 / max(n_samples - 1, 1) / n_samples)


def l1_closed_form(W, importance):
    """The 1-sparse loss term L_1 of the ReLU output model at b = 0 (§3.3, check C7).

    L_1 = sum_i E[loss | only feature i active]
        = (1/3) [sum_i I_i (1 - ||W_i||^2)^2 + sum_{i != j} I_j ReLU(W_j . W_i)^2],
    since int_0^1 (x - ReLU(a x))^2 dx = (1 - a)^2 / 3 for a = ||W_i||^2 >= 0 and
    int_0^1 ReLU(c x)^2 dx = ReLU(c)^2 / 3. The first sum is the feature benefit, the
    second the interference; ReLU makes negative interference free. In the expansion
    L = sum_k p^k (1 - p)^(n - k) L_k this term has weight p (1 - p)^(n - 1).
    W: (m, n); importance: scalar or (n,).
    """
    W = np.asarray(W, dtype=float)
    n = W.shape[1]
    importance = np.broadcast_to(np.asarray(importance, dtype=float), (n,))
    gram = W.T @ W
    benefit = importance @ (1.0 - np.diag(gram)) ** 2
    off_diagonal = np.maximum(gram, 0.0) ** 2 * (1.0 - np.eye(n))
    interference = importance @ off_diagonal.sum(axis=1)
    return (benefit + interference) / 3.0


def l0_closed_form(b, importance):
    """The all-zero loss term L_0 = sum_i I_i ReLU(b_i)^2 (§3.3, check C7).

    The paper prints L_0 = sum_i ReLU(b_i)^2 without importance; with importance weights
    in the loss they multiply each term, as here. Weight (1 - p)^n in the expansion.
    """
    b = np.asarray(b, dtype=float)
    importance = np.broadcast_to(np.asarray(importance, dtype=float), b.shape)
    return importance @ np.maximum(b, 0.0) ** 2
