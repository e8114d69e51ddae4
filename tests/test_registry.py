"""The model-kind registry and the two choices added through it (output activation, feature
magnitude): every kind and activation against a NumPy reference, the magnitude sampler
against the inverse normal CDF, and the sweep keys that select them."""

import dataclasses
import math
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import reference

from geomtoy import registry, spec, sweep
from geomtoy.engine import data, models, train
from geomtoy.sae import model as sae_model
from geomtoy.sae import source as sae_source

F32 = np.float32


def _params(kind: str, n: int, m: int, rs) -> models.Params:
    untied = models.MODELS[kind].untied
    return models.Params(
        W=jnp.asarray(rs.normal(size=(m, n)), F32),
        b=jnp.asarray(0.3 * rs.normal(size=n), F32),
        W2=jnp.asarray(rs.normal(size=(n, m)), F32) if untied else None,
    )


@pytest.mark.parametrize("activation", list(models.ACTIVATIONS))
@pytest.mark.parametrize("kind", list(models.MODELS))
def test_every_kind_and_activation_matches_numpy(kind, activation):
    rs = np.random.default_rng(0)
    n, m, B = 6, 3, 64
    p = _params(kind, n, m, rs)
    k = models.MODELS[kind]
    x = (rs.uniform(size=(n, B)) * (rs.uniform(size=(n, B)) < 0.5)).astype(F32)
    if k.signed_inputs:
        x = x * np.where(rs.uniform(size=(n, B)) < 0.5, -1, 1).astype(F32)
    W, b = np.asarray(p.W, np.float64), np.asarray(p.b, np.float64)
    W2 = None if p.W2 is None else np.asarray(p.W2, np.float64)
    ref = reference.forward_with(kind, activation, W, b, x.astype(np.float64), W2)
    out = models.forward(kind, p, jnp.asarray(x), activation)
    np.testing.assert_allclose(out, ref, rtol=1e-5, atol=1e-5)
    imp = 0.9 ** np.arange(n)
    target = np.abs(x) if kind == "abs" else x
    ref_loss = np.mean(imp[:, None] * (target - ref) ** 2)
    loss = models.loss(kind, p, jnp.asarray(x), jnp.asarray(imp, F32), activation)
    np.testing.assert_allclose(loss, ref_loss, rtol=1e-5)


@pytest.mark.parametrize("kind", list(models.MODELS))
def test_init_has_a_second_matrix_exactly_when_untied(kind):
    p = models.init_params(jax.random.key(0), kind, 5, 2)
    assert (p.W2 is not None) == models.MODELS[kind].untied
    assert p.W.shape == (2, 5) and p.b.shape == (5,) and not np.any(np.asarray(p.b))


def test_gelu_is_exact_not_the_tanh_approximation():
    z = np.linspace(-4, 4, 81).astype(F32)
    out = np.asarray(models.ACTIVATIONS["gelu"](jnp.asarray(z)))
    np.testing.assert_allclose(out, reference.activation("gelu", z.astype(np.float64)), atol=2e-6)


@pytest.mark.parametrize("signed", [False, True])
def test_half_normal_is_the_normal_quantile_of_the_same_uniform(signed):
    """A present feature's value v = u / p becomes sqrt(2) erfinv(v) (|N(0,1)|), or of
    2v - 1 (N(0,1)) when signed: erf(x / sqrt 2) recovers it; absent features stay 0."""
    key = jax.random.key(3)
    u = np.asarray(data.uniform(key, (4, 4096)))
    p = np.asarray([1.0, 0.5, 0.1, 0.02], F32)
    x = np.asarray(data.sparse_from_uniform(jnp.asarray(u), jnp.asarray(p), signed, "half_normal"))
    present = u < p[:, None]
    np.testing.assert_array_equal(x[~present], 0.0)
    v = (u / p[:, None]).astype(np.float64)
    w = 2 * v - 1 if signed else v
    erf = np.vectorize(math.erf)
    np.testing.assert_allclose(erf(x[present] / math.sqrt(2)), w[present], atol=2e-6)
    plain = np.asarray(data.sparse_from_uniform(jnp.asarray(u), jnp.asarray(p), signed))
    np.testing.assert_array_equal(plain[present] != 0, x[present] != 0)  # same presence


def test_half_normal_moments():
    """|N(0,1)|: mean sqrt(2/pi), second moment 1 (4 standard errors on 2^17 samples)."""
    s = data.stream(jax.random.key(1), "hash")
    x = np.asarray(
        data.sample_sparse_from_stream(s, jnp.ones(2), 2**16, magnitude="half_normal")
    ).reshape(-1)
    N = x.size
    assert np.all(x >= 0) and np.all(np.isfinite(x))
    assert abs(x.mean() - math.sqrt(2 / math.pi)) < 4 * math.sqrt((1 - 2 / math.pi) / N)
    assert abs(np.mean(x**2) - 1.0) < 4 * math.sqrt(2 / N)


BASE = """
name = "t"
[model]
n_features = 4
n_hidden = 2
[data]
feature_probability = 0.1
"""


def test_sweep_keys_select_activation_and_magnitude():
    s = sweep.loads(BASE)
    (g,) = s.groups
    assert (g.shape.activation, g.shape.magnitude) == ("relu", "uniform")
    assert "activation" not in s.spec["model"] and "magnitude" not in s.spec["data"]
    text = (
        BASE
        + '[grid]\n"model.activation" = ["relu", "gelu"]\n"data.magnitude" = ["uniform", "half_normal"]\n'
    )
    s = sweep.loads(text)
    shapes = [(g.shape.activation, g.shape.magnitude) for g in s.groups]
    assert shapes == [
        ("relu", "uniform"),
        ("relu", "half_normal"),
        ("gelu", "uniform"),
        ("gelu", "half_normal"),
    ]
    s = sweep.loads(BASE, sets=["model.activation=gelu"])
    assert s.spec["model"]["activation"] == "gelu"
    with pytest.raises(spec.SweepError, match=r"model.activation: unknown value 'glu'.*'gelu'"):
        sweep.loads(BASE, sets=["model.activation=glu"])


@pytest.mark.slow  # over the fast suite's time budget: make test-all
def test_gelu_half_normal_model_trains():
    """The engine trains the new choices: the training loss falls, the eval loss is finite."""
    shape = spec.Shape(
        n_features=5,
        n_hidden=2,
        batch_size=128,
        steps=60,
        eval_samples=2048,
        activation="gelu",
        magnitude="half_normal",
    )
    hp = train.HParams.create(2, 5, feature_probability=0.1, lr=1e-2)
    res = train.train_instances(shape, hp, chunk_steps=20)
    assert np.all(np.isfinite(res.loss)) and not res.diverged.any()
    assert np.all(res.curves["loss"][-1] < res.curves["loss"][0])


def test_the_registry_and_the_math_agree():
    """Every name in the JAX-free registry has its math, under the same name and flags."""
    assert tuple(models.MODELS) == tuple(registry.MODEL_KINDS) == spec.KINDS
    for name, entry in registry.MODEL_KINDS.items():
        kind = models.MODELS[name]
        assert {f.name: getattr(kind, f.name) for f in dataclasses.fields(entry)} == vars(entry)
    assert tuple(models.ACTIVATIONS) == registry.ACTIVATIONS
    assert tuple(data.MAGNITUDES) == registry.MAGNITUDES
    assert tuple(sae_model.ACTIVATIONS) == registry.SAE_ACTIVATIONS  # names and order
    assert sae_source.DICTIONARIES == registry.SAE_DICTIONARIES
    with pytest.raises(ImportError, match=r"without math \['b'\].*registry entry \['c'\]"):
        registry.check_math("table", ("a", "b"), {"a": 1, "c": 2})


def test_the_schema_and_the_sweep_planner_do_not_start_jax():
    code = "import sys, geomtoy.spec, geomtoy.sae_spec, geomtoy.sweep.keys\n"
    code += "print({'jax', 'optax'} & {*sys.modules})"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "set()"


def test_every_model_family_is_registered_with_its_math():
    """train.FAMILIES (the math: toy models, SAEs) and registry.MODEL_FAMILIES (the names)
    agree, and each family's shape finds its engine."""
    from geomtoy.sae import train as sae_train

    assert [f.name for f in train.FAMILIES.values()] == list(registry.MODEL_FAMILIES)
    assert train.family_of(spec.Shape(n_features=5, n_hidden=2)).name == "toy"
    assert train.family_of(sae_train.SAEShape(5, 2, 8)).name == "sae"
    with pytest.raises(TypeError, match="no model family"):
        train.family_of(object())
