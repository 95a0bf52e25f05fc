"""Run `breachwatch ARGS` in this process, with only the named command groups loaded.

Importable from any test module: pytest puts tests/ on sys.path for tests/conftest.py.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass


@dataclass
class CliResult:
    returncode: int
    stdout: str
    stderr: str


def run_group_cli(groups: tuple[str, ...], *args: str) -> CliResult:
    from typer.testing import CliRunner

    from breachwatch.cli.main import app

    for g in groups:
        importlib.import_module(f"breachwatch.cli.{g}")  # registers the group on the app
    r = CliRunner().invoke(app, list(args))
    if r.exception is not None and not isinstance(r.exception, SystemExit):
        raise r.exception
    return CliResult(r.exit_code, r.stdout, r.stderr)
