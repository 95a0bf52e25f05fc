"""Encryption at rest: the store as a DuckDB encrypted database (AES-256-GCM).

The key comes from the environment (`BREACHWATCH_DB_KEY`) or a key file
(`BREACHWATCH_DB_KEY_FILE`, the servers' `--db-key-file`), never from the
command line where `ps` would show it. An encrypted store is attached as the
database `store` of an in-memory DuckDB and made the default; cursors made
with `store_cursor` use it too (a plain `con.cursor()` starts in the in-memory
database).

DuckDB writes encrypted files with OpenSSL from its `httpfs` extension. Where
that extension is not installed, its built-in fallback can only read; writing
with the fallback needs an explicit opt-in (`BREACHWATCH_DB_KEY_ALLOW_MBEDTLS=1`)
because DuckDB does not consider that fallback's random numbers strong enough
for new nonces. The data is still AES-GCM encrypted either way.
"""
from __future__ import annotations

import os
from pathlib import Path

import duckdb

from breachwatch.store.db import StoreError, migrate, store_locked

KEY_ENV = "BREACHWATCH_DB_KEY"
KEY_FILE_ENV = "BREACHWATCH_DB_KEY_FILE"
ALLOW_MBEDTLS_ENV = "BREACHWATCH_DB_KEY_ALLOW_MBEDTLS"
ALIAS = "store"
MIN_KEY_CHARS = 16


def load_key(key_file: str | os.PathLike[str] | None = None) -> str | None:
    """The store key from `key_file`, else BREACHWATCH_DB_KEY_FILE, else BREACHWATCH_DB_KEY; None if none is set."""
    path = key_file or os.environ.get(KEY_FILE_ENV)
    if path:
        p = Path(path)
        try:
            mode = p.stat().st_mode
        except FileNotFoundError:
            raise StoreError(f"--db-key-file {p}: no such file. Fix: create it with "
                             f"'head -c 32 /dev/urandom | base64 > {p}; chmod 600 {p}'.") from None
        if mode & 0o077:
            raise StoreError(f"--db-key-file {p}: readable by other users (mode {oct(mode & 0o777)}). "
                             f"Fix: chmod 600 {p}.")
        key = p.read_text("utf-8").strip()
    else:
        key = os.environ.get(KEY_ENV, "").strip() or None
        if key is None:
            return None
    if len(key) < MIN_KEY_CHARS:
        raise StoreError(f"the store key has {len(key)} characters; at least {MIN_KEY_CHARS} are required. "
                         "Fix: use 32 random bytes, e.g. 'head -c 32 /dev/urandom | base64'.")
    return key


def _sql_str(s: str) -> str:
    return "'" + s.replace("'", "''") + "'"


def _crypto(con: duckdb.DuckDBPyConnection, read_only: bool) -> None:
    """Load OpenSSL-backed crypto when available; otherwise writing needs the explicit opt-in."""
    try:
        con.execute("LOAD httpfs")
        return
    except duckdb.Error:
        pass
    if read_only:
        return
    if os.environ.get(ALLOW_MBEDTLS_ENV) == "1":
        con.execute("SET force_mbedtls_unsafe = 'true'")
        return
    raise StoreError("writing an encrypted store needs DuckDB's httpfs extension (OpenSSL), which is not "
                     "installed. Fix: run 'INSTALL httpfs' once in DuckDB on this machine (or copy the extension "
                     f"into ~/.duckdb/extensions), or set {ALLOW_MBEDTLS_ENV}=1 to accept DuckDB's built-in "
                     "fallback (see docs/production.md).")


def connect_encrypted(path: str | os.PathLike[str], key: str, *, read_only: bool = False,
                      migrate_schema: bool = True) -> duckdb.DuckDBPyConnection:
    """Open (or create) the encrypted store at `path`, owner-only, migrated, as the default database."""
    db = Path(path)
    if read_only and not db.exists():
        raise StoreError(f"{db}: no store here. Fix: pass --db (or set BREACHWATCH_DB) to the store you meant.")
    if not read_only:
        db.parent.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect()
    _crypto(con, read_only)
    opts = f"ENCRYPTION_KEY {_sql_str(key)}" + (", READ_ONLY" if read_only else "")
    old_umask = os.umask(0o077)
    try:
        con.execute(f"ATTACH {_sql_str(str(db))} AS {ALIAS} ({opts})")
    except duckdb.Error as e:
        con.close()
        msg = str(e)
        if "lock" in msg.lower():
            raise store_locked(db, msg) from e
        if "key" in msg.lower() or "encrypt" in msg.lower():
            raise StoreError(f"{db}: cannot open the encrypted store with this key ({msg}). Fix: set "
                             f"{KEY_ENV} or --db-key-file to the key the store was created with.") from e
        raise StoreError(f"{db}: cannot open the store ({msg}).") from e
    finally:
        os.umask(old_umask)
    con.execute(f"USE {ALIAS}")
    if not read_only:
        for p in (db, Path(str(db) + ".wal")):
            if p.exists():
                os.chmod(p, 0o600)
        if migrate_schema:
            migrate(con)
    return con


def store_cursor(con: duckdb.DuckDBPyConnection) -> duckdb.DuckDBPyConnection:
    """A cursor on the same store, for another thread; it uses the store's database like `con` does."""
    cur = con.cursor()
    name = con.execute("SELECT current_database()").fetchall()[0][0]
    if name == ALIAS:
        cur.execute(f"USE {ALIAS}")
    return cur


def encrypt_store(plain: str | os.PathLike[str], encrypted: str | os.PathLike[str], key: str) -> None:
    """Copy a plain store into a new encrypted file (the plain one is left for the operator to shred)."""
    if Path(encrypted).exists():
        raise StoreError(f"{encrypted}: already exists. Fix: choose a new file name for the encrypted copy.")
    con = duckdb.connect()
    try:
        _crypto(con, False)
        old_umask = os.umask(0o077)
        try:
            con.execute(f"ATTACH {_sql_str(str(plain))} AS plain (READ_ONLY)")
            con.execute(f"ATTACH {_sql_str(str(encrypted))} AS {ALIAS} (ENCRYPTION_KEY {_sql_str(key)})")
        finally:
            os.umask(old_umask)
        con.execute(f"COPY FROM DATABASE plain TO {ALIAS}")
        con.execute(f"CHECKPOINT {ALIAS}")
    finally:
        con.close()
