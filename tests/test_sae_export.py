"""SAE results for the tools researchers use: `to_xarray` on every bundled SAE sweep, and
`geomtoy export --format saelens` (one folder per SAE in SAELens's layout), read back with
the safetensors library and checked against geomtoy's own SAE forward pass."""

import json
import sys
from pathlib import Path

import numpy as np
import pytest

from geomtoy import cli
from geomtoy.results import export, frames
from geomtoy.results import store as results
from geomtoy.sweep.grammar import is_sae_sweep

sys.path.insert(0, str(Path(__file__).resolve().parent))
import reference  # noqa: E402

SAE_SWEEPS = sorted(
    p.stem
    for p in (Path(__file__).resolve().parents[1] / "sweeps").glob("*.toml")
    if is_sae_sweep(p)
)


@pytest.mark.parametrize("name", SAE_SWEEPS)
def test_to_xarray_on_every_bundled_sae_sweep(name, smoke_results):
    """Every SAE is one cell of (toy, SAE axes, seed); the cell holds its own row's values,
    the per-SAE share and the per-feature flags of recovered_0.9 side by side."""
    pytest.importorskip("xarray")
    root, codes = smoke_results
    assert codes[name] == 0
    res = frames.open_results(root / name)
    ds = res.to_xarray()
    inst, feats = res.instances, res.features
    assert ds.sizes["feature"] == feats["feature"].nunique()
    assert int(ds["mse"].notnull().sum()) == len(inst)
    for _, row in inst.iterrows():
        cell = ds.sel({d: row[d] for d in res.dims})
        assert float(cell["mse"]) == row["mse"]
        assert float(cell["recovered_0.9"]) == row["recovered_0.9"]
        flags = feats[feats["instance"] == row["instance"]].sort_values("feature")
        got = cell["feature_recovered_0.9"].sel(feature=flags["feature"].to_numpy()).to_numpy()
        np.testing.assert_array_equal(got, flags["recovered_0.9"].to_numpy())


@pytest.fixture(scope="module")
def exported(smoke_results, tmp_path_factory):
    """Every bundled SAE sweep exported with --format saelens: {name: (results, folder)}."""
    root, _ = smoke_results
    out = {}
    for name in SAE_SWEEPS:
        folder = tmp_path_factory.mktemp("saelens") / name
        assert (
            cli.main(["export", str(root / name), "--format", "saelens", "--out", str(folder)]) == 0
        )
        out[name] = (results.open_results(root / name), folder)
    return out


@pytest.mark.parametrize("name", SAE_SWEEPS)
def test_saelens_folders_load_into_the_documented_shapes(name, exported):
    st = pytest.importorskip("safetensors.numpy")
    res, folder = exported[name]
    p, I = res.params, res.meta["n_instances"]
    folders = sorted(folder.iterdir())
    assert len(folders) == I
    activations = export._setting(res, "sae.activation")
    for i, sub in enumerate(folders):
        cfg = json.loads((sub / "cfg.json").read_text())
        t = st.load_file(sub / "sae_weights.safetensors")
        w, m = int(p["width"][i]), p["W_enc"].shape[2]
        assert (cfg["d_in"], cfg["d_sae"]) == (m, w)
        assert cfg["architecture"] == export.ARCHITECTURES[activations[i]]
        assert cfg["apply_b_dec_to_input"] is True and cfg["dtype"] == "float32"
        shapes = {"W_enc": (m, w), "W_dec": (w, m), "b_enc": (w,), "b_dec": (m,)}
        if cfg["architecture"] == "jumprelu":
            shapes["threshold"] = (w,)
        assert {k: v.shape for k, v in t.items()} == shapes
        assert all(v.dtype == np.float32 for v in t.values())
        np.testing.assert_array_equal(t["W_enc"], p["W_enc"][i, :w].T.astype(np.float32))
        np.testing.assert_array_equal(t["W_dec"], p["W_dec"][i, :, :w].T.astype(np.float32))


@pytest.mark.parametrize("name", SAE_SWEEPS)
def test_saelens_forward_pass_is_geomtoys(name, exported):
    """SAELens's computation on the exported tensors, (x - b_dec) W_enc + b_enc, then the
    architecture's activation, then f W_dec + b_dec, equals geomtoy's SAE (the NumPy
    reference of tests/reference.py; BatchTopK, Matryoshka and JumpReLU as the JumpReLU at
    their thresholds)."""
    st = pytest.importorskip("safetensors.numpy")
    res, folder = exported[name]
    p = res.params
    h = np.random.default_rng(0).normal(size=(16, p["W_enc"].shape[2])).astype(np.float32)
    activations = export._setting(res, "sae.activation")
    for i, sub in enumerate(sorted(folder.iterdir())):
        cfg = json.loads((sub / "cfg.json").read_text())
        t = st.load_file(sub / "sae_weights.safetensors")
        w = cfg["d_sae"]
        pre = (h - t["b_dec"]) @ t["W_enc"] + t["b_enc"]
        if cfg["architecture"] == "topk":
            kth = -np.sort(-pre, axis=1)[:, cfg["k"] - 1 : cfg["k"]]
            f = np.where(pre >= kth, np.maximum(pre, 0), 0)
        elif cfg["architecture"] == "jumprelu":
            f = np.where(pre > t["threshold"], np.maximum(pre, 0), 0)
        else:
            f = np.maximum(pre, 0)
        h_hat = f @ t["W_dec"] + t["b_dec"]
        args = [p["W_enc"][i, :w], p["b_enc"][i, :w], p["W_dec"][i, :, :w], p["b_dec"][i], h.T]
        if activations[i] in ("batchtopk", "matryoshka_batchtopk", "jumprelu"):
            # evaluated as a JumpReLU: at the running threshold, or at the learned ones
            theta = p["threshold"][i]
            if activations[i] == "jumprelu":
                theta = np.exp(p["log_threshold"][i, :w])[:, None]
            ref_pre = args[0] @ (h.T - args[3][:, None]) + args[1][:, None]
            ref_f = np.where(ref_pre > theta, np.maximum(ref_pre, 0), 0)
            D = args[2] / np.linalg.norm(args[2], axis=0, keepdims=True)
            ref_h_hat = D @ ref_f + args[3][:, None]
        else:
            _, ref_f, ref_h_hat = reference.sae_forward(*args, activations[i], cfg.get("k", 1))
        np.testing.assert_allclose(f, ref_f.T, rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(h_hat, ref_h_hat.T, rtol=1e-4, atol=1e-5)


def test_saelens_load_from_disk(exported):
    sae_lens = pytest.importorskip("sae_lens")
    res, folder = exported["sae_pentagon"]
    sub = sorted(folder.iterdir())[0]
    sae = sae_lens.SAE.load_from_disk(str(sub), device="cpu")
    w, m = int(res.params["width"][0]), res.params["W_enc"].shape[2]
    assert tuple(sae.W_enc.shape) == (m, w) and tuple(sae.W_dec.shape) == (w, m)


def test_saelens_refuses_a_toy_sweep_and_a_foreign_folder(smoke_results, tmp_path, capsys):
    root, _ = smoke_results
    assert cli.main(["export", str(root / "pentagon"), "--format", "saelens"]) == 2
    assert "not an SAE results directory" in capsys.readouterr().err
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep")
    argv = ["export", str(root / "sae_pentagon"), "--format", "saelens", "--out"]
    assert cli.main([*argv, str(tmp_path / "mine")]) == 2
    assert (tmp_path / "mine" / "notes.txt").read_text() == "keep"


def test_stacked_sae_export_uses_saelens_orientation(exported):
    """--format safetensors on an SAE sweep: SAELens's names in SAELens's orientation, with
    a leading instance axis and the padding `width` names."""
    res, _ = exported["sae_pentagon"]
    tensors, metadata = export.tensors_and_metadata(res)
    I, W, m = res.params["W_enc"].shape
    assert tensors["W_enc"].shape == (I, m, W) and tensors["W_dec"].shape == (I, W, m)
    np.testing.assert_array_equal(tensors["W_enc"][0], res.params["W_enc"][0].T)
    assert "d_in" in metadata["layout"] and tensors["width"].shape == (I,)
