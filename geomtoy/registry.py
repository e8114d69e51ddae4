"""The engine's registries by name, without their math: JAX-free, so the sweep schema
(geomtoy.spec) checks its keys against them without starting JAX.

Each name here has its math elsewhere, keyed by the same name: model kinds and output
activations in geomtoy.engine.models, samplers, set structures and magnitudes in geomtoy.engine.data,
optimizers and schedules in geomtoy.engine.optim, representations in geomtoy.engine.finite, SAE
activations in geomtoy.sae.model and the SAE sources' dictionaries in geomtoy.sae.source. A module
whose table lacks a name refuses to import, and tests/test_registry.py checks both sides.
Adding a model kind is one `ModelKind` entry here plus its math in geomtoy.engine.models.
"""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True)
class ModelKind:
    """One model kind's name, what it computes and the facts other modules ask about it."""

    name: str
    doc: str
    output_activation: bool = True  # apply the output nonlinearity f
    signed_inputs: bool = False  # present features are Uniform[-1, 1], not [0, 1]
    untied: bool = False  # a second matrix W2 (n, m) maps the hidden space back
    privileged_hidden: bool = False  # a ReLU on the hidden layer: neurons are a basis


MODEL_KINDS: dict[str, ModelKind] = {
    k.name: k
    for k in (
        ModelKind("relu_output", "x_hat = ReLU(W^T W x + b), the paper's main model"),
        ModelKind("linear", "x_hat = W^T W x + b, the linear baseline", output_activation=False),
        ModelKind(
            "relu_hidden",
            "x_hat = ReLU(W^T ReLU(W x) + b), a privileged hidden basis",
            privileged_hidden=True,
        ),
        ModelKind(
            "abs",
            "y_hat = ReLU(W2 ReLU(W x) + b) computing |x|, untied",
            signed_inputs=True,
            untied=True,
            privileged_hidden=True,
        ),
    )
}
"""The values of the sweep key model.kind, in this order (the first is the default)."""

ACTIVATIONS = ("relu", "gelu")
"""Output nonlinearities (model.activation): ReLU as in the paper, or exact GELU."""
SAMPLERS = ("hash", "threefry")
"""Uniform samplers (train.sampler)."""
STRUCTURES = ("independent", "correlated", "anticorrelated", "hierarchical")
"""Feature-set structures (data.structure)."""
MAGNITUDES = ("uniform", "half_normal", "uniform_2")
"""Values of a present feature (data.magnitude)."""
OPTIMIZERS = ("adamw", "adam", "sgd")
"""Optimizers (train.optimizer)."""
DECAY_RULES = ("decoupled", "unit_norm")
"""What weight decay does (train.decay_rule): decoupled (AdamW's p <- p - lr wd p, for any
sign of wd), or unit_norm (Liu, Liu and Gore 2025: the same for wd >= 0; for wd < 0 each
feature's vector is pulled towards norm 1)."""
INITS_W = ("xavier_normal", "normal_m")
"""Initial weights W (model.init_W): Xavier normal, std sqrt(2 / (n + m)) (the paper's
notebook), or N(0, 1/m) (Liu, Liu and Gore 2025)."""
INITS_B = ("zeros", "normal")
"""Initial bias b (model.init_b): zeros (the paper's notebook), or N(0, 1) (Liu et al.)."""
SCHEDULES = ("constant", "linear", "cosine", "warmup_cosine")
"""Learning-rate schedules (train.schedule)."""
REPRESENTATIONS = ("auto", "dense", "sparse")
"""How a finite training set is held (data.representation)."""
MODEL_FAMILIES = ("toy", "finite", "sae")
"""What geomtoy.engine.train trains (geomtoy.engine.families; math in geomtoy.engine.toy,
fullbatch and geomtoy.sae): the toy models of MODEL_KINDS, on fresh samples or on finite
training sets (data.n_samples > 0), and sparse autoencoders on their hidden activations (a sweep with
an [sae] table)."""
SAE_ACTIVATIONS = ("relu", "topk", "batchtopk", "jumprelu", "matryoshka_batchtopk")
"""SAE architectures (sae.activation), in this order; their math and flags are
geomtoy.sae.model.ACTIVATIONS."""
SYNTHETIC = "synthetic"
"""source.results = "synthetic": SAEs on random unit directions, not on trained toy models."""
SYNTHBENCH = "synthbench"
"""source.results = "synthbench": SAEs on a SynthSAEBench-like dictionary (geomtoy.sae.source)."""
SAE_DICTIONARIES = (SYNTHETIC, SYNTHBENCH)
"""SAE sources that are known dictionaries, not trained toy models (no readout, no toy loss)."""


def check_math(what: str, names: tuple[str, ...], implemented) -> None:
    """Refuse a math table that does not implement exactly the registered `names`."""
    missing, extra = set(names) - set(implemented), set(implemented) - set(names)
    if missing or extra:
        raise ImportError(
            f"{what}: registered without math {sorted(missing)}, math without a "
            f"registry entry {sorted(extra)} (geomtoy.registry)"
        )
