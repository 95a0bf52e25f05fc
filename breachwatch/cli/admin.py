"""`breachwatch apikeys create|list|revoke` and `breachwatch users create|list|disable`.

Both work on the store directly, or, while a server holds it, through the
server's admin API with `--server URL` (and an admin key in BREACHWATCH_API_KEY).
Every change is written to the audit trail.
"""
from __future__ import annotations

import getpass
import os
import sys
from typing import Any, Callable, Optional

import typer
from rich.table import Table

from breachwatch.cli.common import (DbOption, JsonOption, ServerOption, db_path, handle_errors, out_console, path_part,
                                    print_json, remote)
from breachwatch.cli.main import app

apikeys_app = typer.Typer(no_args_is_help=True, add_completion=False,
                          help="breachwatch's own API keys for machines (hashed at rest, shown once).")
users_app = typer.Typer(no_args_is_help=True, add_completion=False,
                        help="Dashboard accounts with roles (passwords hashed with argon2id).")
app.add_typer(apikeys_app, name="apikeys")
app.add_typer(users_app, name="users")

RoleOption = typer.Option(..., "--role", help="ingest, analyst, dpo or admin (repeatable).")


def _cli_actor() -> str:
    return f"cli:{getpass.getuser()}"


def _local(db: str | None, change: Callable[[Any], Any], action: str, resource: str,
           detail: dict[str, Any] | None = None) -> Any:
    from breachwatch.server import audit
    from breachwatch.store.db import connect
    con = connect(db_path(db))
    try:
        out = change(con)
        if action:
            audit.record(con, actor=_cli_actor(), action=action, resource=resource, detail=detail)
        return out
    finally:
        con.close()


def _print_rows(rows: list[dict[str, Any]], cols: tuple[str, ...], title: str) -> None:
    t = Table(title=title)
    for c in cols:
        t.add_column(c)
    for r in rows:
        t.add_row(*[", ".join(r[c]) if isinstance(r[c], list) else str(r[c] if r[c] is not None else "") for c in cols])
    out_console.print(t)


@apikeys_app.command("create")
@handle_errors
def apikeys_create(name: str = typer.Option(..., "--name", help="What the key is for, e.g. gateway-eu-1."),
                   role: list[str] = RoleOption, db: Optional[str] = DbOption,
                   server: Optional[str] = ServerOption, as_json: bool = JsonOption) -> None:
    """Create a key and print its secret once; only its SHA-256 is stored."""
    from breachwatch.server import apikeys
    if server:
        row = remote(server, "POST", "/v1/admin/apikeys", json={"name": name, "roles": role})
        token = row.pop("token")
    else:
        token, row = _local(db, lambda con: apikeys.create_key(con, name, role, by=_cli_actor()), "", "")
        _local(db, lambda con: None, "apikey.create", f"apikey/{row['key_id']}", {"name": name, "roles": row["roles"]})
    if as_json:
        print_json({**row, "token": token})
        return
    out_console.print(f"key {row['key_id']} ({', '.join(row['roles'])}) for {row['name']}. Its secret, shown only "
                      "now; store it in the client's secret store:", highlight=False)
    sys.stdout.write(token + "\n")


@apikeys_app.command("list")
@handle_errors
def apikeys_list(db: Optional[str] = DbOption, server: Optional[str] = ServerOption,
                 as_json: bool = JsonOption) -> None:
    """List keys (never their secrets)."""
    from breachwatch.server import apikeys
    rows = remote(server, "GET", "/v1/admin/apikeys") if server else _local(db, apikeys.list_keys, "", "")
    if as_json:
        print_json(rows)
    else:
        _print_rows(rows, ("key_id", "name", "roles", "created_at", "last_used_at", "revoked_at"), "API keys")


@apikeys_app.command("revoke")
@handle_errors
def apikeys_revoke(key_id: str = typer.Argument(..., help="The key's id (from 'apikeys list')."),
                   db: Optional[str] = DbOption, server: Optional[str] = ServerOption,
                   as_json: bool = JsonOption) -> None:
    """Revoke a key at once."""
    from breachwatch.server import apikeys
    if server:
        row = remote(server, "DELETE", f"/v1/admin/apikeys/{path_part(key_id)}")
    else:
        row = _local(db, lambda con: apikeys.revoke_key(con, key_id, by=_cli_actor()), "apikey.revoke",
                     f"apikey/{key_id}")
    print_json(row) if as_json else out_console.print(f"key {key_id} revoked at {row['revoked_at']}")


def _password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\n")
    env = os.environ.get("BREACHWATCH_NEW_PASSWORD")
    if env:
        return env
    first = getpass.getpass("password: ")
    if first != getpass.getpass("again: "):
        raise ValueError("the two passwords differ. Fix: type the same password twice.")
    return first


@users_app.command("create")
@handle_errors
def users_create(username: str = typer.Argument(..., help="Login name, e.g. kim.analyst."),
                 role: list[str] = RoleOption,
                 password_stdin: bool = typer.Option(False, "--password-stdin",
                                                     help="Read the password from standard input (one line); "
                                                          "otherwise it is prompted for."),
                 db: Optional[str] = DbOption, server: Optional[str] = ServerOption,
                 as_json: bool = JsonOption) -> None:
    """Create a dashboard account (password at least 12 characters, never on the command line)."""
    from breachwatch.server import accounts
    from breachwatch.server.passwords import check_strength
    password = _password(password_stdin)
    check_strength(password)
    if server:
        row = remote(server, "POST", "/v1/admin/users", json={"username": username, "roles": role,
                                                                 "password": password})
    else:
        row = _local(db, lambda con: accounts.create_user(con, username, role, password, by=_cli_actor()),
                     "user.create", f"user/{username}", {"roles": role})
    print_json(row) if as_json else out_console.print(f"user {username} created ({', '.join(row['roles'])})")


@users_app.command("list")
@handle_errors
def users_list(db: Optional[str] = DbOption, server: Optional[str] = ServerOption,
               as_json: bool = JsonOption) -> None:
    """List accounts."""
    from breachwatch.server import accounts
    rows = remote(server, "GET", "/v1/admin/users") if server else _local(db, accounts.list_users, "", "")
    if as_json:
        print_json(rows)
    else:
        _print_rows(rows, ("username", "roles", "created_at", "last_login_at", "disabled_at"), "dashboard accounts")


@users_app.command("disable")
@handle_errors
def users_disable(username: str = typer.Argument(...), db: Optional[str] = DbOption,
                  server: Optional[str] = ServerOption, as_json: bool = JsonOption) -> None:
    """Disable an account and end its sessions."""
    from breachwatch.server import accounts
    if server:
        row = remote(server, "POST", f"/v1/admin/users/{path_part(username)}/disable")
    else:
        row = _local(db, lambda con: accounts.disable_user(con, username, by=_cli_actor()), "user.disable",
                     f"user/{username}")
    print_json(row) if as_json else out_console.print(f"user {username} disabled")
