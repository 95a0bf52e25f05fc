"""What every subcommand shares: the --db and --json options, output, exit codes.

Exit codes (Contract 3): 0 success, 1 a finding the caller must act on,
2 bad usage or unusable input.
"""
from __future__ import annotations

import sys
from typing import Any, Callable, NoReturn, TypeVar

import orjson
import typer
from rich.console import Console

from breachwatch.store.db import StoreError, connect, default_db_path

EXIT_OK, EXIT_FINDING, EXIT_USAGE = 0, 1, 2

DbOption = typer.Option(None, "--db", envvar="BREACHWATCH_DB",
                        help="Store file (default ./breachwatch.duckdb).", show_default=False)
JsonOption = typer.Option(False, "--json", help="Print one JSON document instead of text.")
# While `breachwatch serve` runs it is the store's one writer: commands that change the store send the
# change to it instead (docs/server.md).
ServerOption = typer.Option(None, "--server", envvar="BREACHWATCH_SERVER",
                            help="URL of a running 'breachwatch serve' (key in BREACHWATCH_API_KEY).")

err_console = Console(stderr=True)
out_console = Console()

F = TypeVar("F", bound=Callable[..., Any])
T = TypeVar("T")


def db_path(db: str | None) -> str:
    return db or default_db_path()


def print_json(obj: Any) -> None:
    sys.stdout.buffer.write(orjson.dumps(obj, option=orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS, default=str))
    sys.stdout.buffer.write(b"\n")
    sys.stdout.flush()


def fail(message: str, code: int = EXIT_USAGE) -> NoReturn:
    err_console.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def show_progress() -> bool:
    """Progress bars only on an interactive terminal; quiet when piped."""
    return sys.stderr.isatty()


def handle_errors(fn: F) -> F:
    """Turn the stages' own errors (which name the input, the problem and the fix) into exit code 2."""
    import functools

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except (StoreError, ValueError, FileNotFoundError) as e:
            fail(str(e))
    return wrapper  # type: ignore[return-value]


def remote(server: str, method: str, path: str, **kwargs: Any) -> Any:
    """One call to a running server's API (its answer, or ServerError saying what it answered)."""
    from breachwatch.server.client import ServerClient
    with ServerClient(server) as c:
        return c.request(method, path, **kwargs)


def require_by(by: str | None) -> str:
    """The --by of a change made on the store itself: who made it must be recorded (with --server the API
    key's name is)."""
    if not by or not by.strip():
        raise ValueError("--by: a change must name who made it. Fix: pass --by YOUR-ID (or --server URL, which "
                         "records the API key's name).")
    return by


def read_store(db: str | None, read: Callable[[Any], T]) -> T:
    """`read` on the store opened read-only (closed afterwards)."""
    con = connect(db_path(db), read_only=True)
    try:
        return read(con)
    finally:
        con.close()


def path_part(value: str) -> str:
    """`value` quoted as one segment of an API path (an id may hold '/', '?' or '#')."""
    from urllib.parse import quote
    return quote(value, safe="")
