"""The one exception of bad input, shared by every layer (no imports, so NumPy-only modules
such as geomtoy.results.store can raise it without the engine)."""

from __future__ import annotations

from pathlib import Path


class SweepError(ValueError):
    """Bad input: one line naming the file, the key and the reason (exit status 2)."""

    def __init__(self, file: str | Path, key: str | None, reason: str):
        self.file, self.key, self.reason = str(file), key, reason
        parts = [self.file] + ([key] if key else []) + [reason]
        super().__init__(": ".join(" ".join(str(p).split()) for p in parts))


PEER_LOST = (
    "a peer process of this jax.distributed job was lost ({why}); the whole job stops "
    "when one process stops: run the same command on every process again to resume "
    "from the checkpoints"
)
"""The one line for a lost peer (raised by geomtoy.engine.parallel, printed by
geomtoy.runs.jobs.supervise)."""
