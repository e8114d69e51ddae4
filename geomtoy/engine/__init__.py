"""The engine: the compiled programs that train thousands of models at once.

rng (the fold_in key tree), data (on-device samplers, finite datasets), models and toy (the
toy family's one-instance math), finite and fullbatch (the finite-data family's), families
(the one family contract and its registry; toy and finite register here, the SAEs in
geomtoy.sae.family), optim (the optimizer recipe), train (the compiled programs and the one
chunk loop of every family), parallel (devices,
processes, the instance mesh), compile_cache (the persistent compilation cache). Imports
only stages at or below its own (the vocabulary, sweep/, geometry/, results/: a family
says how its tables are assembled); never runs/ or the front doors.
"""

from geomtoy.engine.families import finite as _finite  # noqa: F401  (registers "finite")
from geomtoy.engine.families import toy as _toy  # noqa: F401  (registers "toy")
