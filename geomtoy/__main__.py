"""`python -m geomtoy ...`: the same as the `geomtoy` command."""

from geomtoy.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
