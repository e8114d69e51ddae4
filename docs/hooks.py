"""MkDocs hook of the documentation site (`make docs`, mkdocs.yml): adds the pages that
live outside docs/ or are generated, before the plugins see the files.

- api/<stage>.md: the API reference, one page per stage folder of the package (and one for
  the top-level modules), each module rendered from its docstrings by mkdocstrings.
- examples/<notebook>.ipynb: the example notebooks of examples/, executed by mkdocs-jupyter
  during the build, so the page shows the outputs of the current code.
Reads the package's folders with pathlib only (nothing imported; mkdocstrings reads the
source statically).
"""

from __future__ import annotations

from pathlib import Path

from mkdocs.plugins import event_priority
from mkdocs.structure.files import File

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "geomtoy"
SKIP = {"__main__"}
"""Modules without a public surface of their own (`python -m geomtoy`)."""


def modules(folder: Path, nested: bool = True) -> list[str]:
    """Dotted names of the modules of one folder (its package first, then its own
    subpackages, e.g. engine/families/), private ones left out."""
    base = folder.relative_to(ROOT).parts
    out = [".".join(base)] if (folder / "__init__.py").exists() else []
    for py in sorted(folder.glob("*.py")):
        if py.stem != "__init__" and py.stem not in SKIP and not py.stem.startswith("_"):
            out.append(".".join((*base, py.stem)))
    for sub in sorted(p for p in folder.iterdir() if (p / "__init__.py").exists()):
        out += modules(sub) if nested else []
    return out


def api_pages() -> dict[str, str]:
    """{page path: markdown}: the top-level modules, then each stage folder."""
    pages = {"api/geomtoy.md": _page("geomtoy", modules(PACKAGE, nested=False))}
    for folder in sorted(p for p in PACKAGE.iterdir() if (p / "__init__.py").exists()):
        pages[f"api/{folder.name}.md"] = _page(f"geomtoy.{folder.name}", modules(folder))
    return pages


def _page(title: str, names: list[str]) -> str:
    body = "\n\n".join(f"::: {name}\n    options:\n      heading_level: 2" for name in names)
    return f"# {title}\n\n{body}\n"


def notebooks() -> list[Path]:
    return sorted((ROOT / "examples").glob("*.ipynb"))


def on_config(config):
    """Append the example notebooks and the API pages to the nav."""
    nav = config["nav"]
    nav.append({"Example notebooks": [f"examples/{nb.name}" for nb in notebooks()]})
    nav.append({"API reference": list(api_pages())})
    return config


@event_priority(100)  # before mkdocs-jupyter turns .ipynb files into pages
def on_files(files, config):
    for path, text in api_pages().items():
        files.append(File.generated(config, path, content=text))
    for nb in notebooks():
        # a plain File whose source folder is the checkout (mkdocs-jupyter wraps it)
        files.append(
            File(
                f"examples/{nb.name}",
                src_dir=str(ROOT),
                dest_dir=config["site_dir"],
                use_directory_urls=config["use_directory_urls"],
            )
        )
    return files
