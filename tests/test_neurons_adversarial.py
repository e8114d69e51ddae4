"""Privileged-basis neuron views (§8, §9) and the analytic adversarial attack (§7)."""

import numpy as np

from geomtoy.geometry import adversarial, neurons


def _abs_forward(W1, W2, b, x):
    return np.maximum(W2 @ np.maximum(W1 @ x, 0.0) + b[:, None], 0.0)


def test_footnote15_rescaling_keeps_the_function_and_sets_max_weight_to_one():
    rs = np.random.default_rng(0)
    W1, W2, b = rs.normal(size=(6, 3)), rs.normal(size=(3, 6)), rs.normal(size=3)
    V1, V2 = neurons.rescale_abs(W1, W2)
    np.testing.assert_allclose(np.abs(V1).max(axis=1), 1.0, rtol=1e-12)
    x = rs.uniform(-1, 1, (3, 200))
    np.testing.assert_allclose(_abs_forward(V1, V2, b, x), _abs_forward(W1, W2, b, x), rtol=1e-10)


def test_features_per_neuron_and_monosemanticity_on_a_hand_built_W():
    W = np.array(
        [
            [1.0, 0.05, 0.0, 0.0],  # monosemantic (0.05 < 0.1 x 1)
            [0.7, -0.7, 0.0, 0.0],  # two features equally
            [0.5, 0.5, 0.5, 0.2],  # four features
            [0.0, 0.0, 0.0, 0.0],  # dead
        ]
    )
    np.testing.assert_array_equal(neurons.features_per_neuron(W), [1, 2, 4, 0])
    np.testing.assert_allclose(neurons.monosemanticity(W), [1 / 1.0025, 0.5, 0.25 / 0.79, 0.0])
    stats = neurons.neuron_stats(W[None])
    assert stats.n_monosemantic.tolist() == [1] and stats.n_polysemantic.tolist() == [2]
    np.testing.assert_array_equal(stats.neurons_per_feature[0], [3, 2, 1, 1])
    assert neurons.stack(W)[1][:2] == [(0, 0.7), (1, -0.7)]


def test_stack_plot_data_on_a_hand_built_W():
    """Blocks by |weight|, positives stacked up from 0 and negatives down, neurons ordered by
    the importance of their largest feature with dead ones last, colour key = importance rank."""
    W = np.array(
        [
            [0.0, 0.0, 0.0],  # dead
            [0.2, -0.5, 0.3],  # largest: feature 1
            [0.9, 0.1, -0.4],  # largest: feature 0
        ]
    )
    s = neurons.stacks(W, importance=np.array([0.5, 1.0, 0.25]))
    assert s.order.tolist() == [1, 2, 0]  # feature 1 is the most important
    assert s.rank.tolist() == [1, 0, 2]
    assert s.feature[1].tolist() == [1, 2, 0] and s.feature[2].tolist() == [0, 2, 1]
    np.testing.assert_allclose(s.weight[1], [-0.5, 0.3, 0.2])
    np.testing.assert_allclose(s.bottom[1], [0.0, 0.0, 0.3])  # -0.5 down from 0; 0.3, then 0.2 up
    np.testing.assert_allclose(s.bottom[2], [0.0, 0.0, 0.9])
    assert s.count.tolist() == [0, 3, 3]
    W1 = np.array([[2.0, -1.0], [0.0, 0.5]])
    np.testing.assert_allclose(
        neurons.stacks(W1, W2=np.ones((2, 2))).weight, [[1.0, -0.5], [1.0, 0]]
    )


def test_sign_pairs_of_the_abs_solution():
    """ReLU(x_i) + ReLU(-x_i) per feature (§9): each feature has both sides."""
    W1 = np.array([[2.0, 0, 0], [-3.0, 0, 0], [0, 1.5, 0], [0, -1, 0], [0, 0, 0.5], [0, 0, -1]])
    A = np.abs(W1).T
    W2 = np.divide(1.0, A, out=np.zeros_like(A), where=A > 0)
    assert neurons.sign_pairs(W1, W2).tolist() == [True, True, True]
    x = np.random.default_rng(1).uniform(-1, 1, (3, 50))
    np.testing.assert_allclose(_abs_forward(W1, W2, np.zeros(3), x), np.abs(x), atol=1e-12)
    # drop the negative side of feature 1: it is no longer a pair
    assert neurons.sign_pairs(W1[[0, 1, 2, 4, 5]], W2[:, [0, 1, 2, 4, 5]]).tolist() == [
        True,
        False,
        True,
    ]


def test_attack_direction_and_size_match_the_closed_form():
    rs = np.random.default_rng(2)
    W = rs.normal(size=(3, 7))
    d = adversarial.attack_directions(W)
    G = W.T @ W
    for i in range(7):
        np.testing.assert_allclose(d[i], G[i] / np.linalg.norm(G[i]), rtol=1e-12)
        # the optimal unit direction for output i: no unit vector moves (W^T W v)_i more
        v = rs.normal(size=(1000, 7))
        v /= np.linalg.norm(v, axis=1, keepdims=True)
        assert (v @ G[i]).max() <= G[i] @ d[i] + 1e-12
    np.testing.assert_allclose(np.linalg.norm(d, axis=1), 1.0)
    # orthonormal features: the attack on feature i is along e_i
    np.testing.assert_allclose(adversarial.attack_directions(np.eye(3)), np.eye(3))


def test_pentagon_attack_matches_the_tight_frame_closed_form():
    """A unit pentagon with b = 0 is a tight frame (W W^T = 5/2 I): the attack on feature i
    moves output j by lambda sqrt(5/2) ReLU(cos theta_ij), so on the all-zero input (the
    common input of sparse data) the loss rises by (5/2)(1 + 2 cos^2 72deg) lambda^2 =
    2.977 lambda^2, against lambda^2 for the model without superposition: the paper's ~3x."""
    n, m, lam = 5, 2, 0.01
    imp, probs = np.ones(n), np.full(n, 0.01)
    zero = np.zeros((1, n))
    angles = 2 * np.pi * np.arange(n) / n
    pentagon = np.stack([np.cos(angles), np.sin(angles)])
    inc = adversarial.attack_loss_increase(pentagon, np.zeros(n), zero, zero, imp, lam)
    np.testing.assert_allclose(inc, 2.5 * (1 + 2 * np.cos(np.radians(72)) ** 2) * lam**2, rtol=1e-9)
    W0, b0 = adversarial.baseline_no_superposition(imp, probs, m)
    inc0 = adversarial.attack_loss_increase(W0, np.zeros(n), zero, zero, imp, lam)
    np.testing.assert_allclose(inc0, [lam**2, lam**2, 0, 0, 0], rtol=1e-9)
    assert adversarial.features_per_dimension(pentagon) == 2.5
    # on sampled sparse data the relative vulnerability of the pentagon exceeds 3x
    _, _, rel, _ = adversarial.vulnerability(pentagon, np.zeros(n), imp, probs)
    _, _, rel0, _ = adversarial.vulnerability(W0, b0, imp, probs)
    assert rel > 3.0 and rel0 == 1.0
