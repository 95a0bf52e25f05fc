"""Dashboard accounts and their sessions.

A session cookie is 32 random bytes; the store keeps its SHA-256. Sessions end
at a fixed lifetime whatever the activity, earlier when idle, at logout, and
when the account is disabled. Each session carries a CSRF token that every
form it submits must echo.
"""
from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import duckdb

from breachwatch.server.apikeys import now_utc
from breachwatch.server.passwords import hash_password, verify_password
from breachwatch.server.roles import check_roles

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]{1,63}")
_COLS = ("username", "roles", "created_at", "created_by", "disabled_at", "disabled_by", "last_login_at")


@dataclass(frozen=True)
class Session:
    username: str
    roles: tuple[str, ...]
    csrf_token: str
    expires_at: datetime


def _row(r: tuple) -> dict[str, Any]:
    d = dict(zip(_COLS, r))
    for k in ("created_at", "disabled_at", "last_login_at"):
        d[k] = d[k].isoformat() + "Z" if d[k] else None
    d["roles"] = list(d["roles"])
    d["active"] = d["disabled_at"] is None
    return d


def get_user(con: duckdb.DuckDBPyConnection, username: str) -> dict[str, Any] | None:
    r = con.execute(f"SELECT {', '.join(_COLS)} FROM users WHERE username = ?", [username]).fetchone()
    return _row(r) if r else None


def list_users(con: duckdb.DuckDBPyConnection) -> list[dict[str, Any]]:
    return [_row(r) for r in con.execute(f"SELECT {', '.join(_COLS)} FROM users ORDER BY username").fetchall()]


def create_user(con: duckdb.DuckDBPyConnection, username: str, roles: list[str], password: str, *,
                by: str) -> dict[str, Any]:
    if not _NAME.fullmatch(username or ""):
        raise ValueError(f"user name {username!r}: use 2-64 letters, digits, '.', '_', '@' or '-', starting with a "
                         "letter or digit. Fix: e.g. 'kim.analyst'.")
    roles = check_roles(roles)
    if get_user(con, username) is not None:
        raise ValueError(f"user '{username}' already exists. Fix: choose another name, or disable the old account.")
    con.execute("INSERT INTO users (username, roles, password_hash, created_at, created_by) VALUES (?, ?, ?, ?, ?)",
                [username, roles, hash_password(password), now_utc(), by])
    return get_user(con, username)  # type: ignore[return-value]


def disable_user(con: duckdb.DuckDBPyConnection, username: str, *, by: str) -> dict[str, Any]:
    if get_user(con, username) is None:
        raise ValueError(f"user '{username}' does not exist. Fix: list accounts with 'breachwatch users list'.")
    now = now_utc()
    con.execute("UPDATE users SET disabled_at = coalesce(disabled_at, ?), disabled_by = coalesce(disabled_by, ?) "
                "WHERE username = ?", [now, by, username])
    con.execute("UPDATE sessions SET ended_at = ? WHERE username = ? AND ended_at IS NULL", [now, username])
    return get_user(con, username)  # type: ignore[return-value]


def check_login(con: duckdb.DuckDBPyConnection, username: str, password: str) -> tuple[str, ...] | None:
    """The account's roles when the password is right and the account active; None otherwise."""
    r = con.execute("SELECT password_hash, roles, disabled_at FROM users WHERE username = ?",
                    [username]).fetchone()
    ok = verify_password(r[0] if r else None, password)  # runs even for unknown users: same timing
    if not ok or r is None or r[2] is not None:
        return None
    con.execute("UPDATE users SET last_login_at = ? WHERE username = ?", [now_utc(), username])
    return tuple(r[1])


def _sha(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def start_session(con: duckdb.DuckDBPyConnection, username: str, *, lifetime: timedelta,
                  client: str | None) -> tuple[str, str]:
    """Open a session; return (cookie value, CSRF token)."""
    token, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(24)
    now = now_utc()
    con.execute("INSERT INTO sessions VALUES (?, ?, ?, ?, ?, ?, NULL, ?)",
                [_sha(token), username, csrf, now, now + lifetime, now, client])
    return token, csrf


def resume_session(con: duckdb.DuckDBPyConnection, token: str, *, idle: timedelta) -> Session | None:
    """The live session a cookie belongs to; refreshes its idle clock at most once a minute."""
    if not token:
        return None
    now = now_utc()
    r = con.execute("""SELECT s.username, u.roles, s.csrf_token, s.expires_at, s.last_seen_at
                       FROM sessions s JOIN users u ON u.username = s.username
                       WHERE s.session_sha256 = ? AND s.ended_at IS NULL AND u.disabled_at IS NULL""",
                    [_sha(token)]).fetchone()
    if r is None:
        return None
    username, roles, csrf, expires_at, last_seen = r
    if expires_at <= now or last_seen + idle <= now:
        con.execute("UPDATE sessions SET ended_at = ? WHERE session_sha256 = ?", [now, _sha(token)])
        return None
    if now - last_seen > timedelta(minutes=1):
        con.execute("UPDATE sessions SET last_seen_at = ? WHERE session_sha256 = ?", [now, _sha(token)])
    return Session(username, tuple(roles), csrf, expires_at)


def end_session(con: duckdb.DuckDBPyConnection, token: str) -> None:
    con.execute("UPDATE sessions SET ended_at = ? WHERE session_sha256 = ? AND ended_at IS NULL",
                [now_utc(), _sha(token)])
