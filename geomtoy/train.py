"""`geomtoy.train`: the engine's public names at the import path users rely on.

The engine itself lives in geomtoy.engine.train; this module only re-exports it.
"""

from geomtoy.engine.train import (
    AUTO,
    HParams,
    Shape,
    TrainResult,
    TrainState,
    evaluate,
    init_state,
    is_diverged,
    lower_chunk,
    lower_evaluate,
    lower_init,
    programs,
    run_chunks,
    step_bytes,
    train_chunk,
    train_instances,
)

__all__ = [
    "AUTO",
    "HParams",
    "Shape",
    "TrainResult",
    "TrainState",
    "evaluate",
    "init_state",
    "is_diverged",
    "lower_chunk",
    "lower_evaluate",
    "lower_init",
    "programs",
    "run_chunks",
    "step_bytes",
    "train_chunk",
    "train_instances",
]
