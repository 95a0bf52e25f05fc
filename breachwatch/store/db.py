"""The DuckDB store: opening it safely, owner-only, with its schema migrated.

DuckDB allows one writing process per file. A second writer gets a clear
`StoreLocked` error instead of waiting or corrupting anything, and readers
open read-only.
"""
from __future__ import annotations

import os
import re
from contextlib import contextmanager
from importlib import resources
from pathlib import Path
from typing import Iterator

import duckdb

DEFAULT_DB = "breachwatch.duckdb"
# DuckDB stores a table in row groups of this many rows (a test pins it): ingest batches, the Parquet
# files read in place and the simulator's Parquet row groups are sized in whole ones.
ROW_GROUP_ROWS = 122_880


class StoreError(RuntimeError):
    """The store cannot be used; the message says why and what to do."""


class StoreLocked(StoreError):
    """Another process holds the store for writing."""


def default_db_path() -> str:
    return os.environ.get("BREACHWATCH_DB") or DEFAULT_DB


def migrations() -> list[tuple[int, str, str]]:
    """All schema migrations shipped with this version, as (version, name, sql), in order.

    Each stage adds its tables in its own numbered file under store/migrations/,
    so a store made by an older version is brought forward step by step.
    """
    out = []
    for entry in resources.files("breachwatch.store").joinpath("migrations").iterdir():
        m = re.fullmatch(r"(\d{4})_(\w+)\.sql", entry.name)
        if m:
            out.append((int(m.group(1)), m.group(2), entry.read_text("utf-8")))
    out.sort()
    versions = [v for v, _, _ in out]
    if len(set(versions)) != len(versions):
        raise StoreError(f"two migrations share a number: {versions}")
    return out


def schema_version(con: duckdb.DuckDBPyConnection) -> int:
    has = con.execute("SELECT count(*) FROM information_schema.tables "
                      "WHERE table_name = 'schema_migrations'").fetchone()[0]
    if not has:
        return 0
    return con.execute("SELECT coalesce(max(version), 0) FROM schema_migrations").fetchone()[0]


def migrate(con: duckdb.DuckDBPyConnection, upto: int | None = None) -> list[int]:
    """Apply every shipped migration this store lacks (each in its own transaction), in order.

    Missing versions are applied even below the store's newest one, so stages that
    land their tables in any order still reach every store.
    """
    con.execute("CREATE TABLE IF NOT EXISTS schema_migrations "
                "(version INTEGER PRIMARY KEY, name VARCHAR, applied_at TIMESTAMP DEFAULT now())")
    done = {v for (v,) in con.execute("SELECT version FROM schema_migrations").fetchall()}
    applied = []
    for version, name, sql in migrations():
        if version in done or (upto is not None and version > upto):
            continue
        con.execute("BEGIN")
        try:
            con.execute(sql)
            con.execute("INSERT INTO schema_migrations (version, name) VALUES (?, ?)", [version, name])
            con.execute("COMMIT")
        except Exception:
            con.execute("ROLLBACK")
            raise
        applied.append(version)
    return applied


def store_locked(db: str | os.PathLike[str], msg: str) -> StoreLocked:
    """The error for a store another process writes to (DuckDB's lock message `msg` names its PID)."""
    m = re.search(r"PID (\d+)", msg)
    command = _command_of(int(m.group(1))) if m else ""
    holder = f" (held by process {m.group(1)}{': ' + command if command else ''})" if m else ""
    if "detect" in command and "--follow" in command:
        # The one writer cannot also take files from another process: serve ingests and detects in one.
        fix = ("It keeps the store until it is stopped. To ingest while detecting continuously, stop it and run "
               "'breachwatch serve' instead: it takes events over HTTP (ingest --server URL) and from --watch "
               "folders, and detects at the same pace.")
    else:
        fix = ("Wait for it to finish. If it is 'breachwatch serve', send the change to it with --server URL "
               "(ingest, incidents, scope, discover, apikeys and users take it).")
    return StoreLocked(f"{db}: another process is writing to this store{holder}. Fix: {fix}")


def _command_of(pid: int) -> str:
    """The holder's command line, shortened (Linux /proc; empty where it cannot be read)."""
    try:
        argv = [a.decode(errors="replace") for a in Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0") if a]
    except OSError:
        return ""
    # `/venv/bin/python /venv/bin/breachwatch detect --follow` reads better as `breachwatch detect --follow`.
    while len(argv) > 1 and Path(argv[0]).name.startswith("python"):
        argv = argv[1:]
    return " ".join([Path(argv[0]).name, *argv[1:]])[:120] if argv else ""


def connect(path: str | os.PathLike[str] | None = None, *, read_only: bool = False,
            migrate_schema: bool = True) -> duckdb.DuckDBPyConnection:
    """Open the store. Writers create it owner-only and migrate it; readers never write."""
    db = Path(path or default_db_path())
    from breachwatch.store import encryption  # lazy: it builds on this module
    key = encryption.load_key()
    if key is not None:  # encrypted at rest (BREACHWATCH_DB_KEY or BREACHWATCH_DB_KEY_FILE)
        return encryption.connect_encrypted(db, key, read_only=read_only, migrate_schema=migrate_schema)
    if read_only and not db.exists():
        raise StoreError(f"{db}: no store here. Fix: run 'breachwatch ingest' first, or pass --db "
                         "(or set BREACHWATCH_DB) to the store you meant.")
    if not read_only:
        db.parent.mkdir(parents=True, exist_ok=True)
    old_umask = os.umask(0o077)  # the store holds personal data: owner-only from its first byte
    try:
        con = duckdb.connect(str(db), read_only=read_only)
    except duckdb.IOException as e:
        msg = str(e)
        if "lock" in msg.lower():
            raise store_locked(db, msg) from e
        raise StoreError(f"{db}: cannot open the store ({msg}).") from e
    except duckdb.Error as e:
        raise StoreError(f"{db}: not a breachwatch store or damaged ({e}). "
                         "Fix: point --db at a breachwatch store, or restore it from a backup.") from e
    finally:
        os.umask(old_umask)
    if not read_only:
        for p in (db, Path(str(db) + ".wal")):
            if p.exists():
                os.chmod(p, 0o600)
        if migrate_schema:
            migrate(con)
    return con


@contextmanager
def open_store(path: str | os.PathLike[str] | None = None, *, read_only: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
    con = connect(path, read_only=read_only)
    try:
        yield con
    finally:
        con.close()



@contextmanager
def arrow_views(con: duckdb.DuckDBPyConnection, **tables: object) -> Iterator[None]:
    """Expose Arrow tables to SQL for the duration of a block.

    DuckDB refuses to (un)register while a result from execute() is unread, so
    pending results are run to their end first.
    """
    con.complete()
    for name, table in tables.items():
        con.register(name, table)
    try:
        yield
    finally:
        con.complete()
        for name in tables:
            con.unregister(name)


@contextmanager
def sql_views(con: duckdb.DuckDBPyConnection, **queries: str) -> Iterator[None]:
    """Temp views of SQL queries for the duration of a block (the SQL twin of `arrow_views`)."""
    try:
        for name, sql in queries.items():
            con.execute(f"CREATE OR REPLACE TEMP VIEW {name} AS {sql}")
        yield
    finally:
        con.complete()
        for name in queries:
            con.execute(f"DROP VIEW IF EXISTS {name}")
