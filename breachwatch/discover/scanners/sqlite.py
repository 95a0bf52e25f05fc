"""SQLite: the file opened with mode=ro and query_only, samples spread over
the rowid range on large tables, queries interrupted at their time limit.
"""
from __future__ import annotations

import sqlite3
import time
from pathlib import Path
from urllib.parse import unquote, urlsplit

from breachwatch.discover.scanners.base import (Column, Sample, SourceError, Table, TableError, key_range_sample,
                                               quote_ident)


class SQLiteSource:
    def __init__(self, url: str) -> None:
        # sqlite:///relative.db and sqlite:////absolute/path.db, as SQLAlchemy writes them
        path = unquote(urlsplit(url).path)
        path = path[1:] if path.startswith("/") else path
        self.path = Path(path)
        self.label = f"sqlite:///{self.path}"
        if not self.path.is_file():
            raise SourceError(f"{self.label}: no such database file. Fix: give sqlite:///relative/path.db or "
                              "sqlite:////absolute/path.db.")
        try:
            self.con = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True)
            self.con.execute("PRAGMA query_only = 1")
            self.con.execute("SELECT count(*) FROM sqlite_master").fetchone()
        except sqlite3.Error as e:
            raise SourceError(f"{self.label}: cannot open ({e}). Fix: check it is an SQLite database "
                              "and readable.") from e

    def tables(self) -> list[Table]:
        out = []
        names = [r[0] for r in self.con.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name")]
        for name in names:
            cols = [Column(r[1], r[2]) for r in self.con.execute(f"PRAGMA table_info({quote_ident(name)})")]
            out.append(Table(name, cols, None))
        return out

    def _bounded(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        self.con.set_progress_handler(lambda: 1 if time.monotonic() > deadline else 0, 10_000)

    def sample(self, table: Table, rows: int, timeout_s: float) -> Sample:
        cols = [c for c in table.columns if c.scannable]
        if not cols:
            return Sample([], [], "no text columns")
        select = ", ".join(f"CAST({quote_ident(c.name)} AS TEXT)" for c in cols)
        target = quote_ident(table.name)
        self._bounded(timeout_s)
        try:
            lo, hi = self.con.execute(f"SELECT min(rowid), max(rowid) FROM {target}").fetchone()
            table.estimated_rows = 0 if lo is None else hi - lo + 1
            if table.estimated_rows > 2 * rows:
                got, method = key_range_sample(lambda q, a: self.con.execute(q, a).fetchall(), select, target,
                                               "rowid", lo, hi, rows, seed=table.name,
                                               range_name="rowid")
            else:
                got = self.con.execute(f"SELECT {select} FROM {target} LIMIT ?", (rows,)).fetchall()
                method = "all rows"
        except sqlite3.OperationalError as e:
            if "interrupted" in str(e):
                raise TableError(f"{self.label} {table.name}: timed out after {timeout_s:.0f}s. "
                                 "Fix: raise --max-seconds or lower --sample.") from e
            raise TableError(f"{self.label} {table.name}: cannot read ({e}).") from e
        finally:
            self.con.set_progress_handler(None, 0)
        return Sample([c.name for c in cols], got, method)

    def close(self) -> None:
        self.con.close()
