"""Print the declared floors of pyproject.toml as exact pins, one per line: the environment
`make test-min` builds to check that the lowest declared versions really work."""

import re
import sys
import tomllib
from pathlib import Path


def pins(pyproject: Path) -> list[str]:
    """`name>=X` -> `name==X` for every runtime dependency; one without a floor is an error."""
    deps = tomllib.loads(pyproject.read_text())["project"]["dependencies"]
    out = []
    for dep in deps:
        m = re.fullmatch(
            r"([A-Za-z0-9_.\-\[\]]+)\s*>=\s*([0-9][0-9A-Za-z.]*)", dep.split(";")[0].strip()
        )
        if not m:
            raise ValueError(f"dependency without a plain floor: {dep!r}")
        out.append(f"{m.group(1)}=={m.group(2)}")
    return out


if __name__ == "__main__":
    root = Path(__file__).resolve().parents[1]
    print("\n".join(pins(Path(sys.argv[1]) if len(sys.argv) > 1 else root / "pyproject.toml")))
