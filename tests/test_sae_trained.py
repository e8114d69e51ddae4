"""Trained SAEs recover the true features of trained toy models (slow: make test-all).

Pentagon: on the hidden activations of a trained n=5, m=2 pentagon, a ReLU+L1 SAE of width
5 and one of width 10 each recover all five features above cosine 0.99 for some L1 of a
small grid (2 seeds each). Digons: on an n=40, m=10 uniform model at 1-S = 1/3, which
stores 20 features as 10 antipodal pairs, a TopK SAE of width 80 (k = 6) recovers at
least 90% of the represented features above cosine 0.9, every seed.
"""

import numpy as np
import pytest

from geomtoy import geometry
from geomtoy.engine import train
from geomtoy.geometry import recovery
from geomtoy.sae import train as sae_train

pytestmark = pytest.mark.slow


def _toy(n, m, p, seeds, want):
    shape = train.Shape(n_features=n, n_hidden=m, steps=10_000)
    hp = train.HParams.create(seeds, n, feature_probability=p, seed=np.arange(seeds))
    res = train.train_instances(shape, hp, chunk_steps=2500)
    labels = geometry.analyze(res.params.W).summary
    hits = np.flatnonzero(labels == want)
    assert len(hits), f"no {want} among the toy seeds: {labels}"
    i = hits[np.argmin(res.loss[hits])]
    return res.params.W[i], res.params.b[i]


def _recovery(W, b, p, width, *, l1=(0.0,), k=1, activation="relu", seeds=2, steps=10_000):
    l1 = np.repeat(np.asarray(l1), seeds)
    I = len(l1)
    shape = sae_train.SAEShape(W.shape[1], W.shape[0], width, activation=activation,
                               steps=steps, eval_samples=2**15)  # fmt: skip
    hp = sae_train.SAEHParams.create(
        np.repeat(W[None], I, 0), np.repeat(b[None], I, 0), feature_probability=p,
        l1_coefficient=l1, k=k, seed=np.tile(np.arange(seeds), I // seeds),
    )  # fmt: skip
    res = sae_train.train_saes(shape, hp, chunk_steps=2500)
    return recovery.feature_recovery(hp.toy.W, res.params.W_dec), res


def test_sae_recovers_the_pentagon():
    W, b = _toy(5, 2, 0.05, 8, "pentagon")
    for width in (5, 10):
        rec, _ = _recovery(W, b, 0.05, width, l1=(0.03, 0.1, 0.3))
        assert (rec.min(axis=1) > 0.99).any(), (width, rec.min(axis=1))


def test_topk_sae_recovers_digons():
    W, b = _toy(40, 10, 1 / 3, 2, "10 digon")
    rec, res = _recovery(W, b, 1 / 3, 80, activation="topk", k=6)
    cols = recovery.summary(rec, res.stats["frequency"])
    assert (cols["n_true"] == 20).all()
    assert (cols["recovered_0.9"] >= 0.9).all(), cols["recovered_0.9"]
