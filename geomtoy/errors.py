"""The one exception of bad input, shared by every layer (no imports, so NumPy-only modules
such as geomtoy.results can raise it without the engine)."""

from __future__ import annotations

from pathlib import Path


class SweepError(ValueError):
    """Bad input: one line naming the file, the key and the reason (exit status 2)."""

    def __init__(self, file: str | Path, key: str | None, reason: str):
        self.file, self.key, self.reason = str(file), key, reason
        parts = [self.file] + ([key] if key else []) + [reason]
        super().__init__(": ".join(" ".join(str(p).split()) for p in parts))
