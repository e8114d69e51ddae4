"""Build hook (the metadata is in pyproject.toml): the wheel carries the paper's sweep files,
top-level sweeps/*.toml, as package data geomtoy/sweeps/, so an installed geomtoy runs
them by name (`geomtoy run pentagon`; see geomtoy/bundled.py)."""

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

SWEEPS = Path(__file__).resolve().parent / "sweeps"


class BuildPyWithSweeps(build_py):
    def run(self):
        super().run()
        if getattr(self, "editable_mode", False):
            return  # an editable install reads the checkout's sweeps/ directly
        target = Path(self.build_lib) / "geomtoy" / "sweeps"
        target.mkdir(parents=True, exist_ok=True)
        for toml in sorted(SWEEPS.glob("*.toml")):
            shutil.copy2(toml, target / toml.name)


setup(cmdclass={"build_py": BuildPyWithSweeps})
