"""theory.py against the paper's exact results (paper §3.3 and §4; docs/paper.md checks C4, C5, C7).

The closed-form candidate losses are checked against a Monte-Carlo estimate of the
model's expected loss for the W and b each candidate implies, to 1e-3 absolute (the
figures issue's acceptance bound), with 2e6-4e6 samples and a fixed seed; each test also
asserts that 1e-3 exceeds 4 standard errors of its estimate, so the bound is not loose
by chance. The phase boundaries are checked against the paper's formulas, and check C7's L_1
against numerical integration of the model's own forward pass.
"""

import itertools

import numpy as np
import pytest

from geomtoy.geometry import theory

MC_TOLERANCE = 1e-3
MC_CASES = [
    (1.0, (0.1, 0.5, 1.0), 3_000_000),
    (0.1, (0.1, 0.5, 2.0), 2_000_000),
    (0.01, (0.1, 1.0, 10.0), 4_000_000),
]
"""(p, relative importances r, samples): dense to sparse, both sides of r = 1. The sample
counts keep 4 standard errors below MC_TOLERANCE for every candidate (largest: 0.9e-3, the
antipodal pairs at p = 1, whose per-sample loss has standard deviation about 0.4 (1 + r));
points with larger r at high density would need over 1e7 samples, so the r > 1 dense
region is covered by ``test_closed_forms_match_quadrature``."""

SETUPS = {
    # name: (phase names, (W, b) per phase, closed-form losses, features of importance 1)
    "n2m1": (
        theory.PHASES_N2M1,
        theory.candidate_solutions_n2m1,
        theory.candidate_losses_n2m1,
        1,
    ),
    "n3m2": (
        theory.PHASES_N3M2,
        theory.candidate_solutions_n3m2,
        theory.candidate_losses_n3m2,
        2,
    ),
}


def _importance(r, n_base):
    """Stack of importance vectors: n_base features of importance 1, then the extra one."""
    r = np.asarray(r, dtype=float)
    return np.concatenate([np.ones((r.size, n_base)), r[:, None]], axis=1)


@pytest.mark.parametrize("setup", SETUPS)
@pytest.mark.parametrize("p, r, n_samples", MC_CASES)
def test_closed_forms_match_monte_carlo(setup, p, r, n_samples):
    """checks C4, C5: each candidate's closed form equals the Monte-Carlo loss of the W and b it
    implies, to 1e-3 absolute (the figures issue's acceptance bound)."""
    phases, solutions, losses, n_base = SETUPS[setup]
    rng = np.random.default_rng(20220914)
    closed = losses(np.asarray(r), p)
    for k, name in enumerate(phases):
        W, b = solutions(p)[name]
        estimate, stderr = theory.expected_loss_mc(
            W, b, _importance(r, n_base), p, n_samples, rng, return_stderr=True
        )
        assert np.all(4 * stderr < MC_TOLERANCE), (name, stderr)
        error = np.abs(estimate - closed[k])
        assert np.all(error < MC_TOLERANCE), (name, estimate, closed[k], stderr)


def _expected_loss_quadrature(W, b, importance, p, n_nodes):
    """Deterministic NumPy reference for the expected loss: sum over the 2^n patterns of
    active features of P(pattern) times the midpoint-rule integral over the active values
    (n_nodes per axis). importance: (k, n); returns (k,)."""
    n = W.shape[1]
    gram = W.T @ W
    nodes = (np.arange(n_nodes) + 0.5) / n_nodes
    total = 0.0
    for pattern in itertools.product([False, True], repeat=n):
        active = np.flatnonzero(pattern)
        x = np.zeros((n, n_nodes**active.size))
        if active.size:
            grids = np.meshgrid(*[nodes] * active.size, indexing="ij")
            x[active] = np.stack(grids).reshape(active.size, -1)
        error = (x - np.maximum(gram @ x + b[:, None], 0.0)) ** 2
        probability = p**active.size * (1 - p) ** (n - active.size)
        total = total + probability * (importance @ error.mean(axis=1))
    return total


@pytest.mark.parametrize("setup, n_nodes", [("n2m1", 1000), ("n3m2", 100)])
def test_closed_forms_match_quadrature(setup, n_nodes):
    """checks C4, C5 over the whole diagram range (r up to 10, p up to 1) against deterministic
    integration; the midpoint rule's relative error here is about 1/n_nodes^2 (<= 1e-4),
    so rtol 1e-3 leaves a tenfold margin."""
    phases, solutions, losses, n_base = SETUPS[setup]
    r = np.array([0.1, 0.5, 1.0, 2.0, 10.0])
    for p in [1.0, 0.3, 0.03]:
        closed = losses(r, p)
        for k, name in enumerate(phases):
            W, b = solutions(p)[name]
            numeric = _expected_loss_quadrature(W, b, _importance(r, n_base), p, n_nodes)
            np.testing.assert_allclose(numeric, closed[k], rtol=1e-3, err_msg=f"{name} p={p}")


def test_n3m2_candidates_are_the_papers_configurations():
    """Each W ignores its named direction; represented columns are unit vectors (§4)."""
    for name, (W, b) in theory.candidate_solutions_n3m2(0.3).items():
        assert W.shape == (2, 3) and b.shape == (3,)
        np.testing.assert_allclose(W @ np.array(theory.NULL_DIRECTIONS_N3M2[name]), 0.0, atol=0)
        norms = np.linalg.norm(W, axis=0)
        np.testing.assert_allclose(norms[norms > 0], 1.0, rtol=1e-15)
        np.testing.assert_allclose(b[norms == 0], 0.15, rtol=1e-15)


def test_boundary_values():
    r = np.array([0.1, 10.0, 0.5, 2.0, 1.0])
    """checks C4, C5: p*(0.1) = p*(10) = 0.16, p*(0.5) = p*(2) = 4/9, p*(1) = 4/7 for n = 2; the
    n = 3 boundary is flat at 4/7 for r >= 1; the n = 2 one is symmetric under r -> 1/r."""
    expected_n2m1 = [0.16, 0.16, 4 / 9, 4 / 9, 4 / 7]
    expected_n3m2 = [0.16, 4 / 7, 4 / 9, 4 / 7, 4 / 7]
    np.testing.assert_allclose(theory.boundary_n2m1(r), expected_n2m1, rtol=1e-14)
    np.testing.assert_allclose(theory.boundary_n3m2(r), expected_n3m2, rtol=1e-14)
    r = np.logspace(-1, 1, 101)
    np.testing.assert_allclose(theory.boundary_n2m1(r), theory.boundary_n2m1(1 / r), rtol=1e-14)
    assert theory.TRIPLE_POINT == (1.0, 4 / 7)


@pytest.mark.parametrize(
    "losses, boundary, superposition",
    [
        (theory.candidate_losses_n2m1, theory.boundary_n2m1, [2, 2]),
        (theory.candidate_losses_n3m2, theory.boundary_n3m2, [2, 3]),
    ],
)
def test_losses_cross_on_the_boundary(losses, boundary, superposition):
    """At p = p*(r) the superposition loss equals the cheapest dense loss (§4)."""
    sides = [(np.logspace(-1, 0, 50), superposition[0]), (np.logspace(0, 1, 50), superposition[1])]
    for r, phase in sides:
        at = losses(r, boundary(r))
        np.testing.assert_allclose(at[phase], at[:2].min(axis=0), rtol=1e-12)


def _expected_phase(r, p, boundary, below, above):
    """Phase names from the paper's boundary formulas alone: below/above = (r<=1, r>1)."""
    under = p < boundary(r)
    low = r <= 1.0
    return np.where(under, np.where(low, below[0], below[1]), np.where(low, above[0], above[1]))


@pytest.mark.parametrize(
    "phase, boundary, below, above",
    [
        (
            theory.phase_n2m1,
            theory.boundary_n2m1,
            ("superposition", "superposition"),
            ("not_represented", "dedicated"),
        ),
        (
            theory.phase_n3m2,
            theory.boundary_n3m2,
            ("extra_antipodal", "others_antipodal"),
            ("not_represented", "dedicated"),
        ),
    ],
)
def test_phase_switches_exactly_at_the_boundary(phase, boundary, below, above):
    """The argmin of the closed forms equals the formula's phase on a 201 x 2001 grid
    (0.1..10 x 0.01..1, one vectorised call), and flips within 1e-9 relative of p*(r)."""
    r, p = np.meshgrid(np.logspace(-1, 1, 201), np.logspace(-2, 0, 2001))
    got = phase(r, p)
    assert got.shape == r.shape
    off_boundary = np.abs(p / boundary(r) - 1.0) > 1e-9
    assert off_boundary.mean() > 0.999
    expected = _expected_phase(r, p, boundary, below, above)
    np.testing.assert_array_equal(got[off_boundary], expected[off_boundary])

    r = np.concatenate([np.logspace(-1, 1, 401), [0.1, 0.5, 1.0, 2.0, 10.0]])
    r = r[r != 1.0]
    p_star = boundary(r)
    for p, side in [(p_star * (1 - 1e-9), below), (p_star * (1 + 1e-9), above)]:
        got = phase(r, p)
        np.testing.assert_array_equal(got, _expected_phase(r, p, boundary, below, above))
        assert set(np.unique(got)) == set(side)


def test_triple_point():
    """All candidates tie at (1, 4/7), where p/3 - p^2/4 = p^2/3 = 16/147; the phases
    surround it (§4)."""
    r0, p0 = theory.TRIPLE_POINT
    np.testing.assert_allclose(theory.candidate_losses_n2m1(r0, p0), [16 / 147] * 3, rtol=1e-14)
    np.testing.assert_allclose(theory.candidate_losses_n3m2(r0, p0), [16 / 147] * 4, rtol=1e-14)
    eps = 1e-6
    r = [r0 - eps, r0 + eps, r0 - eps, r0 + eps]
    p = [p0 + eps, p0 + eps, p0 - eps, p0 - eps]
    assert list(theory.phase_n2m1(r, p)) == [
        "not_represented",
        "dedicated",
        "superposition",
        "superposition",
    ]
    assert list(theory.phase_n3m2(r, p)) == [
        "not_represented",
        "dedicated",
        "extra_antipodal",
        "others_antipodal",
    ]


def test_per_feature_mean_is_the_engine_convention():
    """The engine averages over the n features where the paper's L sums (paper §3.1)."""
    loss = theory.candidate_losses_n3m2(2.0, 0.3)
    np.testing.assert_allclose(theory.per_feature_mean(loss, 3), loss / 3, rtol=0)


def _forward(W, b, x):
    """The ReLU output model on a batch x of shape (B, n) (paper §3.1)."""
    return np.maximum(x @ (W.T @ W) + b, 0.0)


@pytest.mark.parametrize("seed", range(4))
def test_l1_closed_form_matches_numerical_integration(seed):
    """check C7: L_1 = sum_i int_0^1 sum_j I_j (x_j - x_hat_j)^2 dx_i with only feature i active,
    integrated with the model's forward pass on a 20001-point trapezoid grid. With b = 0
    every integrand is A x^2 with A >= 0, whose trapezoid rule overshoots by exactly
    h^2 / 2 = 1.25e-9 relative; tolerance rtol 1e-8."""
    rng = np.random.default_rng(seed)
    m, n = [(1, 2), (2, 3), (2, 5), (3, 8)][seed]
    W = rng.normal(size=(m, n)) * rng.uniform(0.3, 1.2)
    importance = rng.uniform(0.1, 2.0, size=n)
    grid = np.linspace(0.0, 1.0, 20001)
    integral = 0.0
    for i in range(n):
        x = np.zeros((grid.size, n))
        x[:, i] = grid
        error = ((x - _forward(W, np.zeros(n), x)) ** 2) @ importance
        integral += np.trapezoid(error, grid)
    np.testing.assert_allclose(theory.l1_closed_form(W, importance), integral, rtol=1e-8)


def test_l0_and_l1_of_the_antipodal_pair():
    """check C7 on hand-built cases: an antipodal pair has no 1-sparse loss; L_0 is the
    importance-weighted squared positive bias."""
    assert theory.l1_closed_form(np.array([[1.0, -1.0]]), np.array([1.0, 3.0])) == 0.0
    assert theory.l1_closed_form(np.array([[1.0, 1.0]]), 1.0) == pytest.approx(2 / 3, rel=1e-15)
    b = np.array([0.5, -0.2, 0.1])
    importance = np.array([1.0, 2.0, 3.0])
    np.testing.assert_allclose(
        theory.l0_closed_form(b, importance),
        ((0.0 - _forward(np.zeros((2, 3)), b, np.zeros((1, 3)))) ** 2 @ importance)[0],
        rtol=1e-15,
    )
