"""Export a results directory's models for the PyTorch interpretability stack (safetensors).

`geomtoy export DIR --format safetensors [--out FILE]` writes one file holding every
instance (layout in docs/export.md):

    W      (I, m, n) float32   encoder; columns W[i, :, j] are feature j's direction
    b      (I, n)    float32   output bias
    W2     (I, n, m) float32   decoder of the abs model only (the others are tied: W^T)
    loss, instance, seed (I,); feature_probability, importance (I, n); lr, weight_decay,
    n_features, n_hidden (I,)

and, as string metadata, the sweep name, model kinds, the resolved spec and the grid value
of every instance (JSON, keyed by dotted key). W is ARENA's `W` (n_inst, d_hidden,
n_features) and b its `b_final`; the Anthropic notebook's W is `W.transpose(0, 2, 1)`.
The `safetensors` package writes the file when installed; otherwise the writer below does
(the format is an 8-byte header length, a JSON header, then the raw little-endian bytes).
"""

from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np

from geomtoy import __version__

from geomtoy.results import store as results
from geomtoy.spec import SweepError

FORMATS = ("safetensors",)

_DTYPES = {
    np.dtype("float32"): "F32",
    np.dtype("float64"): "F64",
    np.dtype("int64"): "I64",
    np.dtype("int32"): "I32",
    np.dtype("bool"): "BOOL",
}
_PER_INSTANCE = ("loss", "instance", "seed")


def tensors_and_metadata(res: results.Results) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """The arrays and string metadata of one results directory's export."""
    tensors = {k: np.ascontiguousarray(v) for k, v in res.params.items()}
    for name in ("W", "b", "W2"):
        if name in tensors:
            tensors[name] = tensors[name].astype(np.float32)
    for name in _PER_INSTANCE:
        tensors[name] = np.ascontiguousarray(res.column(name))
    axes = list(res.meta.get("axes", {}))
    grid = {a: [_plain(v) for v in res.column(a)] for a in axes}
    kinds = sorted({str(g["shape"].get("kind", "")) for g in res.meta.get("groups", [])} - {""})
    metadata = {
        "format": "geomtoy-1",
        "geomtoy_version": __version__,
        "sweep": res.meta["name"],
        "kinds": json.dumps(kinds),
        "layout": "W (I, m, n): columns are features (ARENA W; notebook W^T); b (I, n) "
        "(ARENA b_final); W2 (I, n, m) for abs models",
        "grid": json.dumps(grid),
        "spec": json.dumps(res.meta.get("spec", {})),
    }
    return tensors, metadata


def _plain(value):
    return value.item() if isinstance(value, np.generic) else value


def safetensors_bytes(tensors: dict[str, np.ndarray], metadata: dict[str, str]) -> bytes:
    """The safetensors encoding of `tensors` (C order, little-endian, no gaps)."""
    header: dict = {"__metadata__": metadata}
    chunks, offset = [], 0
    for name in sorted(tensors):
        a = np.ascontiguousarray(tensors[name])
        if a.dtype not in _DTYPES:
            raise TypeError(f"{name}: dtype {a.dtype} has no safetensors code here")
        data = a.astype(a.dtype.newbyteorder("<"), copy=False).tobytes()
        header[name] = {
            "dtype": _DTYPES[a.dtype],
            "shape": list(a.shape),
            "data_offsets": [offset, offset + len(data)],
        }
        chunks.append(data)
        offset += len(data)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)  # the data start 8-byte aligned
    return struct.pack("<Q", len(text)) + text + b"".join(chunks)


def export(path: str | Path, out: str | Path | None = None, fmt: str = "safetensors") -> Path:
    """Write the export of results directory `path` to `out` (default `<path>.safetensors`
    beside it); SweepError for bad input, before anything is written."""
    if fmt not in FORMATS:
        raise SweepError(path, "--format", f"unknown format {fmt!r}; one of {', '.join(FORMATS)}")
    res = results.open_results(path)
    out = Path(out) if out is not None else Path(str(res.path).rstrip("/") + ".safetensors")
    if out.is_dir():
        raise SweepError(out, None, "is a directory; give the file to write")
    try:  # the tables are checked; what they hold beyond that may still not fit
        tensors, metadata = tensors_and_metadata(res)
        try:
            from safetensors.numpy import save

            data = save(tensors, metadata=metadata)
        except ModuleNotFoundError:
            data = safetensors_bytes(tensors, metadata)
    except (KeyError, TypeError, ValueError, AttributeError, RecursionError, MemoryError) as e:
        why = " ".join(str(e).split())[:100] or type(e).__name__
        raise SweepError(res.path, None, f"damaged, cannot be exported ({why})") from None
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        results.atomic_write_bytes(out, data)
    except OSError as e:
        raise SweepError(out, None, f"cannot write: {e.strerror or e}") from None
    return out
