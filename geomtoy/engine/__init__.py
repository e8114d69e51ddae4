"""The engine: the compiled programs that train thousands of models at once.

rng (the fold_in key tree), data (on-device samplers, finite datasets), models and toy (the
toy family's one-instance math), finite and fullbatch (the finite-data family), optim (the
optimizer recipe), train (the family registry and the one chunk loop), parallel (devices,
processes, the instance mesh), compile_cache (the persistent compilation cache). Imports
only the shared vocabulary (geomtoy.spec, registry, checks, errors) and sweep/; never run/,
results/ or the front doors.
"""
