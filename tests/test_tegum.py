"""Tegum factors under weak interference, fit errors and leaks (paper §5.1).

Fixture: every polytope of a list placed in its own coordinate subspace of R^30, each
tilted by its own random rotation of 16 degrees (so factors interfere: measured max
cross-factor |cos| 0.115 ... 0.155 over the seeds), norms jittered by 2%, Gaussian
noise 0.004, 15 weak features (norms 0.05 ... 0.25) in random directions, a random
rotation and a global scale in [0.8, 1.3], columns shuffled. At |cos| > LINK_COS the
whole fixture is one component, so one threshold cannot read it.

Tolerances: fit errors of the tilted fixtures stay below 0.03 (measured <= 0.016: only
the noise and norm jitter deform a rigidly tilted polytope); leaks agree with the
directly computed largest cross-factor |cos| to 1e-5 (float32).
"""

import itertools

import jax
import numpy as np
import pytest
import scipy.linalg

from geomtoy.geometry import POLYTOPES, analyze, polytopes
from geomtoy.geometry.fit import fit_error
from geomtoy.geometry.vocabulary import ring

NAMES = (
    "pentagon",
    "triangle",
    "tetrahedron",
    "digon",
    "square_antiprism",
    "hexagon",
    "icosahedron",
    "simplex_4",
    "dedicated",
    "cube",
)
M = 30
TILT_DEGREES = 16.0
N_WEAK = 15
N = 72  # every fixture is padded with zero columns to N features: one compiled shape
BLOCK = 3  # and analysed in blocks of 3 models
FIT_TOL = 0.03


def irregular_five():
    angles = np.radians([0, 60, 150, 200, 290])
    return np.stack([np.cos(angles), np.sin(angles)], axis=1)


def weakly_linked(seed, blocks):
    """W (M, n), labels and factor ids: blocks (k, d) tilted, perturbed, padded."""
    rng = np.random.default_rng(seed)
    cols, labels, fid, row = [], [], [], 0
    for f, (name, V) in enumerate(blocks):
        k, d = V.shape
        placed = np.zeros((M, k))
        placed[row : row + d] = V.T
        row += d
        S = rng.normal(size=(M, M))
        S = (S - S.T) / 2
        S *= np.radians(TILT_DEGREES) / np.linalg.norm(S, 2)
        cols.append(scipy.linalg.expm(S) @ placed)
        labels += [name] * k
        fid += [f] * k
    W = np.concatenate(cols, axis=1)
    k = W.shape[1]
    W = W * rng.uniform(0.98, 1.02, size=k) + 0.004 * rng.normal(size=(M, k))
    weak = rng.normal(size=(M, N_WEAK))
    weak *= rng.uniform(0.05, 0.25, N_WEAK) / np.linalg.norm(weak, axis=0)
    W = np.concatenate([W, weak], axis=1)
    q, r = np.linalg.qr(rng.normal(size=(M, M)))
    W = (q * np.sign(np.diag(r))) @ W * rng.uniform(0.8, 1.3)
    pad = N - W.shape[1]
    W = np.concatenate([W, np.zeros((M, pad))], axis=1)
    perm = rng.permutation(N)
    labels = np.array(labels + ["not_represented"] * (N_WEAK + pad))[perm]
    return W[:, perm].astype(np.float32), labels, np.array(fid + [-1] * (N_WEAK + pad))[perm]


def cosines(W):
    W = np.asarray(W, np.float64)
    unit = W / np.maximum(np.linalg.norm(W, axis=0), 1e-30)
    return unit.T @ unit


SEEDS = range(3)
VOCABULARY_BLOCKS = [(name, POLYTOPES[name].vertices) for name in NAMES]
MIXED_BLOCKS = VOCABULARY_BLOCKS[:4] + [("other", irregular_five())]


@pytest.fixture(scope="module")
def vocabulary_fixtures():
    fixtures = [weakly_linked(seed, VOCABULARY_BLOCKS) for seed in SEEDS]
    return fixtures, analyze(np.stack([f[0] for f in fixtures]), block_size=BLOCK)


def test_weakly_linked_polytopes_are_all_found(vocabulary_fixtures):
    fixtures, g = vocabulary_fixtures
    for index, (W, labels, fid) in enumerate(fixtures):
        C = np.abs(cosines(W))
        cross = (fid[:, None] != fid[None]) & (fid[:, None] >= 0) & (fid[None] >= 0)
        assert 0.11 < C[cross].max() < 0.16  # the fixture interferes as stated
        represented = fid >= 0
        G = W.T @ W
        one_threshold = jax.jit(polytopes.tegum_components)(G, represented)
        assert len(set(one_threshold[represented].tolist())) < len(NAMES)

        np.testing.assert_array_equal(g.polytope[index], labels)
        assert g.summary[index] == " + ".join(
            f"1 {name}" for name in polytopes.LABELS if name in NAMES
        )
        for f in range(len(NAMES)):
            members = fid == f
            assert len(set(g.factor[index][members].tolist())) == 1
            polytope = POLYTOPES[NAMES[f]]
            assert set(g.factor_size[index][members]) == {polytope.n_vertices}
            assert set(g.factor_dim[index][members]) == {polytope.n_dims}
            assert np.all(g.fit_error[index][members] < FIT_TOL)
            leak = C[np.ix_(members, represented & ~members)].max()
            np.testing.assert_allclose(g.leak[index][members], leak, atol=1e-5)
        assert np.all(np.isnan(g.leak[index][~represented]))


def test_irregular_configuration_among_weakly_linked_polytopes_stays_other():
    fixtures = [weakly_linked(100 + seed, MIXED_BLOCKS) for seed in SEEDS]
    g = analyze(np.stack([f[0] for f in fixtures]), block_size=BLOCK)
    for index, (_, labels, _) in enumerate(fixtures):
        np.testing.assert_array_equal(g.polytope[index], labels)
        assert g.summary[index].endswith("1 other (5 in 2-D)"), g.summary[index]
        assert np.all(np.isnan(g.fit_error[index][labels == "other"]))


def cosine_rms(G, ideal):
    """RMS off-diagonal error of G's cosines to `ideal` (the fit error's definition)."""
    norm = np.sqrt(np.diag(G))
    diff = G / np.outer(norm, norm) - ideal
    return np.sqrt(np.mean(diff[~np.eye(len(G), dtype=bool)] ** 2))


def test_fit_error_matches_brute_force_over_vertex_orders():
    """RMS cosine error after the best of all k! matchings, for perturbed k-gons."""
    rng = np.random.default_rng(4)
    for name in ("pentagon", "hexagon"):
        polytope = POLYTOPES[name]
        k = polytope.n_vertices
        grams, expected = [], []
        for _ in range(6):
            V = ring(k) + 0.03 * rng.normal(size=(k, 2))
            V = V[rng.permutation(k)] * 1.1
            G = V @ V.T
            grams.append(G)
            best = min(
                cosine_rms(G, polytope.gram[np.ix_(p, p)]) for p in itertools.permutations(range(k))
            )
            expected.append(best)
        np.testing.assert_allclose(fit_error(np.stack(grams), polytope), expected, atol=1e-9)


def test_fit_error_when_two_features_are_nearest_one_vertex():
    """A hexagon with one feature moved almost halfway to its neighbour: after alignment
    two features are nearest the same ideal vertex, so the nearest-vertex matching is no
    permutation and the assignment solver settles it, factor by factor. Same RMS cosine
    error as the best of all 6! matchings (1e-9)."""
    polytope = POLYTOPES["hexagon"]
    k = polytope.n_vertices
    rng = np.random.default_rng(0)
    grams, expected = [], []
    for shift in (0.45, 0.49, 0.53, 0.57):  # of the 60 degree gap
        theta = 2 * np.pi * np.arange(k) / k
        theta[1] = theta[0] + shift * 2 * np.pi / k
        V = np.stack([np.cos(theta), np.sin(theta)], axis=1)[rng.permutation(k)]
        G = V @ V.T
        grams.append(G)
        expected.append(
            min(
                cosine_rms(G, polytope.gram[np.ix_(p, p)]) for p in itertools.permutations(range(k))
            )
        )
    np.testing.assert_allclose(fit_error(np.stack(grams), polytope), expected, atol=1e-9)


@pytest.mark.parametrize("name", sorted(POLYTOPES))
def test_fit_error_is_zero_for_every_rotated_shuffled_ideal(name):
    polytope = POLYTOPES[name]
    rng = np.random.default_rng(sorted(POLYTOPES).index(name))
    d = polytope.n_dims
    q = np.linalg.qr(rng.normal(size=(d, d)))[0]
    V = (polytope.vertices @ q)[rng.permutation(polytope.n_vertices)] * 1.3
    np.testing.assert_allclose(fit_error((V @ V.T)[None], polytope), [0.0], atol=1e-9)


def test_decomposition_matches_recursive_numpy_reference():
    """The vmapped decomposition (spanning order, interval clusters, outermost passing
    cluster) against plain recursive splitting, on weakly linked mixtures with
    irregular parts and on random Gaussian models (tangles)."""
    from reference_geometry import tegum_factors

    rng = np.random.default_rng(9)
    models = [weakly_linked(200 + s, MIXED_BLOCKS)[0] for s in range(3)]
    models += [weakly_linked(300 + s, VOCABULARY_BLOCKS[s::2])[0] for s in range(2)]
    models += [rng.normal(size=(M, N)).astype(np.float32) * s for s in (0.2, 0.3)]
    g = analyze(np.stack(models), block_size=BLOCK)
    for index, W in enumerate(models):
        label, root, leak = tegum_factors(W)
        np.testing.assert_array_equal(g.polytope[index], label.astype(str))
        roots = np.unique(root[root >= 0])
        np.testing.assert_array_equal(
            g.factor[index], np.searchsorted(roots, root) * (root >= 0) - (root < 0)
        )
        np.testing.assert_allclose(g.leak[index], leak, atol=1e-5)


def test_every_list_of_labels_derives_from_the_registry(tmp_path):
    """Figures, gallery and explorer payload read names, colours and short labels from
    the one vocabulary registry."""
    from geomtoy.geometry import vocabulary
    from geomtoy.viz import payload, style

    assert list(style.POLYTOPE_COLORS) == list(vocabulary.LABELS)
    assert set(payload.LABELS) == set(vocabulary.LABELS)
    for name, p in POLYTOPES.items():
        assert style.POLYTOPE_COLORS[name] == p.color and style.POLYTOPE_SHORT[name] == p.short
    assert len(set(style.POLYTOPE_COLORS.values())) == len(vocabulary.LABELS)
