"""Sparse autoencoders on toy models' hidden activations, thousands at once.

`model` holds the math of one SAE, `source` what it reads, `train` its init and optimizer
step (the model family "sae" that geomtoy.engine.train vmaps, scans and loops as it does the toy
models), `evaluate` the statistics on fresh samples, `family` its registration and the
tables the one runner (geomtoy.runs.runner) assembles;
scores against the true features are in geomtoy.geometry.recovery.
"""

from geomtoy.sae import family as _family  # noqa: F401  (registers the family "sae")
