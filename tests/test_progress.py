"""Progress with a fake clock: the header, compile lines, an ETA that excludes compilation
and counts the groups still to compile, progress.jsonl, and trackers."""

import io
import json
import os
import re

import numpy as np
import pytest

from geomtoy.runs.progress import Progress, backend_line


class Clock:
    def __init__(self):
        self.t = 0.0

    def __call__(self):
        return self.t


def simulate(tmp_path, compile_s=5.0, rate=1000.0, groups=3, chunks=4, chunk_steps=1000):
    """A sweep of `groups` groups of one block each, `chunks` chunks per block: compile
    costs `compile_s` (charged to a group's first chunk), training `rate` model-steps/s.
    Returns [(true seconds left, reported ETA or None)] after every chunk, and the log."""
    clock, out = Clock(), io.StringIO()
    records = []
    p = Progress(out, tty=False, clock=clock, trackers=[records.append], log_every=0)
    total = groups * chunks * chunk_steps
    p.start(
        "demo",
        total=total,
        n_blocks=groups,
        instances=30,
        n_groups=groups,
        out=tmp_path,
        log=tmp_path / "progress.jsonl",
    )
    truth_end = groups * (compile_s + chunks * chunk_steps / rate)
    seen = []
    for g in range(groups):
        p.group(g, groups, "relu_output, n=5, m=2")
        p.block(g, 10, steps=chunks * chunk_steps // 10)
        for c in range(chunks):
            clock.t += chunk_steps / rate + (compile_s if c == 0 else 0.0)
            p.chunk(
                step=(c + 1) * chunk_steps // 10, model_steps=chunk_steps, losses=np.full(10, 0.1)
            )
            seen.append((truth_end - clock.t, p.eta()))
        p.block_end(0)
    p.close()
    return seen, out.getvalue(), records


STAMP = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d ")


def unstamp(line: str) -> str:
    """A log line without its wall-clock time (which every log line starts with)."""
    assert STAMP.match(line), line
    return STAMP.sub("", line)


def test_eta_excludes_compilation_and_counts_groups_to_compile(tmp_path):
    seen, text, records = simulate(tmp_path)
    assert seen[0][1] is None  # before the first timed chunk: no ETA
    assert "ETA ?" in text.splitlines()[2]
    assert backend_line().startswith("cpu: ")  # tests run on CPU
    for truth, eta in seen[1:]:
        assert eta is not None and abs(eta - truth) <= 0.3 * truth + 1e-9, (truth, eta)
    # a naive rate over the first chunk would have said 12 chunks at 1/6 the speed
    lines = [unstamp(ln) for ln in text.splitlines()]
    assert (
        lines[0]
        == f"demo: 30 instances, 3 groups, 3 blocks -> {tmp_path}; backend {backend_line()}"
    )
    assert lines[1] == "demo: compiling group 1/3 (relu_output, n=5, m=2)"
    assert sum("compiling group" in ln for ln in lines) == 3
    assert (
        "model-steps/s" in text
        and "elapsed" in text
        and " steps/s" not in text.replace("model-steps/s", "")
    )


def test_progress_jsonl_one_record_per_chunk(tmp_path):
    _, _, records = simulate(tmp_path, groups=2, chunks=3)
    lines = (tmp_path / "progress.jsonl").read_text().splitlines()
    assert len(lines) == 6
    logged = [json.loads(ln) for ln in lines]
    assert logged == records  # trackers get the same records
    last = logged[-1]
    assert last["step"] == 300 and last["diverged"] == 0 and last["loss_p50"] == pytest.approx(0.1)
    assert {"loss_p10", "loss_p90", "rate", "eta_s", "time_s", "group", "block"} <= set(last)
    assert last["rate"] == pytest.approx(1000.0)


def test_non_finite_losses_are_counted_and_lines_fit_a_terminal():
    clock, out = Clock(), io.StringIO()
    p = Progress(out, tty=True, clock=clock)
    p.start("x" * 300, total=100, n_blocks=1)
    p.block(0, 4, steps=10)
    clock.t = 1.0
    p.chunk(step=5, model_steps=20, losses=np.array([0.1, np.nan, np.inf, 0.2]))
    redraw = out.getvalue().split("\r")[-1]
    assert len(redraw.replace("\x1b[K", "")) < 120
    clock.t = 2.0
    p.chunk(step=10, model_steps=20, losses=np.array([0.1, np.nan, np.inf, 0.2]))
    assert p.eta() == pytest.approx(60 / 20)


def test_log_wandb_needs_wandb_and_feeds_it(monkeypatch, tmp_path, capsys):
    import sys
    import types

    from geomtoy import cli
    from geomtoy.runs.progress import WandbTracker

    monkeypatch.setitem(sys.modules, "wandb", None)  # not installed
    sweep = str(tmp_path / "s.toml")
    (tmp_path / "s.toml").write_text(
        'name = "s"\n[model]\nn_features = 2\nn_hidden = 1\n[data]\nfeature_probability = 0.5\n'
    )
    assert cli.main(["run", sweep, "--out", str(tmp_path / "o"), "--log", "wandb"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "pip install wandb" in err[0]
    assert not (tmp_path / "o").exists()

    logged, inits = [], []
    run = types.SimpleNamespace(log=lambda r, step: logged.append((step, r)), finish=lambda: None)
    fake = types.SimpleNamespace(init=lambda **kw: inits.append(kw) or run)
    monkeypatch.setitem(sys.modules, "wandb", fake)
    monkeypatch.delenv("WANDB_PROJECT", raising=False)
    tracker = WandbTracker("s", {"name": "s"})
    p = Progress(None, clock=Clock(), trackers=[tracker])
    p.start("s", total=20, n_blocks=1)
    p.block(0, 2, steps=10)
    assert not inits  # the wandb run starts with the first record
    p.chunk(step=10, model_steps=20, losses=np.array([0.1, 0.2]))
    assert inits[0]["project"] == "geomtoy" and inits[0]["config"] == {"name": "s"}
    assert logged[0][0] == 20 and logged[0][1]["loss_p50"] == pytest.approx(0.15)


def test_smoke_runs_leave_progress_jsonl(smoke_results):
    """basic_20x5 at smoke scale (linear and ReLU groups): one record per chunk of each."""
    root, codes = smoke_results
    assert codes["basic_20x5"] == 0
    path = root / "basic_20x5" / "progress.jsonl"
    records = [json.loads(ln) for ln in path.read_text().splitlines()]
    assert {r["group"] for r in records} == {0, 1}
    assert records[-1]["model_steps_done"] == records[-1]["model_steps_total"]
    assert all(r["diverged"] == 0 and r["loss_p50"] > 0 for r in records)


@pytest.mark.slow
def test_a_run_writes_its_header_compile_lines_and_progress_jsonl(tmp_path):
    """A 2-group sweep through the runner: the header is the first line, one compile line
    per group, and progress.jsonl holds one record per chunk."""
    from geomtoy.runs import runner
    from geomtoy.sweep import loads

    sweep = loads(
        'name = "two"\n[model]\nn_features = 2\nn_hidden = 1\n[data]\nfeature_probability = 0.5\n'
        "[train]\nsteps = 60\nbatch_size = 64\nchunk_steps = 20\nseeds = 2\neval_samples = 256\n"
        '[grid]\n"model.kind" = ["linear", "relu_output"]\n'
    )
    out = io.StringIO()
    runner.run_sweep(sweep, tmp_path / "two", progress=Progress(out, tty=False))
    lines = [unstamp(ln) for ln in out.getvalue().splitlines()]
    assert lines[0].startswith("two: 4 instances, 2 groups, ") and "; backend cpu: " in lines[0]
    assert [ln for ln in lines if "compiling" in ln] == [
        "two: compiling group 1/2 (linear, n=2, m=1)",
        "two: compiling group 2/2 (relu_output, n=2, m=1)",
    ]
    records = [
        json.loads(ln) for ln in (tmp_path / "two" / "progress.jsonl").read_text().splitlines()
    ]
    assert [(r["group"], r["step"]) for r in records] == [
        (0, 20),
        (0, 40),
        (0, 60),
        (1, 20),
        (1, 40),
        (1, 60),
    ]
    assert records[-1]["model_steps_done"] == records[-1]["model_steps_total"] == 4 * 60


def test_a_log_is_stamped_and_throttled_and_progress_jsonl_keeps_every_chunk(tmp_path):
    """A 100-chunk block at 0.5 s a chunk: a chunk line at most every 5 s (and the last),
    each starting with the wall-clock time; progress.jsonl and the trackers get all 100."""
    clock, out, records = Clock(), io.StringIO(), []
    p = Progress(out, tty=False, clock=clock, trackers=[records.append], wall=lambda: 0.0)
    p.start("demo", total=1000, n_blocks=1, log=tmp_path / "progress.jsonl")
    p.block(0, 1, steps=1000)
    for c in range(100):
        clock.t += 0.5
        p.chunk(step=10 * (c + 1), model_steps=10, losses=np.full(1, 0.1))
    p.block_end(0)
    p.close()
    lines = out.getvalue().splitlines()
    chunk_lines = [ln for ln in lines if " step " in ln]
    assert len(records) == 100 == len((tmp_path / "progress.jsonl").read_text().splitlines())
    assert 10 <= len(chunk_lines) <= 12
    assert "step 1000/1000" in chunk_lines[-1] and "step 10/1000" in chunk_lines[0]
    stamp = __import__("time").strftime("%Y-%m-%d %H:%M:%S ", __import__("time").localtime(0))
    assert all(ln.startswith(stamp) for ln in lines)
    steps = [int(re.search(r"step (\d+)/", ln).group(1)) for ln in chunk_lines]
    assert all(b - a >= 100 for a, b in zip(steps, steps[1:-1]))  # 10 chunks = 5 s apart


def test_a_narrow_terminal_drops_quantiles_rate_and_loss_before_the_eta(monkeypatch):
    import shutil

    clock, out = Clock(), io.StringIO()
    p = Progress(out, tty=True, clock=clock)
    p.start("pentagon", total=2000, n_blocks=1)
    p.block(0, 10, steps=200)
    for step in (100, 200):
        clock.t += 1.0
        p.chunk(step=step, model_steps=1000, losses=np.linspace(0.01, 0.05, 10))
    record = p._record(clock.t, 200, 1000, np.linspace(0.01, 0.05, 10))
    lines = {w: p._line(record, w) for w in (200, 120, 100, 80, 60)}
    assert all(len(line) < w for w, line in lines.items())
    assert "p90" in lines[200] and "model-steps/s" in lines[200] and "[####" in lines[200]
    assert "p90" not in lines[100] and "ETA" in lines[100] and "loss med" in lines[100]
    assert "model-steps/s" not in lines[60] and "loss" not in lines[60] and "ETA" in lines[60]
    monkeypatch.setattr(shutil, "get_terminal_size", lambda fallback: os.terminal_size((100, 20)))
    p.chunk(step=200, model_steps=0, losses=np.full(10, 0.1))
    redraw = out.getvalue().split("\r")[-1].replace("\x1b[K", "")
    assert len(redraw) < 100 and "ETA" in redraw and not STAMP.match(redraw)


class FakeBar:
    """tqdm's bar as Progress uses it: update, set_postfix_str, write, close."""

    made: list = []

    def __init__(self, **kw):
        self.kw, self.n, self.postfix, self.written, self.closed = kw, 0, "", [], False
        FakeBar.made.append(self)

    def update(self, n):
        self.n += n

    def set_postfix_str(self, text):
        self.postfix = text

    def write(self, line, file=None):
        self.written.append(line)

    def close(self):
        self.closed = True


def test_a_notebook_gets_a_tqdm_bar_and_plain_lines_without_tqdm(monkeypatch):
    from geomtoy.runs import progress

    def run(notebook):
        clock, out = Clock(), io.StringIO()
        p = Progress(out, tty=False, clock=clock, notebook=notebook)
        p.start("demo", total=40, n_blocks=1)
        p.block(0, 2, steps=20)
        for step in (10, 20):
            clock.t += 1.0
            p.chunk(step=step, model_steps=20, losses=np.array([0.1, 0.3]))
        p.close()
        return out.getvalue()

    monkeypatch.setattr(progress, "tqdm_auto", lambda: FakeBar)
    assert run(True) == ""  # everything went to the bar
    bar = FakeBar.made[-1]
    assert bar.kw["total"] == 40 and bar.n == 40 and bar.closed
    assert bar.postfix.startswith("ETA ") and "loss med 0.2" in bar.postfix
    assert bar.written[0].startswith("demo: 1 block")
    monkeypatch.setattr(progress, "tqdm_auto", lambda: None)  # tqdm not installed
    assert "step 20/20" in run(True)
    assert progress.in_notebook() is False  # pytest is no IPython kernel
