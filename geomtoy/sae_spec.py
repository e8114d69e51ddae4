"""The SAE sweep-file schema: every key of a sweep with an `[sae]` table, and its static keys.

The vocabulary of the SAE sweeps beside geomtoy.spec (whose keys it shares where the meaning
is the same: name, root_seed, most train keys), JAX-free, so `geomtoy keys` and docs/keys.md
read it without starting JAX. geomtoy.sae.sweep parses SAE sweep files with the toy sweeps'
grammar over `FIELDS` and builds each group's SAEShape from `STATIC`; the activation and
source names come from geomtoy.registry. Users: docs/sae.md.
"""

from __future__ import annotations

from geomtoy import checks as C
from geomtoy import spec as S
from geomtoy.registry import SAE_ACTIVATIONS, SYNTHETIC

F = S.Field

MAX_DEPTH = 3
"""The deepest synthbench hierarchy: levels below the roots (4 levels, SynthSAEBench-16k's);
the sampler makes one parent-to-child pass per level (geomtoy.sae.source)."""

SYNTHBENCH_KNOBS: dict[str, tuple] = {
    "zipf_exponent": (C.number(0.0, strict=True), 0.5, "Zipf exponent of p_i"),
    "p_max": (C.probability, 0.4, "largest firing probability"),
    "p_min": (C.probability, 5e-4, "smallest firing probability"),
    "roots": (C.integer(0), 128, "hierarchy trees"),
    "branching": (C.integer(1), 4, "children per hierarchy node"),
    "depth": (C.integer(1), 3, f"hierarchy levels below the roots (at most {MAX_DEPTH})"),
    "correlation_rank": (C.integer(0), 25, "rank of the correlation factor"),
    "correlation_scale": (C.number(0.0), 0.1, "scale of the correlation factor"),
    "magnitude_start": (C.number(0.0, strict=True), 5.0, "mean magnitude, most frequent"),
    "magnitude_end": (C.number(0.0, strict=True), 4.0, "mean magnitude, rarest"),
    "std_mean": (C.number(), 0.5, "magnitude std: folded normal mean"),
    "std_std": (C.number(0.0), 0.5, "magnitude std: folded normal std"),
    "orthogonalise_steps": (C.integer(0), 100, "Adam steps orthogonalising W"),
    "orthogonalise_lr": (C.number(0.0), 3e-4, "their learning rate"),
}
"""The synthbench source's knobs, the keys source.<knob>: (check, default, meaning); the
defaults are SynthSAEBench-16k's (geomtoy.sae.source.benchmark reads them)."""

FIELDS: dict[str, S.Field] = {
    "name": S.FIELDS["name"],
    "description": S.FIELDS["description"],
    "root_seed": S.FIELDS["root_seed"],
    "source.results": F(C.text, S.REQUIRED, False, f"toy results directory, or {SYNTHETIC}"),
    "source.instances": F(C.choice(("best", "all")), "best", False, "toy models read"),
    "source.n_features": F(C.integer(1), 40, False, "synthetic: n directions"),
    "source.n_hidden": F(C.integer(1), 10, False, "synthetic: m dimensions"),
    "source.feature_probability": F(
        C.per_feature(C.probability, "probability in (0, 1]"), 0.05, False, "synthetic: p"
    ),
    "source.structure": F(C.choice(S.STRUCTURES), "independent", False, "synthetic sets"),
    "source.set_size": F(C.integer(1), 1, False, "synthetic: features per set"),
    "source.magnitude": F(C.choice(S.MAGNITUDES), "uniform", False, "synthetic: values"),
    "source.dictionaries": F(C.integer(1), 1, False, "synthetic: dictionaries (seeds 0, 1, ...)"),
    **{
        f"source.{k}": F(check, default, False, f"synthbench: {doc}")
        for k, (check, default, doc) in SYNTHBENCH_KNOBS.items()
    },
    "sae.width": F(C.integer(1), S.REQUIRED, True, "latents"),
    "sae.activation": F(C.choice(SAE_ACTIVATIONS), "relu", True, " | ".join(SAE_ACTIVATIONS)),
    "sae.l1_coefficient": F(C.number(0.0), 0.0, True, "L1 (jumprelu: L0) penalty weight"),
    "sae.k": F(C.integer(1), 1, True, "active latents per sample (topk, batchtopk, matryoshka)"),
    "sae.jumprelu_threshold": F(
        C.number(0.0, strict=True), 0.01, True, "jumprelu: initial threshold"
    ),
    "sae.target_l0": F(C.number(0.0), 0.0, True, "L0 to reach: k, or the coefficient steered"),
    "sae.resample_every": F(C.integer(0), 2500, True, "steps between dead-latent checks (0: off)"),
    "sae.resample_until": F(C.number(0.0), 0.5, True, "fraction of steps with resampling"),
    "sae.resample_scale": F(C.number(0.0), 0.2, True, "resampled encoder-row scale"),
    "train.steps": S.FIELDS["train.steps"],
    "train.batch_size": S.FIELDS["train.batch_size"],
    "train.lr": S.FIELDS["train.lr"],
    "train.optimizer": F(C.choice(S.OPTIMIZERS), "adam", True, "optimizer"),
    "train.schedule": S.FIELDS["train.schedule"],
    "train.seeds": S.FIELDS["train.seeds"],
    "train.eval_samples": F(C.integer(1), 2**16, True, "samples of the final statistics"),
    "train.sampler": S.FIELDS["train.sampler"],
    "train.chunk_steps": S.FIELDS["train.chunk_steps"],
    "train.checkpoint_every": S.FIELDS["train.checkpoint_every"],
    "train.block_size": S.FIELDS["train.block_size"],
}
"""Every key of an SAE sweep file: its check, default, whether it may be a grid axis and
what it means (the toy sweeps' Field of geomtoy.spec)."""

SECTIONS = ("source", "sae", "train")
"""The tables of an SAE sweep file."""

STATIC = {
    "width": "sae.width",
    "activation": "sae.activation",
    "resample_every": "sae.resample_every",
    "resample_until": "sae.resample_until",
    "resample_scale": "sae.resample_scale",
    "steps": "train.steps",
    "batch_size": "train.batch_size",
    "optimizer": "train.optimizer",
    "schedule": "train.schedule",
    "eval_samples": "train.eval_samples",
    "sampler": "train.sampler",
}
"""SAE keys that fix the compiled program: geomtoy.sae.train.SAEShape field <- sweep key
(the other axes are per-instance leaves)."""
