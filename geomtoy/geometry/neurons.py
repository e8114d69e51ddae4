"""Privileged-basis views of trained weights (paper §8, §9).

In the ReLU hidden layer model (h = ReLU(W x)) and the abs model (h = ReLU(W1 x)) the
neuron basis is privileged: row h of W is what neuron h reads, and a neuron that reads
more than one feature is polysemantic. The paper shows this with stack plots (one column
per neuron, each weight a rectangle coloured by its feature, negative weights below the
axis) and labels neurons mono- or polysemantic by eye; here the labels are measured.

Functions take one model's weights and are plain NumPy (host side, cheap: m, n small);
`neuron_stats` works on a stack of models (I, m, n).
"""

from __future__ import annotations

import dataclasses

import numpy as np

FEATURE_THRESHOLD = 0.1
"""A feature counts towards a neuron when |W_hi| > FEATURE_THRESHOLD * max_j |W_hj|
(paper §8, suggested operationalisation of "stores more than one feature")."""

DEAD_NEURON = 1e-3
"""A neuron whose largest |weight| is below this reads nothing: 0 features, not counted."""


def rescale_abs(W1: np.ndarray, W2: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Footnote 15: rescale each hidden unit so that its largest-magnitude input weight is 1.

    ReLU(a z) = a ReLU(z) for a > 0, so scaling row h of W1 by a and column h of W2 by 1/a
    leaves the abs model's function unchanged; this picks a canonical scale per neuron.
    W1 has shape (m, n), W2 (n, m).
    """
    scale = np.abs(W1).max(axis=1)
    scale = np.where(scale > DEAD_NEURON, scale, 1.0)
    return W1 / scale[:, None], W2 * scale[None, :]


def features_per_neuron(W: np.ndarray) -> np.ndarray:
    """(m,) number of features each neuron (row of W, shape (m, n)) reads."""
    big = np.abs(W).max(axis=-1, keepdims=True)
    counts = (np.abs(W) > FEATURE_THRESHOLD * big).sum(axis=-1)
    return np.where(big[..., 0] > DEAD_NEURON, counts, 0)


def monosemanticity(W: np.ndarray) -> np.ndarray:
    """(m,) share of each neuron's squared input weight on its largest feature.

    1 for a monosemantic neuron, 1/k for one that reads k features equally, 0 for a dead one.
    """
    sq = W.astype(np.float64) ** 2
    total = sq.sum(axis=-1)
    return np.where(total > DEAD_NEURON**2, sq.max(axis=-1) / np.maximum(total, 1e-30), 0.0)


@dataclasses.dataclass(frozen=True)
class Stacks:
    """The paper's neuron stack plot of one model as data (§8, §9), drawn by the figures
    (`geomtoy.viz.plot.stack_plot`) and the explorer alike.

    Rows are neurons in index order; `order` is their left-to-right order. Each neuron's
    blocks are its input weights sorted by |weight|, largest first; a positive block starts
    at `bottom` and grows up, a negative one starts at `bottom` and grows down, so the
    positives stack up from 0 and the negatives down. The colour key of a block is its
    feature's importance rank (0 = most important), as the paper colours features."""

    order: (
        np.ndarray
    )  # (m,) neurons left to right: by importance of their largest feature, dead last
    feature: np.ndarray  # (m, n) each neuron's features, by |weight| descending
    weight: np.ndarray  # (m, n) their weights (abs models: rescaled, footnote 15)
    bottom: np.ndarray  # (m, n) where each block starts
    count: np.ndarray  # (m,) features each neuron reads (`features_per_neuron`)
    rank: np.ndarray  # (n,) each feature's importance rank, the colour key


def stacks(W: np.ndarray, importance: np.ndarray | None = None, W2=None) -> Stacks:
    """The stack plot of one model W (m, n) with feature importances (n,) (default: in
    index order); an abs model's W2 (n, m) rescales each neuron first (footnote 15)."""
    W = np.nan_to_num(np.asarray(W, np.float64), nan=0.0, posinf=0.0, neginf=0.0)
    if W2 is not None:
        W = rescale_abs(W, np.nan_to_num(np.asarray(W2, np.float64)))[0]
    m, n = W.shape
    importance = -np.arange(n, dtype=np.float64) if importance is None else importance
    feature = np.argsort(-np.abs(W), axis=1, kind="stable")
    weight = np.take_along_axis(W, feature, axis=1)
    up = np.cumsum(np.maximum(weight, 0), axis=1) - np.maximum(weight, 0)
    down = np.cumsum(np.minimum(weight, 0), axis=1) - np.minimum(weight, 0)
    top = feature[:, 0]
    alive = np.abs(weight[:, 0]) > DEAD_NEURON
    order = np.lexsort((np.arange(m), -np.asarray(importance)[top], ~alive))
    rank = np.empty(n, np.int64)
    rank[np.argsort(-np.asarray(importance), kind="stable")] = np.arange(n)
    return Stacks(
        order=order,
        feature=feature,
        weight=weight,
        bottom=np.where(weight > 0, up, down),
        count=features_per_neuron(W),
        rank=rank,
    )


def stack(W: np.ndarray) -> list[list[tuple[int, float]]]:
    """Per neuron, its (feature, weight) pairs sorted by |weight|, largest first: the
    columns of the paper's stack plot (positive weights stacked up, negative down)."""
    s = stacks(W)
    return [[(int(i), float(w)) for i, w in zip(f, v)] for f, v in zip(s.feature, s.weight)]


@dataclasses.dataclass(frozen=True)
class NeuronStats:
    """Per-model neuron summary for a stack of models (I leading)."""

    features_per_neuron: np.ndarray  # (I, m)
    monosemanticity: np.ndarray  # (I, m)
    n_monosemantic: np.ndarray  # (I,) neurons reading exactly one feature
    n_polysemantic: np.ndarray  # (I,) neurons reading two or more
    neurons_per_feature: np.ndarray  # (I, n) neurons reading each feature


def neuron_stats(W: np.ndarray, W2: np.ndarray | None = None) -> NeuronStats:
    """Neuron summary of models W (I, m, n); abs models (W2 given) are rescaled first."""
    W = np.asarray(W, np.float64)
    if W2 is not None:
        W = np.stack([rescale_abs(w1, w2)[0] for w1, w2 in zip(W, np.asarray(W2))])
    fpn = features_per_neuron(W)
    big = np.abs(W).max(axis=-1, keepdims=True)
    reads = (np.abs(W) > FEATURE_THRESHOLD * big) & (big > DEAD_NEURON)
    return NeuronStats(
        features_per_neuron=fpn,
        monosemanticity=monosemanticity(W),
        n_monosemantic=(fpn == 1).sum(axis=-1),
        n_polysemantic=(fpn >= 2).sum(axis=-1),
        neurons_per_feature=reads.sum(axis=-2),
    )


def sign_pairs(W1: np.ndarray, W2: np.ndarray, tol: float = 0.5) -> np.ndarray:
    """(n,) for the abs model: does feature i have a ReLU(x_i) and a ReLU(-x_i) neuron?

    A positive-side neuron for feature i reads mostly +x_i (monosemanticity > 1 - tol on
    feature i, weight > 0) and writes to output i (W2[i, h] > 0); a negative-side one reads
    -x_i. The paper's n=3, m=6 model (§9) has one of each per feature.
    """
    W1, W2 = rescale_abs(np.asarray(W1, np.float64), np.asarray(W2, np.float64))
    mono = monosemanticity(W1)
    top = np.argmax(np.abs(W1), axis=1)
    n = W1.shape[1]
    pos = np.zeros(n, bool)
    neg = np.zeros(n, bool)
    for h, i in enumerate(top):
        if mono[h] < 1 - tol or W2[i, h] <= 0:
            continue
        if W1[h, i] > 0:
            pos[i] = True
        else:
            neg[i] = True
    return pos & neg
