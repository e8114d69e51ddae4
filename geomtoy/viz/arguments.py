"""The arguments of `geomtoy explore`, apart from the page builder so that the command
line's parser (`geomtoy --help`) imports neither NumPy nor JAX."""

from __future__ import annotations

import argparse

DEFAULT_OUT = "explorer.html"


def add_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """The arguments of `geomtoy explore` (shared by the CLI and `python -m geomtoy.viz.explore`)."""
    parser.add_argument(
        "dirs",
        nargs="+",
        metavar="DIR",
        help="complete results directories (geomtoy run --out), or a results root holding them; "
        "SAE results beside a toy sweep are shown with it",
    )
    parser.add_argument(
        "--out",
        default=DEFAULT_OUT,
        metavar="FILE",
        help=f"HTML file to write (default: {DEFAULT_OUT}); an explorer page there is replaced",
    )
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="replace FILE even if it is not an explorer page geomtoy wrote",
    )
    return parser
