"""A run of a sweep: blocks -> the engine's chunk loop -> block files -> tables.

runner (the one runner), directory (the write protocol: plan, lock, checksums, move-aside,
assembly), lock, checkpoint, jobs (job arrays and jax.distributed pods), signals, progress
(terminal, progress.jsonl, trackers), cost, memory and budget (the memory and time model).
The folder is `runs`, not `run`: `geomtoy.run` is the notebook function of the front door.
"""
