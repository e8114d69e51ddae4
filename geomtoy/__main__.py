"""`python -m geomtoy ...` and the `geomtoy` command."""


def main() -> int:
    """Handle signals before anything heavy is imported (JAX starts with the sweep
    modules): a Ctrl-C or SIGTERM during start-up becomes a flag the run acts on, instead
    of an exception lost inside a native callback."""
    from geomtoy.runs import signals

    signals.install()
    from geomtoy.cli import main as cli_main

    return cli_main()


if __name__ == "__main__":
    raise SystemExit(main())
