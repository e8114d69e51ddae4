"""Sparse autoencoders on toy models' hidden activations, thousands at once.

`model` holds the math of one SAE, `source` what it reads, `train` the engine
(jit(vmap(scan)) over SAE instances), `evaluate` the statistics on fresh samples;
scores against the true features are in geomtoy.geometry.recovery.
"""
