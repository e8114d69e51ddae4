"""`python -m geomtoy ...` and the `geomtoy` command."""


def main() -> int:
    """Handle signals before anything heavy is imported (JAX starts with the sweep
    modules): a Ctrl-C or SIGTERM during start-up becomes a flag the run acts on, instead
    of an exception lost inside a native callback."""
    from geomtoy.runs import signals

    signals.install()
    from geomtoy.cli import main as cli_main

    code = cli_main()
    signals.ended()  # a Ctrl-C from now on changes nothing: the status is `code`
    return code


if __name__ == "__main__":
    raise SystemExit(main())
