"""Machine API keys: `bw_<id>_<secret>`, sent as `Authorization: Bearer`.

The secret is 32 random bytes, shown once at creation; the store keeps only its
SHA-256, so a copy of the store does not hand out working keys. The id part is
public and finds the row; the hash is compared in constant time.
"""
from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Callable

import duckdb

from breachwatch.server.roles import check_roles

PREFIX = "bw_"


def now_utc() -> datetime:
    return datetime.now(timezone.utc).replace(tzinfo=None)


def _sha(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


@dataclass(frozen=True)
class KeyInfo:
    key_id: str
    name: str
    roles: tuple[str, ...]
    expires_at: datetime | None = None


class VerifiedKeys:
    """Keys this server has verified, by their token's SHA-256, so a machine posting every few milliseconds
    is not looked up in the store per request (a statement and a thread hop, about 0.5 ms of CPU each).

    Only the server changes its store's keys while it runs (the CLI goes through its API), and a revoke
    there calls `forget` after its commit. A lookup that started before a `forget` never fills the cache
    (the generation it read is stale), so a revoked key is refused from the revoke's answer on. Expiry is
    checked on every use.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._keys: dict[bytes, KeyInfo] = {}
        self._generation = 0

    def verify(self, token: str, lookup: Callable[[str], KeyInfo | None]) -> KeyInfo | None:
        digest = hashlib.sha256(token.encode()).digest()
        with self._lock:
            info, generation = self._keys.get(digest), self._generation
        if info is not None and (info.expires_at is None or info.expires_at > now_utc()):
            return info
        info = lookup(token)
        with self._lock:
            if info is not None and generation == self._generation and len(self._keys) < 10_000:
                self._keys[digest] = info
            elif info is None:
                self._keys.pop(digest, None)
        return info

    def forget(self) -> None:
        with self._lock:
            self._keys.clear()
            self._generation += 1


def create_key(con: duckdb.DuckDBPyConnection, name: str, roles: list[str], *, by: str,
               expires_at: datetime | None = None) -> tuple[str, dict[str, Any]]:
    """Make a key; return (the secret token, to show once, and its listing row)."""
    if not name or not name.strip():
        raise ValueError("--name: every key says what it is for. Fix: pass e.g. --name gateway-1.")
    roles = check_roles(roles)
    key_id = secrets.token_hex(6)
    token = f"{PREFIX}{key_id}_{secrets.token_urlsafe(32)}"
    con.execute("INSERT INTO api_keys (key_id, name, roles, secret_sha256, created_at, created_by, expires_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)", [key_id, name.strip(), roles, _sha(token), now_utc(), by, expires_at])
    return token, get_key(con, key_id)  # type: ignore[return-value]


_COLS = ("key_id", "name", "roles", "created_at", "created_by", "expires_at", "revoked_at", "revoked_by",
         "last_used_at")


def _row(r: tuple) -> dict[str, Any]:
    d = dict(zip(_COLS, r))
    d["active"] = d["revoked_at"] is None and (d["expires_at"] is None or d["expires_at"] > now_utc())
    for k in ("created_at", "expires_at", "revoked_at", "last_used_at"):
        d[k] = d[k].isoformat() + "Z" if d[k] else None
    d["roles"] = list(d["roles"])
    return d


def get_key(con: duckdb.DuckDBPyConnection, key_id: str) -> dict[str, Any] | None:
    r = con.execute(f"SELECT {', '.join(_COLS)} FROM api_keys WHERE key_id = ?", [key_id]).fetchone()
    return _row(r) if r else None


def list_keys(con: duckdb.DuckDBPyConnection) -> list[dict[str, Any]]:
    return [_row(r) for r in con.execute(f"SELECT {', '.join(_COLS)} FROM api_keys ORDER BY created_at").fetchall()]


def revoke_key(con: duckdb.DuckDBPyConnection, key_id: str, *, by: str) -> dict[str, Any]:
    row = get_key(con, key_id)
    if row is None:
        raise ValueError(f"API key '{key_id}' does not exist. Fix: list keys with 'breachwatch apikeys list'.")
    if row["revoked_at"] is None:
        con.execute("UPDATE api_keys SET revoked_at = ?, revoked_by = ? WHERE key_id = ?", [now_utc(), by, key_id])
    return get_key(con, key_id)  # type: ignore[return-value]


def authenticate_key(con: duckdb.DuckDBPyConnection, token: str) -> KeyInfo | None:
    """The key a bearer token belongs to, if it is active; None for anything else."""
    if not token.startswith(PREFIX):
        return None
    key_id, _, rest = token[len(PREFIX):].partition("_")
    if not key_id or not rest:
        return None
    r = con.execute("SELECT name, roles, secret_sha256, revoked_at, expires_at FROM api_keys WHERE key_id = ?",
                    [key_id]).fetchone()
    if r is None:
        hmac.compare_digest(_sha(token), _sha(""))  # same work whether or not the id exists
        return None
    name, roles, digest, revoked_at, expires_at = r
    if not hmac.compare_digest(_sha(token), digest):
        return None
    if revoked_at is not None or (expires_at is not None and expires_at <= now_utc()):
        return None
    return KeyInfo(key_id, name, tuple(roles), expires_at)


def touch_key(con: duckdb.DuckDBPyConnection, key_id: str) -> None:
    con.execute("UPDATE api_keys SET last_used_at = ? WHERE key_id = ?", [now_utc(), key_id])
