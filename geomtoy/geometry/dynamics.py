"""Learning dynamics from weight snapshots (paper §6): jumps of each feature's dimensionality.

A jump of one feature is a monotone run of its D_i curve (resampled at `PER_DECADE` points
per decade of steps; changes below `FLAT` are flat, and one flat point may interrupt a run)
that changes D_i by at least `MIN_JUMP`. Jumps of different features that overlap in time
form one event; an event's loss drop is the mean loss in the `WINDOW` (a factor of steps)
before it minus the mean in the one after.
"""

from __future__ import annotations

import re

import jax
import numpy as np

from geomtoy.geometry.dimensionality import feature_dimensionality

PER_DECADE = 40  # resampling of the D_i curves, points per decade of steps
FLAT = 0.01  # a change of D_i below this between resampled points is flat
MIN_JUMP = 0.15  # smallest change of D_i that counts as a jump
WINDOW = 1.15  # loss windows before/after an event span a factor 1.15 of steps


def dimensionality_over_training(W: np.ndarray) -> np.ndarray:
    """D_i of every snapshot: W (S, m, n) -> (S, n), with geomtoy.geometry."""
    return np.asarray(jax.vmap(feature_dimensionality)(np.asarray(W, np.float32)))


def feature_jumps(D: np.ndarray, steps: np.ndarray) -> list[dict]:
    """Jumps of each feature's D_i (S, n) over the snapshot steps (S,), see the docstring:
    [{feature, start, end (steps), before, after (D_i)}]."""
    if len(steps) < 2:
        return []
    lo, hi = np.log(steps[0]), np.log(steps[-1])
    k = max(2, int(round((hi - lo) / np.log(10) * PER_DECADE)) + 1)
    grid = np.linspace(lo, hi, k)
    out = []
    for i in range(D.shape[1]):
        d = np.interp(grid, np.log(steps), D[:, i])
        delta = np.diff(d)
        sign = np.where(np.abs(delta) > FLAT, np.sign(delta), 0)
        j = 0
        while j < len(sign):
            if sign[j] == 0:
                j += 1
                continue
            a = b = j
            while b + 1 < len(sign) and (
                sign[b + 1] == sign[a]
                or (sign[b + 1] == 0 and b + 2 < len(sign) and sign[b + 2] == sign[a])
            ):
                b += 1
            if abs(d[b + 1] - d[a]) >= MIN_JUMP:
                out.append(
                    {
                        "feature": i,
                        "start": float(np.exp(grid[a])),
                        "end": float(np.exp(grid[b + 1])),
                        "before": float(d[a]),
                        "after": float(d[b + 1]),
                    }
                )
            j = b + 1
    return out


def events(jumps: list[dict], loss: np.ndarray, steps: np.ndarray) -> list[dict]:
    """Jumps overlapping in time merged into events, each with its loss drop."""
    out = []
    for j in sorted(jumps, key=lambda j: (j["start"], j["feature"])):
        if out and j["start"] <= out[-1]["end"]:
            out[-1]["end"] = max(out[-1]["end"], j["end"])
            out[-1]["jumps"].append(j)
        else:
            out.append({"start": j["start"], "end": j["end"], "jumps": [j]})
    for e in out:
        before = loss[(steps >= e["start"] / WINDOW) & (steps <= e["start"])]
        after = loss[(steps >= e["end"]) & (steps <= e["end"] * WINDOW)]
        before = before if len(before) else loss[:1]
        after = after if len(after) else loss[-1:]
        e["loss_drop"] = float(before.mean() - after.mean())
    return out


def all_digons(geometry: str) -> bool:
    """True for a summary string made of digons only ("digon", "4 digon")."""
    return re.fullmatch(r"(\d+ )?digon", geometry) is not None
