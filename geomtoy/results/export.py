"""Export a results directory's models for the PyTorch interpretability stack (safetensors).

`geomtoy export DIR --format saelens [--out DIR]` writes each SAE of an SAE results
directory as SAELens loads one (`SAE.load_from_disk`): a folder with cfg.json and
sae_weights.safetensors, W_enc (d_in, d_sae), W_dec (d_sae, d_in), b_enc, b_dec, unpadded
(`saelens_folders`). `--format safetensors [--out FILE]` writes one file holding every
instance (layout in docs/export.md); for a toy sweep:

    W      (I, m, n) float32   encoder; columns W[i, :, j] are feature j's direction
    b      (I, n)    float32   output bias
    W2     (I, n, m) float32   decoder of the abs model only (the others are tied: W^T)
    loss, instance, seed (I,); feature_probability, importance (I, n); lr, weight_decay,
    n_features, n_hidden (I,)

(an SAE sweep's file stacks its SAEs in SAELens's orientation with a leading instance axis,
W_enc (I, m, width), W_dec (I, width, m), zero-padded to the largest width; `width` (I,)
says how many latents are real), and, as string metadata, the sweep name, model kinds, the resolved spec and the grid value
of every instance (JSON, keyed by dotted key). W is ARENA's `W` (n_inst, d_hidden,
n_features) and b its `b_final`; the Anthropic notebook's W is `W.transpose(0, 2, 1)`.
The `safetensors` package writes the file when installed; otherwise the writer below does
(the format is an 8-byte header length, a JSON header, then the raw little-endian bytes).
"""

from __future__ import annotations

import json
import shutil
import struct
from pathlib import Path

import numpy as np

from geomtoy import __version__
from geomtoy.results import store as results
from geomtoy.spec import SweepError

FORMATS = ("safetensors", "saelens")

_DTYPES = {
    np.dtype("float32"): "F32",
    np.dtype("float64"): "F64",
    np.dtype("int64"): "I64",
    np.dtype("int32"): "I32",
    np.dtype("bool"): "BOOL",
}
_PER_INSTANCE = ("loss", "instance", "seed")
SAE_TENSORS = ("W_enc", "b_enc", "W_dec", "b_dec", "threshold")
TOY_LAYOUT = (
    "W (I, m, n): columns are features (ARENA W; notebook W^T); b (I, n) (ARENA b_final); "
    "W2 (I, n, m) for abs models"
)
SAE_LAYOUT = (
    "SAELens orientation with a leading instance axis: W_enc (I, m, width) = (I, d_in, d_sae), "
    "W_dec (I, width, m), b_enc (I, width), b_dec (I, m), zero-padded to the largest width "
    "(width (I,) latents are real); W, b: the toy model each SAE reads"
)


def tensors_and_metadata(res: results.Results) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """The arrays and string metadata of one results directory's export."""
    tensors = {k: np.ascontiguousarray(v) for k, v in res.params.items()}
    sae = is_sae(res)
    if sae:  # SAELens's orientation: W_enc (I, d_in, d_sae), W_dec (I, d_sae, d_in)
        for name in ("W_enc", "W_dec"):
            tensors[name] = np.ascontiguousarray(np.swapaxes(tensors[name], 1, 2))
    for name in ("W", "b", "W2", *SAE_TENSORS):
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
        "layout": SAE_LAYOUT if sae else TOY_LAYOUT,
        "grid": json.dumps(grid),
        "spec": json.dumps(res.meta.get("spec", {})),
    }
    return tensors, metadata


def is_sae(res: results.Results) -> bool:
    return res.meta.get("family") == "sae"


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
    if fmt == "saelens":
        return write_saelens(res, out)
    out = Path(out) if out is not None else Path(str(res.path).rstrip("/") + ".safetensors")
    if out.is_dir():
        raise SweepError(out, None, "is a directory; give the file to write")
    try:  # the tables are checked; what they hold beyond that may still not fit
        tensors, metadata = tensors_and_metadata(res)
        data = _safetensors_writer()(tensors, metadata)
    except (KeyError, TypeError, ValueError, AttributeError, RecursionError, MemoryError) as e:
        why = " ".join(str(e).split())[:100] or type(e).__name__
        raise SweepError(res.path, None, f"damaged, cannot be exported ({why})") from None
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        results.atomic_write_bytes(out, data)
    except OSError as e:
        raise SweepError(out, None, f"cannot write: {e.strerror or e}") from None
    return out


# ---------------------------------------------------------------- SAELens folders

ARCHITECTURES = {
    "relu": "standard",
    "topk": "topk",
    "batchtopk": "jumprelu",
    "matryoshka_batchtopk": "jumprelu",
    "jumprelu": "jumprelu",
}
"""SAELens's architecture of each SAE activation: BatchTopK and Matryoshka-BatchTopK are
evaluated (by geomtoy and by SAELens's inference SAE) as a JumpReLU at their running
threshold; JumpReLU SAEs carry their learned per-latent thresholds."""


def _setting(res: results.Results, key: str) -> list:
    """Each SAE's value of a dotted SAE-sweep key: its grid column, else the resolved spec."""
    if key in res.instances.column_names:
        return [_plain(v) for v in res.column(key)]
    section, name = key.split(".", 1)
    return [res.meta["spec"][section][name]] * res.meta["n_instances"]


def saelens_folders(res: results.Results) -> dict[str, tuple[dict, dict[str, np.ndarray]]]:
    """{folder name: (cfg.json, tensors)} of every SAE of an SAE results directory, in
    SAELens's layout and without the padding of the stacked params.npz."""
    p, I = res.params, res.meta["n_instances"]
    activation, k = _setting(res, "sae.activation"), _setting(res, "sae.k")
    digits = max(4, len(str(I - 1)))
    out = {}
    for i in range(I):
        w = int(p["width"][i])
        tensors = {
            "W_enc": p["W_enc"][i, :w, :].T,
            "b_enc": p["b_enc"][i, :w],
            "W_dec": p["W_dec"][i, :, :w].T,
            "b_dec": p["b_dec"][i],
        }
        tensors = {n: np.ascontiguousarray(a, dtype=np.float32) for n, a in tensors.items()}
        architecture = ARCHITECTURES[activation[i]]
        cfg = {
            "architecture": architecture,
            "d_in": int(p["W_enc"].shape[2]),
            "d_sae": w,
            "dtype": "float32",
            "device": "cpu",
            "apply_b_dec_to_input": True,  # f = act(W_enc (h - b_dec) + b_enc)
            "normalize_activations": "none",
            "reshape_activations": "none",
            "metadata": _saelens_metadata(res, i),
        }
        if architecture == "topk":
            cfg["k"] = min(int(k[i]), w)
        if activation[i] == "jumprelu":
            tensors["threshold"] = np.exp(p["log_threshold"][i, :w]).astype(np.float32)
        elif architecture == "jumprelu":
            tensors["threshold"] = np.full(w, p["threshold"][i], np.float32)
        out[f"sae-{i:0{digits}d}"] = (cfg, tensors)
    return out


def _saelens_metadata(res: results.Results, i: int) -> dict:
    """What SAELens keeps as the SAE's provenance: the toy model it reads and geomtoy's row."""
    source = res.meta["spec"].get("source", {}).get("results", "")
    return {
        "model_name": f"geomtoy:{source}",
        "hook_name": "h",  # the toy model's hidden vector h = W x
        "geomtoy_version": __version__,
        "geomtoy_sweep": res.meta["name"],
        "geomtoy_instance": int(res.column("instance")[i]),
        "geomtoy_toy_instance": int(res.column("toy")[i]),
    }


def write_saelens(res: results.Results, out: str | Path | None) -> Path:
    """`--format saelens`: one folder per SAE under `out` (default `<DIR>.saelens/`);
    returns `out`. A toy results directory, or an `out` that holds something other than
    an earlier export, is a SweepError before anything is written."""
    if not is_sae(res):
        reason = "not an SAE results directory; --format saelens writes SAEs (see docs/sae.md)"
        raise SweepError(res.path, "--format", reason)
    out = Path(out) if out is not None else Path(str(res.path).rstrip("/") + ".saelens")
    if out.exists() and not (out.is_dir() and _is_saelens_export(out)):
        raise SweepError(
            out, None, "exists and is not a geomtoy SAELens export; give another --out"
        )
    folders = saelens_folders(res)
    save = _safetensors_writer()
    tmp = out.with_name(f".{out.name}.tmp")
    try:
        shutil.rmtree(tmp, ignore_errors=True)
        for name, (cfg, tensors) in folders.items():
            (tmp / name).mkdir(parents=True)
            (tmp / name / "cfg.json").write_text(json.dumps(cfg, indent=1) + "\n")
            (tmp / name / "sae_weights.safetensors").write_bytes(save(tensors, {"format": "pt"}))
        shutil.rmtree(out, ignore_errors=True)
        tmp.rename(out)
    except OSError as e:
        shutil.rmtree(tmp, ignore_errors=True)
        raise SweepError(out, None, f"cannot write: {e.strerror or e}") from None
    return out


def _is_saelens_export(path: Path) -> bool:
    entries = list(path.iterdir())
    return all(e.is_dir() and (e / "cfg.json").is_file() for e in entries)


def _safetensors_writer():
    """The safetensors library's writer when installed, else the one above (same bytes)."""
    try:
        from safetensors.numpy import save
    except ModuleNotFoundError:
        return safetensors_bytes
    return lambda tensors, metadata: save(tensors, metadata=metadata)
