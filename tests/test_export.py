"""geomtoy export --format safetensors: the same arrays back through the safetensors
library, from both the library's writer and the built-in one; bad input exits 2."""

import json

import numpy as np
import pytest

from geomtoy import cli
from geomtoy.results import export
from geomtoy.results import store as results


@pytest.fixture(scope="module")
def phase_dir(smoke_results):
    root, codes = smoke_results
    assert codes["phase_2x1"] == 0
    return root / "phase_2x1"


def test_export_round_trips_weights_and_grid(phase_dir, tmp_path, capsys):
    st = pytest.importorskip("safetensors.numpy")
    out = tmp_path / "phase.safetensors"
    assert cli.main(["export", str(phase_dir), "--out", str(out)]) == 0
    res = results.open_results(phase_dir)
    loaded = st.load_file(out)
    np.testing.assert_array_equal(loaded["W"], res.params["W"])
    np.testing.assert_array_equal(loaded["b"], res.params["b"])
    np.testing.assert_array_equal(loaded["loss"], res.column("loss"))
    assert loaded["W"].shape == (res.instances.num_rows, 1, 2)  # (I, m, n), ARENA's W
    from safetensors import safe_open

    with safe_open(out, framework="numpy") as f:
        meta = f.metadata()
    grid = json.loads(meta["grid"])
    np.testing.assert_array_equal(
        grid["data.varied_importance"], res.column("data.varied_importance")
    )
    assert meta["sweep"] == "phase_2x1" and json.loads(meta["kinds"]) == ["relu_output"]


def test_builtin_writer_matches_the_format(phase_dir):
    st = pytest.importorskip("safetensors.numpy")
    tensors, metadata = export.tensors_and_metadata(results.open_results(phase_dir))
    data = export.safetensors_bytes(tensors, metadata)
    loaded = st.load(data)
    assert set(loaded) == set(tensors)
    for name, a in tensors.items():
        np.testing.assert_array_equal(loaded[name], a)
        assert loaded[name].dtype == a.dtype


def test_export_bad_input_exits_2(tmp_path, phase_dir, capsys):
    assert cli.main(["export", str(tmp_path / "nothing")]) == 2
    assert (
        cli.main(["export", str(phase_dir), "--format", "onnx", "--out", str(tmp_path / "x")]) == 2
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and "onnx" in err[1]
    assert not (tmp_path / "x").exists()
