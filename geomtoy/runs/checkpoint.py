"""Checkpoints of the block in training: its state, chunks done, curves and snapshots.

A checkpoint is one .npz (written atomically) holding the state's pytree leaves in order,
the block's instance ids and the sweep's fingerprint; one that does not match the block
being trained (other instances, another sweep, other leaf shapes) is discarded.
"""

from __future__ import annotations

from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from geomtoy.results import integrity
from geomtoy.results.store import atomic_save_npz


def stack_snapshots(snaps: list[dict]) -> dict[str, np.ndarray]:
    """Per-chunk snapshots [{field: (I, ...)}] as {field: (I, S, ...)}."""
    if not snaps:
        return {}
    return {f: np.stack([s[f] for s in snaps], axis=1) for f in snaps[0]}


def save(path: Path, ids, fingerprint: str, state, chunks_done: int, curves, snaps=()) -> None:
    leaves = jax.device_get(jax.tree_util.tree_leaves(state))
    arrays = {f"leaf_{i:03d}": np.asarray(a) for i, a in enumerate(leaves)}
    arrays |= {
        "fingerprint": np.asarray(fingerprint),
        "instance": np.asarray(ids),
        "chunks_done": np.asarray(chunks_done),
        "curve_loss": np.stack(curves, axis=1),
    }
    arrays |= {f"snapshot_{k}": v for k, v in stack_snapshots(list(snaps)).items()}
    atomic_save_npz(path, integrity.with_checksum(arrays))


def load(path: Path, ids, fingerprint: str, structure, snapshots: bool = False):
    """(state, chunks_done, curves, snapshots) from a checkpoint matching this block, else
    None.

    `structure()` gives the state's pytree of ShapeDtypeStructs (jax.eval_shape of
    init_state; called only when a checkpoint exists, since it traces init): a checkpoint
    whose leaves do not match it is discarded, and so is one without a snapshot per chunk
    done when `snapshots` is on.
    """
    if not path.exists():
        return None
    try:
        z = integrity.read_npz(path, ("fingerprint", "instance", "chunks_done"), checksum=True)
        leaves, treedef = jax.tree_util.tree_flatten(structure())
        saved = [z[f"leaf_{i:03d}"] for i in range(len(leaves))]
        ok = (
            str(z["fingerprint"]) == fingerprint
            and np.array_equal(z["instance"], ids)
            and all(s.shape == a.shape and s.dtype == a.dtype for s, a in zip(saved, leaves))
            and f"leaf_{len(leaves):03d}" not in z
        )
        done = int(z["chunks_done"])
        stacked = {k[len("snapshot_") :]: v for k, v in z.items() if k.startswith("snapshot_")}
        if snapshots:
            ok = (
                ok
                and "W" in stacked
                and all(v.shape[:2] == (len(ids), done) for v in stacked.values())
            )
    except (integrity.Damaged, KeyError, ValueError):  # train the block from the start;
        ok = False  # the next checkpoint replaces the file
    if not ok:
        return None
    state = jax.tree_util.tree_unflatten(treedef, [jnp.asarray(a) for a in saved])
    curves = list(z["curve_loss"].T)
    snaps = [{f: v[:, j] for f, v in stacked.items()} for j in range(done)] if snapshots else []
    return state, done, curves, snaps
