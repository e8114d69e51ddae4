"""A fuzz corpus of damaged and hostile results directories (issue 24): wrong types,
shapes, nesting, sizes and inflating archives in every file, each run through `run`
(the "already complete" check), `analyze`, `explore`, `export`, `merge`, `geomtoy.open`
and an SAE sweep's source: every case ends 0 with the clean directory's output or 2
with one line, never a traceback, and no command damages the directory further than
`analyze` may (it rewrites the geometry columns).

The fast suite calls the library in-process over the whole corpus (the read budget
lowered with GEOMTOY_READ_LIMIT) plus one subprocess under an address-space limit; the
`slow` test runs every case and command as a subprocess under that limit.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from geomtoy import cli
from tests.test_reliability import TINY, env

DEEP = "[" * 3000 + "]" * 3000
MEMORY_LIMIT = 4 << 30  # address space of a child: JAX on CPU starts within it
READ_LIMIT = 64 << 20


def _npz(path: Path) -> dict:
    with np.load(path) as z:
        return {k: z[k] for k in z.files}


def _save(path: Path, arrays: dict, compressed: bool = False) -> None:
    with open(path, "wb") as f:
        (np.savez_compressed if compressed else np.savez)(f, **arrays)


def _edit_npz(name: str, edit):
    def mutate(d: Path):
        a = _npz(d / name)
        _save(d / name, edit(a))

    return mutate


def _edit_meta(edit):
    def mutate(d: Path):
        meta = json.loads((d / "meta.json").read_text())
        edit(meta)
        (d / "meta.json").write_text(json.dumps(meta))

    return mutate


def _edit_column(table: str, column: str, make):
    def mutate(d: Path):
        t = pq.read_table(d / table)
        i = t.column_names.index(column)
        t = t.set_column(i, column, make(t.column(column)))
        pq.write_table(t, d / table)

    return mutate


def _huge_header(d: Path):
    arrays = _npz(d / "params.npz")
    with zipfile.ZipFile(d / "params.npz", "w") as z:
        for k, v in arrays.items():
            with z.open(f"{k}.npy", "w") as f:
                if k == "W":
                    header = {"descr": "<f4", "fortran_order": False, "shape": (4, 2, 10**15)}
                    np.lib.format.write_array_header_1_0(f, header)
                    f.write(b"\0" * 48)
                else:
                    np.lib.format.write_array(f, v)


def _inflating(d: Path, chunks: int = 4):
    """A params.npz of some kB that inflates to `chunks` x 64 MiB (an extra array of
    zeros): 256 MiB against the in-process budget of 64 MiB."""
    a = _npz(d / "params.npz")
    with zipfile.ZipFile(d / "params.npz", "w", zipfile.ZIP_DEFLATED, compresslevel=1) as z:
        for k, v in a.items():
            with z.open(f"{k}.npy", "w") as f:
                np.lib.format.write_array(f, v)
        with z.open("pad.npy", "w", force_zip64=True) as f:
            header = {"descr": "|u1", "fortran_order": False, "shape": (chunks, 64 << 20)}
            np.lib.format.write_array_header_1_0(f, header)
            chunk = bytes(64 << 20)
            for _ in range(chunks):
                f.write(chunk)


def _pickled(d: Path):
    a = _npz(d / "curves.npz")
    with open(d / "curves.npz", "wb") as f:
        np.savez(f, **a, evil=np.array([{"x": 1}], dtype=object))


def _deep_meta(d: Path):
    text = (d / "meta.json").read_text()
    (d / "meta.json").write_text(text.replace('"spec": {', f'"deep": {DEEP}, "spec": {{', 1))


def _nested_column(d: Path):
    t = pq.read_table(d / "instances.parquet")
    deep = pa.array([[[[[1.0]]]]] * t.num_rows)
    pq.write_table(
        t.set_column(t.column_names.index("loss"), "loss", deep), d / "instances.parquet"
    )


def _fifo(name: str):
    def mutate(d: Path):
        (d / name).unlink()
        os.mkfifo(d / name)

    return mutate


def _link_to_dev_zero(name: str):
    def mutate(d: Path):
        (d / name).unlink()
        (d / name).symlink_to("/dev/zero")

    return mutate


CORPUS = {
    # meta.json: types, values, nesting, size, syntax
    "meta n_instances string": _edit_meta(lambda m: m.update(n_instances="4")),
    "meta n_instances huge": _edit_meta(lambda m: m.update(n_instances=10**15)),
    "meta n_instances negative": _edit_meta(lambda m: m.update(n_instances=-4)),
    "meta status list": _edit_meta(lambda m: m.update(status=["complete"])),
    "meta fingerprint int": _edit_meta(lambda m: m.update(fingerprint=7)),
    "meta groups garbage": _edit_meta(lambda m: m.update(groups=[1, "x"])),
    "meta group n huge": _edit_meta(lambda m: m["groups"][0]["shape"].update(n_features=10**12)),
    "meta axes list": _edit_meta(lambda m: m.update(axes=["data.feature_probability"])),
    "meta axis unknown": _edit_meta(lambda m: m.update(axes={"no.such": [1]})),
    "meta spec deep": _deep_meta,
    "meta runs dict": _edit_meta(lambda m: m.update(runs={})),
    "meta source int": _edit_meta(lambda m: m.update(source=3)),
    "meta wall_time string": _edit_meta(lambda m: m.update(wall_time_s="1")),
    "meta truncated": lambda d: (d / "meta.json").write_text((d / "meta.json").read_text()[:50]),
    "meta binary": lambda d: (d / "meta.json").write_bytes(b"\xff\xfe\x00" * 10),
    "meta fifo": _fifo("meta.json"),
    # params.npz / curves.npz: types, shapes, sizes, archives
    "W string": _edit_npz("params.npz", lambda a: a | {"W": a["W"].astype(str)}),
    "W wrong shape": _edit_npz("params.npz", lambda a: a | {"W": a["W"][:, :1]}),
    "W 2-D": _edit_npz("params.npz", lambda a: a | {"W": a["W"][:, 0]}),
    "W extra rows": _edit_npz("params.npz", lambda a: a | {"W": np.concatenate([a["W"]] * 2)}),
    "b wrong shape": _edit_npz("params.npz", lambda a: a | {"b": a["b"][:, :2]}),
    "n_features float": _edit_npz(
        "params.npz", lambda a: a | {"n_features": a["n_features"] + 0.5}
    ),
    "n_features huge": _edit_npz(
        "params.npz", lambda a: a | {"n_features": np.full(4, 2**62, np.int64)}
    ),
    "n_features negative": _edit_npz("params.npz", lambda a: a | {"n_features": -a["n_features"]}),
    "W missing": _edit_npz("params.npz", lambda a: {k: v for k, v in a.items() if k != "W"}),
    "W header 6 PB": _huge_header,
    "params inflating": _inflating,
    "params truncated": lambda d: (d / "params.npz").write_bytes(
        (d / "params.npz").read_bytes()[:300]
    ),
    "params link to /dev/zero": _link_to_dev_zero("params.npz"),
    "curves pickled member": _pickled,
    "curves loss string": _edit_npz("curves.npz", lambda a: a | {"loss": a["loss"].astype(str)}),
    "curves step rows": _edit_npz("curves.npz", lambda a: a | {"step": a["step"][:1]}),
    # parquet tables
    "loss string": _edit_column(
        "instances.parquet", "loss", lambda c: pa.array([str(x) for x in c.to_pylist()])
    ),
    "loss nested": _nested_column,
    "best int": _edit_column("instances.parquet", "best", lambda c: pa.array([1] * len(c))),
    "instance float": _edit_column(
        "instances.parquet", "instance", lambda c: pa.array([float(x) for x in c.to_pylist()])
    ),
    "instances garbage": lambda d: (d / "instances.parquet").write_bytes(b"PAR1" * 100),
    "features fifo": _fifo("features.parquet"),
    "features rows": lambda d: pq.write_table(
        pq.read_table(d / "features.parquet").slice(0, 2), d / "features.parquet"
    ),
    "samples garbage": lambda d: (d / "samples.parquet").write_bytes(b"not parquet"),
}
BENIGN = {"meta axis unknown"}
"""Cases a reader may accept: their output must then equal the clean directory's."""


@pytest.fixture(scope="module")
def clean(tmp_path_factory):
    d = tmp_path_factory.mktemp("fuzz")
    (d / "tiny.toml").write_text(TINY)
    assert cli.main(["run", str(d / "tiny.toml"), "--out", str(d / "clean"), "-q"]) == 0
    (d / "sae.toml").write_text(_sae_text(d / "clean"))
    return d


def _sae_text(source: Path) -> str:
    return (
        f'name = "s"\n[source]\nresults = "{source}"\n[sae]\nwidth = 4\n'
        "[train]\nsteps = 20\nchunk_steps = 10\n"
    )


def _case(clean: Path, name: str, tmp_path: Path) -> Path:
    d = tmp_path / "case"
    shutil.copytree(clean / "clean", d)
    CORPUS[name](d)
    return d


def _argv(command: str, d: Path, clean: Path, tmp_path: Path) -> list[str]:
    if command == "sae":
        (tmp_path / "sae.toml").write_text(_sae_text(d))
    return {
        "run": ["run", clean / "tiny.toml", "--out", d, "-q"],
        "analyze": ["analyze", d],
        "explore": ["explore", d, "--out", tmp_path / "page.html"],
        "export": ["export", d, "--out", tmp_path / "x.safetensors"],
        "merge": ["merge", d],
        "sae": ["run", tmp_path / "sae.toml", "--out", tmp_path / "sae", "--dry-run"],
    }[command]


COMMANDS = ("run", "analyze", "explore", "export", "merge", "sae")


def _check(code: int, err: str, name: str, command: str, tmp_path: Path, clean: Path):
    lines = [x for x in err.splitlines() if x.strip() and "warning" not in x]
    assert "Traceback" not in err, (name, command, err[-2000:])
    assert code in (0, 2), (name, command, code, err[-2000:])
    if code == 2:
        assert len(lines) == 1 and lines[0].startswith("geomtoy"), (name, command, err)
        return
    assert name in BENIGN or command == "sae" and name.startswith("samples"), (name, command)
    if command == "export":  # correct output: the clean directory's weights
        from safetensors.numpy import load_file

        got = load_file(tmp_path / "x.safetensors")["W"]
        np.testing.assert_array_equal(got, _npz(clean / "clean" / "params.npz")["W"])


@pytest.mark.parametrize("name", list(CORPUS))
def test_every_damaged_directory_exits_0_or_2_with_one_line(
    name, clean, tmp_path, capsys, monkeypatch
):
    monkeypatch.setenv("GEOMTOY_READ_LIMIT", str(READ_LIMIT))
    import geomtoy
    from geomtoy.errors import SweepError

    d = _case(clean, name, tmp_path)
    try:
        geomtoy.open(d)
    except SweepError:
        pass
    else:
        assert name in BENIGN, name
    for command in COMMANDS:
        capsys.readouterr()
        code = cli.main([str(a) for a in _argv(command, d, clean, tmp_path)])
        _check(code, capsys.readouterr().err, name, command, tmp_path, clean)


CHILD = (
    "import resource, runpy, sys\n"
    "limit = int(sys.argv.pop(1))\n"
    "resource.setrlimit(resource.RLIMIT_AS, (limit, limit))\n"
    "sys.argv[0] = 'geomtoy'\n"
    "runpy.run_module('geomtoy', run_name='__main__')\n"
)
"""`python -m geomtoy` under an address-space limit set in the child itself."""


def _child(argv, timeout=300, read_limit: int | None = None):
    """The child's read budget: half its address-space limit, or `read_limit` (the
    in-process corpus's, so that its cases mean the same)."""
    e = env()
    e.pop("GEOMTOY_READ_LIMIT", None)
    if read_limit is not None:
        e["GEOMTOY_READ_LIMIT"] = str(read_limit)
    return subprocess.run(
        [sys.executable, "-c", CHILD, str(MEMORY_LIMIT), *map(str, argv)],
        capture_output=True,
        text=True,
        env=e,
        timeout=timeout,
    )


def test_a_huge_header_under_a_memory_limit_is_one_line(clean, tmp_path):
    """The read budget is half the child's address-space limit (here 2 GiB): a header
    that claims 6 PB is refused before anything is allocated, in one line."""
    d = _case(clean, "W header 6 PB", tmp_path)
    r = _child(["export", d, "--out", tmp_path / "x.safetensors"])
    _check(r.returncode, r.stderr, "W header 6 PB", "export", tmp_path, clean)
    assert r.returncode == 2 and "params.npz" in r.stderr


@pytest.mark.slow
def test_an_archive_inflating_past_a_memory_limit_is_one_line(clean, tmp_path):
    """An archive of a few MB that inflates to 2.5 GiB, past the budget of a child under
    a 4 GiB address-space limit: refused from its headers, in one line."""
    d = tmp_path / "case"
    shutil.copytree(clean / "clean", d)
    _inflating(d, chunks=40)
    for command in ("export", "analyze"):
        r = _child(_argv(command, d, clean, tmp_path))
        _check(r.returncode, r.stderr, "params inflating", command, tmp_path, clean)
        assert r.returncode == 2 and "too large" in r.stderr


@pytest.mark.slow
@pytest.mark.parametrize("name", list(CORPUS))
def test_every_case_and_command_as_a_child_under_a_memory_limit(name, clean, tmp_path):
    for command in COMMANDS:
        d = _case(clean, name, tmp_path / command)
        r = _child(_argv(command, d, clean, tmp_path / command), read_limit=READ_LIMIT)
        _check(r.returncode, r.stderr, name, command, tmp_path / command, clean)
