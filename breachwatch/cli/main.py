"""The `breachwatch` command: one Typer app, one module per subcommand group."""
from __future__ import annotations

import typer

from breachwatch import __version__

app = typer.Typer(
    name="breachwatch",
    help="Catch mass reads of customers' personal data early, then scope and report them.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"breachwatch {__version__}")
        raise typer.Exit()


@app.callback()
def root(version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                      help="Print the version and exit.")) -> None:
    """breachwatch: watch every read of customers' personal data."""


# Each module below adds its commands to `app` when imported; order is help order.
# One line per module, so adding a group is a one-line change.
GROUPS = (
    "demo",
    "ingest",
    "verify",
    "detect",
    "incidents",
    "drill",
    "simulate",
    "scope",
    "discover",
    "guard",
    "keys",
    "serve",
    "admin",
)


def _register() -> None:
    import importlib
    for name in GROUPS:
        importlib.import_module(f"breachwatch.cli.{name}")


def main() -> None:
    _register()
    app()


if __name__ == "__main__":
    main()
