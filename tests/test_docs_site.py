"""The documentation site (`make docs`, mkdocs.yml): the API reference covers every module of
the package (fast), and (slow: it executes the example notebook) the site builds with no
network, its notebook page holds the notebook's outputs, its API pages the docstrings, and no
page loads anything from another host."""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
pytest.importorskip("mkdocs", reason="the docs extra is not installed (pip install '.[docs]')")

spec = importlib.util.spec_from_file_location("docs_hooks", ROOT / "docs" / "hooks.py")
hooks = importlib.util.module_from_spec(spec)
spec.loader.exec_module(hooks)

EXTERNAL = re.compile(
    r"""<(?:script|link|img|iframe)\b[^>]*?\b(?:src|href)=["']?(?:https?:)?//""", re.I
)
"""A resource fetched from another host (a plain <a href> link is not a fetch)."""


def test_api_reference_covers_every_module():
    pages = hooks.api_pages()
    documented = [
        line.split()[1]
        for text in pages.values()
        for line in text.splitlines()
        if line.startswith(":::")
    ]
    modules = []
    for py in (ROOT / "geomtoy").rglob("*.py"):
        parts = py.relative_to(ROOT).with_suffix("").parts
        parts = parts[:-1] if parts[-1] == "__init__" else parts
        if parts[-1] not in hooks.SKIP and not parts[-1].startswith("_"):
            modules.append(".".join(parts))
    assert sorted(documented) == sorted(modules)
    assert "api/zoo.md" in pages and "api/viz.md" in pages


def _nav_pages(nav) -> list[str]:
    if isinstance(nav, str):
        return [nav]
    items = nav.values() if isinstance(nav, dict) else nav
    return [page for item in items for page in _nav_pages(item)]


def test_the_site_build_is_strict_and_every_page_is_in_the_nav():
    """`make docs` fails on any warning (mkdocs.yml strict), a page left out of the nav
    included: each page of docs/ is reachable from the nav."""
    import yaml  # mkdocs's own dependency

    config = yaml.safe_load((ROOT / "mkdocs.yml").read_text())
    assert config["strict"] is True
    assert config["validation"]["omitted_files"] == "warn"
    pages = {p.relative_to(ROOT / "docs").as_posix() for p in (ROOT / "docs").rglob("*.md")}
    assert pages - set(_nav_pages(config["nav"])) == set()
    assert _nav_pages([{"A": "a.md"}, {"B": ["b.md", {"C": "c.md"}]}]) == ["a.md", "b.md", "c.md"]


def test_external_resource_check_can_fail():
    assert EXTERNAL.search('<script src="https://cdn.example/x.js">')
    assert EXTERNAL.search("<link rel=stylesheet href=//fonts.example/css>")
    assert not EXTERNAL.search('<a href="https://arxiv.org/abs/2209.10652">')


@pytest.mark.slow
def test_make_docs_builds_offline_with_the_notebook_outputs(tmp_path):
    if shutil.which("make") is None:
        pytest.skip("no make installed")
    stamp = tmp_path / "venv" / ".installed-stamp"
    stamp.parent.mkdir()
    stamp.touch()
    site = tmp_path / "site"
    env = dict(os.environ)
    for var in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "ALL_PROXY"):
        env[var] = "http://127.0.0.1:9"  # nothing listens: any download fails
    env.pop("NO_PROXY", None)
    env.pop("no_proxy", None)
    env["PYTHONPATH"] = str(ROOT)  # the kernel that executes the notebook imports this checkout
    cmd = ["make", "docs", f"PY={sys.executable}", f"STAMP={stamp}", f"SITE={site}"]
    out = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]

    page = (site / "examples" / "pentagon_and_phase" / "index.html").read_text()
    assert "best seed: pentagon" in page or "pentagon" in page
    assert page.count("data:image/png;base64,") >= 2  # the model figure and the phase map
    assert "dims_per_feature" in page  # the instances table the first cell prints
    assert "<iframe srcdoc=" in page  # the inline explorer
    zoo_api = (site / "api" / "zoo" / "index.html").read_text()
    assert "Reference models by name" in zoo_api and "geomtoy.zoo.load" in zoo_api
    assert "ZooModel" in zoo_api
    for html in site.rglob("*.html"):
        found = EXTERNAL.search(html.read_text())
        assert found is None, (html.relative_to(site), found.group(0) if found else None)
    assert (site / "zoo" / "index.html").exists() and (site / "design" / "index.html").exists()
