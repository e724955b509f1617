"""The ``relay`` command: :mod:`app.cli.main` parses and dispatches; each area registers its
subcommands from its own module."""
