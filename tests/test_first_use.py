"""What a new user meets in the first hour (issue 27): start-up without JAX, the package's
addresses, --log wandb on a fresh --out, suggestions and plain refusals, the results
format check, parquet metadata, and the explorer's page left alone."""

import json
import os
import subprocess
import sys
import tomllib
import types
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from geomtoy import __version__, cli
from geomtoy.results import store

ROOT = Path(__file__).resolve().parents[1]
TINY = """
name = "tiny"
[model]
n_features = 3
n_hidden = 2
[data]
feature_probability = 0.3
[train]
steps = 40
batch_size = 32
eval_samples = 256
chunk_steps = 20
seeds = 2
[grid]
"data.feature_probability" = [0.3, 0.05]
"train.lr" = [1e-3, 3e-3]
"""
N_INSTANCES = 8


def run_cli(argv) -> int:
    try:
        return cli.main([str(a) for a in argv])
    except SystemExit as e:
        return e.code


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """A complete results directory of a 2-instance sweep, and its sweep file."""
    d = tmp_path_factory.mktemp("first_use")
    sweep = d / "tiny.toml"
    sweep.write_text(TINY)
    assert run_cli(["run", sweep, "--out", d / "tiny", "--quiet"]) == 0
    return sweep, d / "tiny"


# ---------------------------------------------------------------- start-up and metadata


@pytest.mark.parametrize(
    "argv, code, numpy",
    [
        (["--version"], 0, False),
        (["--help"], 0, False),
        (["explore", "--help"], 0, False),
        (["run", "pentagonn"], 2, True),  # the sweep grammar reads with NumPy
        (["run", "pentagon", "--set", "train.stepz=1"], 2, True),
    ],
)
def test_commands_that_train_nothing_start_no_jax(argv, code, numpy):
    """--version, --help and one-line errors start no JAX (a subprocess: this one has JAX
    already); --version and --help not even NumPy."""
    probe = (
        "import sys\nfrom geomtoy import cli\n"
        "try:\n    code = cli.main(sys.argv[1:])\nexcept SystemExit as e:\n    code = e.code\n"
        "print('MODULES', code, 'jax' in sys.modules, 'numpy' in sys.modules, file=sys.stderr)\n"
    )
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    done = subprocess.run(
        [sys.executable, "-c", probe, *argv], capture_output=True, text=True, env=env, cwd=ROOT
    )
    last = done.stderr.strip().splitlines()[-1]
    assert last == f"MODULES {code} False {numpy}", done.stderr


def _imported_modules(importtime_stderr: str) -> set[str]:
    """The modules a `python -X importtime` run imported (one `import time:` line each)."""
    rows = (ln.removeprefix("import time:").split("|") for ln in importtime_stderr.splitlines())
    return {r[2].strip() for r in rows if len(r) == 3 and r[0].strip().isdigit()}


def _jax_modules(names: set[str]) -> set[str]:
    return {m for m in names if m.split(".")[0] in ("jax", "jaxlib")}


def test_the_jax_import_check_can_fail():
    log = "import time: self [us] | cumulative | imported package\n"
    log += "import time:       120 |        120 |   numpy\n"
    log += "import time:         9 |          9 |     jax._src.core\n"
    assert _imported_modules(log) == {"numpy", "jax._src.core"}
    assert _jax_modules(_imported_modules(log)) == {"jax._src.core"}


@pytest.mark.parametrize(
    "argv, shows",
    [
        (["keys"], "sae.activation  ("),
        (["keys", "--markdown"], "| `sae.width` |"),
        (["keys", "--help"], "--markdown"),
        (["sweeps"], "pentagon"),
        (["--help"], "keys"),
        (["run", "--help"], "--scale"),
    ],
)
def test_python_m_geomtoy_light_commands_import_no_jax(argv, shows):
    """`python -m geomtoy keys` (the sweep-key reference, SAE keys included), `sweeps` and
    the help pages read only JAX-free vocabulary: the whole process, as a user starts it,
    imports no jax module (-X importtime lists every import)."""
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "geomtoy", *argv],
        capture_output=True, text=True, env=env, cwd=ROOT,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    assert shows in done.stdout
    imported = _imported_modules(done.stderr)
    assert "geomtoy.cli" in imported  # the log was read
    assert not _jax_modules(imported), sorted(_jax_modules(imported))[:5]


def test_package_urls_point_at_nothing_else():
    """github.com/geomtoy/geomtoy is an unrelated TypeScript library of the same name."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    urls = project.get("urls", {})
    assert urls and all(u.startswith("https://") for u in urls.values())
    assert not [u for u in urls.values() if "github.com/geomtoy/geomtoy" in u.lower()]
    assert "github.com/geomtoy/geomtoy" not in (ROOT / "README.md").read_text().lower()


def test_parquet_tables_carry_version_format_and_sweep(tiny):
    _, out = tiny
    for table in ("instances.parquet", "features.parquet"):
        meta = pq.read_schema(out / table).metadata
        assert meta[b"geomtoy_version"] == __version__.encode()
        assert meta[b"geomtoy_format"] == str(store.FORMAT).encode()
        assert meta[b"sweep"] == b"tiny"


def test_version_moved_past_the_first_release():
    assert tuple(int(x) for x in __version__.split(".")) >= (0, 2, 0)


# ---------------------------------------------------------------- refusals and suggestions


def test_a_misspelt_bundled_sweep_gets_a_suggestion(capsys):
    assert run_cli(["run", "pentagonn", "--dry-run"]) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and "did you mean pentagon?" in err[0], err


@pytest.mark.parametrize("command", ["analyze", "export", "merge"])
def test_a_missing_directory_is_called_missing(command, tmp_path, capsys):
    assert run_cli([command, tmp_path / "nowhere"]) == 2
    err = capsys.readouterr().err.splitlines()
    assert err == [f"geomtoy: error: {tmp_path / 'nowhere'}: no such directory"]


def test_a_future_results_format_is_refused_and_left_alone(tiny, tmp_path, capsys):
    sweep, out = tiny
    future = tmp_path / "future"
    future.mkdir()
    meta = json.loads((out / "meta.json").read_text()) | {"format": store.FORMAT + 1}
    (future / "meta.json").write_text(json.dumps(meta))
    before = (future / "meta.json").read_bytes()
    for argv in (["analyze", future], ["run", sweep, "--out", future], ["export", future]):
        assert run_cli(argv) == 2
        err = capsys.readouterr().err.splitlines()
        assert len(err) == 1 and "newer than this geomtoy" in err[0], err
    assert (future / "meta.json").read_bytes() == before
    assert sorted(os.listdir(future)) == ["meta.json"]


def test_dry_run_over_another_scale_plans_and_notes_the_refusal(tiny, capsys):
    sweep, out = tiny
    before = sorted(os.listdir(out))
    assert run_cli(["run", sweep, "--out", out, "--set", "train.steps=60", "--dry-run"]) == 0
    printed = capsys.readouterr().out
    assert f"tiny: {N_INSTANCES} instances" in printed and "would stop" in printed
    assert sorted(os.listdir(out)) == before


def test_hparams_refuse_a_probability_outside_0_1():
    from geomtoy import HParams

    with pytest.raises(ValueError, match=r"feature_probability: 1.5 is outside \(0, 1\]"):
        HParams.create(2, 3, feature_probability=1.5)
    with pytest.raises(ValueError, match="outside"):
        HParams.create(2, 3, feature_probability=[0.5, 0.0, 0.5])
    HParams.create(2, 3, feature_probability=1.0)


def test_explore_replaces_its_own_page_but_no_other_file(tiny, tmp_path, capsys):
    _, out = tiny
    page = tmp_path / "explorer.html"
    page.write_text("my notes")
    assert run_cli(["explore", out, "--out", page]) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and "not an explorer page" in err[0] and "--overwrite" in err[0]
    assert page.read_text() == "my notes"
    assert run_cli(["explore", out, "--out", page, "--overwrite"]) == 0
    capsys.readouterr()
    assert run_cli(["explore", out, "--out", page]) == 0  # its own page: replaced, said so
    assert "replaced" in capsys.readouterr().out


# ---------------------------------------------------------------- --log wandb


def fake_wandb(created: list):
    """A wandb that, as the real one, makes `wandb/` in its directory (dir, else
    WANDB_DIR, else the working directory) when a run starts."""
    logged = []

    def init(**kw):
        where = Path(kw.get("dir") or os.environ.get("WANDB_DIR") or os.getcwd()) / "wandb"
        (where / "offline-run-1").mkdir(parents=True, exist_ok=True)
        created.append(kw)
        return types.SimpleNamespace(
            log=lambda r, step: logged.append((step, r)), finish=lambda: None
        )

    return types.SimpleNamespace(init=init, logged=logged)


def test_log_wandb_on_a_fresh_out_completes_and_reruns(tiny, tmp_path, monkeypatch, capsys):
    sweep, _ = tiny
    runs: list = []
    fake = fake_wandb(runs)
    monkeypatch.setitem(sys.modules, "wandb", fake)
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("WANDB_DIR", raising=False)
    monkeypatch.delenv("WANDB_PROJECT", raising=False)
    out = tmp_path / "results" / "tiny"
    argv = ["run", sweep, "--out", out, "--log", "wandb", "--quiet"]
    assert run_cli(argv) == 0
    assert (tmp_path / "wandb").is_dir() and not (out / "wandb").exists()
    assert runs[0]["project"] == "geomtoy" and runs[0]["name"] == "tiny"
    assert fake.logged and fake.logged[-1][0] == N_INSTANCES * 40
    assert run_cli(argv) == 0  # complete: nothing to train, no second wandb run
    assert len(runs) == 1
    assert run_cli([*argv, "--overwrite", "--log-project", "mine"]) == 0
    assert runs[1]["project"] == "mine"
    assert "complete" in capsys.readouterr().out


def test_log_wandb_with_the_real_library_offline(tiny, tmp_path, monkeypatch):
    pytest.importorskip("wandb")
    sweep, _ = tiny
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    monkeypatch.setenv("WANDB_DIR", str(tmp_path / "tracker"))
    (tmp_path / "tracker").mkdir()
    out = tmp_path / "fresh"
    argv = ["run", sweep, "--out", out, "--log", "wandb", "--quiet"]
    assert run_cli(argv) == 0
    assert run_cli(argv) == 0
    assert not (out / "wandb").exists()
    assert list((tmp_path / "tracker" / "wandb").glob("offline-run-*"))
    assert store.open_results(out).meta["n_instances"] == N_INSTANCES


def test_phase_map_names_its_feature_and_has_a_legend(tiny):
    import matplotlib.pyplot as plt

    from geomtoy import open as open_results
    from geomtoy.viz import plot

    res = open_results(tiny[1])
    fig = plot.phase_map(res, "data.feature_probability", "train.lr")
    title = fig.axes[0].get_title()
    assert title == "tiny: feature 2 (the last of 3), best seed per cell"
    legend = fig.legends[0]
    labels = [t.get_text() for t in legend.get_texts()]
    assert labels == [label for label, _, _ in plot.PHASES]
    colours = [h.get_facecolor()[:3] for h in legend.legend_handles]
    np.testing.assert_allclose(colours[0], (0xDD / 255,) * 3, atol=1e-6)  # grey: norm 0
    assert colours[1][2] > colours[1][0] and colours[2][0] > colours[2][2]  # blue, then red
    assert "feature -1" not in title
    plt.close(fig)


# ---------------------------------------------------------------- SAE sweeps and their source

SAE = """
name = "sae_tiny"
[source]
results = "{source}"
[sae]
width = 4
[train]
steps = 20
batch_size = 32
chunk_steps = 20
eval_samples = 256
"""


def test_a_missing_toy_source_names_the_command_that_makes_it(tmp_path, capsys):
    out = tmp_path / "res" / "sae_pentagon"
    assert run_cli(["run", "sae_pentagon", "--scale", "smoke", "--out", out, "--dry-run"]) == 2
    err = capsys.readouterr().err.splitlines()
    command = f"geomtoy run pentagon --scale smoke --out {tmp_path / 'res' / 'pentagon'}"
    assert len(err) == 1 and f"no such directory; run `{command}` first" in err[0], err


def test_sae_header_names_source_and_scale_and_a_larger_scale_warns(tiny, tmp_path, capsys):
    _, source = tiny
    path = tmp_path / "sae_tiny.toml"
    path.write_text(SAE.format(source=source))
    assert run_cli(["run", path, "--scale", "paper", "--out", tmp_path / "p", "--dry-run"]) == 0
    captured = capsys.readouterr()
    warning = captured.err.strip().splitlines()
    assert len(warning) == 1 and warning[0].startswith("geomtoy: warning: sae_tiny at scale paper")
    assert "trained at scale default" in warning[0]
    head = f"sae_tiny: scale paper; source {source} (scale default, 4 toy models)"
    assert captured.out.splitlines()[0] == head
    assert run_cli(["run", path, "--out", tmp_path / "d"]) == 0  # the same scale: no warning
    err = capsys.readouterr().err.splitlines()
    assert not [ln for ln in err if "warning" in ln]
    assert f"; scale default; source {source} (scale default, 4 toy models); backend " in err[0]


def test_train_instances_reports_progress_and_keeps_on_chunk(capsys):
    """geomtoy.train_instances shows its chunks as geomtoy.run does (a tqdm bar in a
    notebook, lines here) and still calls the user's on_chunk with every chunk."""
    import geomtoy

    seen = []
    shape = geomtoy.Shape(n_features=3, n_hidden=2, steps=40, batch_size=32, eval_samples=256)
    hp = geomtoy.HParams.create(2, 3, feature_probability=0.3, seed=[0, 1])
    res = geomtoy.train_instances(
        shape, hp, chunk_steps=20, devices=1, on_chunk=lambda s, l: seen.append(s)
    )
    assert seen == [20, 40] and res.loss.shape == (2,)
    err = capsys.readouterr().err.splitlines()
    assert "train_instances: 2 instances, 1 block; backend " in err[0]
    assert [ln.split("train_instances ")[1].split(" |")[0] for ln in err[1:]] == [
        "block 1/1 step 20/40",
        "block 1/1 step 40/40",
    ]
    geomtoy.train_instances(shape, hp, chunk_steps=20, devices=1, progress=False)
    assert capsys.readouterr().err == ""
