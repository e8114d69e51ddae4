"""SAE sweep files: headers, scales, smoke runs, tables, bad input and resume."""

import re
from pathlib import Path

import numpy as np
import pytest

from geomtoy import cli, spec
from geomtoy.results import store as results
from geomtoy.runs import runner
from geomtoy.sae import family as sae_family
from geomtoy.sae import sweep as sae_sweep
from geomtoy.sweep.grammar import is_sae_sweep
from tests.interrupt import Interrupt, StopAfter

SWEEPS = sorted(
    p for p in (Path(__file__).resolve().parents[1] / "sweeps").glob("*.toml") if is_sae_sweep(p)
)


def test_there_are_sae_sweeps():
    assert {"sae_pentagon", "sae_uniform", "sae_pareto_l1", "sae_pareto_k"} <= {
        p.stem for p in SWEEPS
    }


@pytest.mark.parametrize("path", SWEEPS, ids=lambda p: p.stem)
def test_sae_sweep_header_scales_and_smoke_run(path, smoke_results):
    root, codes = smoke_results
    header = path.read_text().split("\nname = ")[0]
    assert re.search(r"^# Figure", header, re.M) and f"geomtoy run sweeps/{path.name}" in header
    assert "smoke" in header and "paper" in header and " s" in header
    sweeps = {s: sae_sweep.load(path, scale=s, results_root=root) for s in spec.SCALES}
    n = [sweeps[s].n_instances for s in spec.SCALES]
    assert n == sorted(n) and n[0] <= 64
    assert max(g.shape.steps for g in sweeps["smoke"].groups) <= 100
    assert codes[path.stem] == 0
    res = results.open_results(root / path.stem)
    assert res.meta["status"] == "complete" and res.meta["family"] == "sae"
    assert res.instances.num_rows == sweeps["smoke"].n_instances
    n_features = res.params["W"].shape[2]
    assert res.features.num_rows == res.instances.num_rows * n_features
    for axis in sweeps["smoke"].axes:
        assert axis.key in res.instances.column_names
    assert np.isfinite(res.column("mse")).all() and not res.column("diverged").any()
    mmcs = res.column("mmcs")
    assert ((mmcs > -1) & (mmcs <= 1 + 1e-6)).all()


SOURCE_KEYS = {"source": {"results": '"pentagon"'}, "sae": {"width": "4"}}


def _text(extra=None):
    doc = {"": {"name": '"s"'}, **SOURCE_KEYS, "train": {"steps": "20", "chunk_steps": "10"}}
    for section, items in (extra or {}).items():
        doc[section] = doc.get(section, {}) | items
    lines = []
    for section, items in doc.items():
        lines += [f"[{section}]"] if section else []
        lines += [f"{k} = {v}" for k, v in items.items()]
    return "\n".join(lines) + "\n"


BAD = [
    ({"sae": {"widht": "4"}}, "sae.widht", "unknown key (did you mean 'width'?)"),
    ({"sae": {"activation": '"topkk"'}}, "sae.activation", "unknown value 'topkk'"),
    ({"source": {"results": '"nowhere"'}}, "source.results", "no such directory; run `geomtoy"),
    ({"source": {"results": '"abs_3x6"'}}, "source.results", "no feature directions"),
]


@pytest.mark.parametrize("extra, key, reason", BAD)
def test_bad_sae_sweeps_exit_2_with_one_line(extra, key, reason, smoke_results, tmp_path, capsys):
    root, _ = smoke_results
    path = tmp_path / "s.toml"
    path.write_text(_text(extra))
    code = cli.main(["run", str(path), "--out", str(root / "refused"), "--quiet"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and key in err[0] and reason in err[0]
    assert not (root / "refused").exists()


@pytest.mark.slow  # over the fast suite's time budget: make test-all
def test_interrupted_sae_run_resumes_to_the_same_tables(smoke_results, tmp_path):
    root, _ = smoke_results
    path = tmp_path / "s.toml"
    path.write_text(_text({"train": {"block_size": "2", "seeds": "2", "steps": "40",
        "checkpoint_every": "1"}, "grid": {'"sae.l1_coefficient"': "[0.01, 0.1]"}}))  # fmt: skip
    sweep = sae_sweep.load(path, scale="default", results_root=root)
    assert len(sweep.blocks()) == 2
    out = tmp_path / "sae_resumed"
    plan = sae_family.plan(sweep)  # the one runner's view of it
    with pytest.raises(Interrupt):  # 4 chunks a block: stopped in the second block, at the
        runner.run_sweep(plan, out, progress=StopAfter(4 + 3))  # report of its third chunk
    rd = results.ResultsDir(out)
    assert rd.read_meta()["status"] == "running" and rd.block(0).exists()
    with np.load(rd.checkpoint(1)) as z:  # the mid-block checkpoint the resume starts from
        assert int(z["chunks_done"]) == 2
    assert runner.run_sweep(plan, out).action == "resume"
    runner.run_sweep(plan, tmp_path / "sae_fresh")
    a, b = results.open_results(out), results.open_results(tmp_path / "sae_fresh")
    for name in ("mse", "mmcs", "l0", "loss"):
        np.testing.assert_array_equal(a.column(name), b.column(name))
    np.testing.assert_array_equal(a.params["W_dec"], b.params["W_dec"])
    assert runner.run_sweep(plan, out).action == "complete"


def test_sae_dry_run_prints_the_plan_and_trains_nothing(tmp_path, capsys):
    path = next(p for p in SWEEPS if p.stem == "sae_pareto_k")  # reads a synthetic dictionary
    out = tmp_path / "out"
    assert cli.main(["run", str(path), "--scale", "smoke", "--out", str(out), "--dry-run"]) == 0
    sweep = sae_sweep.load(path, scale="smoke")
    head, *lines = capsys.readouterr().out.splitlines()
    assert head == "sae_pareto_k: scale smoke; source synthetic", head
    assert lines[0].startswith(f"sae_pareto_k: {sweep.n_instances:,} SAEs")
    assert f"{len(sweep.blocks())} blocks" in lines[0]
    assert len(lines) == 1 + len(sweep.groups) and not out.exists()
