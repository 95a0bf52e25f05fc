"""PostgreSQL: tables from the catalog, row estimates from pg_class.reltuples,
samples by TABLESAMPLE SYSTEM on large tables, all in read-only transactions
with a statement timeout.

Only columns the role may SELECT are sampled, so a role with column grants
still gets the columns it can see; a table with none is reported and skipped.
"""
from __future__ import annotations

import psycopg
from psycopg import sql

from breachwatch.discover.scanners.base import Column, Sample, SourceError, Table, TableError, redact_url

CONNECT_TIMEOUT_S = 5

_TABLES = """
SELECT c.oid, n.nspname, c.relname, c.reltuples::bigint, c.relkind
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p', 'm', 'f') AND NOT c.relispartition
  AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_%%'
ORDER BY n.nspname, c.relname
"""
_COLUMNS = """
SELECT a.attrelid, a.attname, format_type(a.atttypid, a.atttypmod),
       has_column_privilege(a.attrelid, a.attnum, 'SELECT')
FROM pg_attribute a
WHERE a.attrelid = ANY(%s) AND a.attnum > 0 AND NOT a.attisdropped
ORDER BY a.attrelid, a.attnum
"""


class PostgresSource:
    def __init__(self, url: str) -> None:
        self.label = redact_url(url)
        try:
            self.con = psycopg.connect(url, connect_timeout=CONNECT_TIMEOUT_S, autocommit=True,
                                       options="-c default_transaction_read_only=on")
        except psycopg.Error as e:
            raise SourceError(f"{self.label}: cannot connect ({str(e).strip()}). Fix: check host, port, "
                              "database and credentials, and that the server accepts connections.") from e

    def tables(self) -> list[Table]:
        try:
            rows = self.con.execute(_TABLES).fetchall()
            columns = self.con.execute(_COLUMNS, ([r[0] for r in rows],)).fetchall() if rows else []
        except psycopg.Error as e:
            raise SourceError(f"{self.label}: cannot list tables ({str(e).strip()}).") from e
        by_oid: dict[int, list[Column]] = {}
        for oid, name, type_, allowed in columns:
            if allowed:
                by_oid.setdefault(oid, []).append(Column(name, type_))
        out = []
        for oid, schema, name, reltuples, _kind in rows:
            cols = by_oid.get(oid, [])
            out.append(Table(f"{schema}.{name}", cols, reltuples if reltuples >= 0 else None,
                             "" if cols else "no SELECT privilege on any column"))
        return out

    def sample(self, table: Table, rows: int, timeout_s: float) -> Sample:
        schema, _, name = table.name.partition(".")
        cols = [c for c in table.columns if c.scannable]
        if not cols:
            return Sample([], [], "no text columns")
        select = sql.SQL(", ").join(sql.SQL("{}::text").format(sql.Identifier(c.name)) for c in cols)
        target = sql.Identifier(schema, name)
        try:
            with self.con.transaction():
                self.con.execute(sql.SQL("SET LOCAL statement_timeout = {}").format(
                    sql.Literal(f"{max(1, int(timeout_s * 1000))}ms")))
                if table.estimated_rows is None:
                    table.estimated_rows = self.con.execute(
                        sql.SQL("SELECT count(*) FROM {}").format(target)).fetchone()[0]
                est = table.estimated_rows or 0
                if est > 2 * rows:
                    # Block sampling reads only the pages it picks: cheap on any size of table.
                    percent = min(100.0, 100.0 * rows * 3 / est)
                    query = sql.SQL("SELECT {} FROM {} TABLESAMPLE SYSTEM ({}) LIMIT {}").format(
                        select, target, sql.Literal(percent), sql.Literal(rows))
                    method = f"TABLESAMPLE SYSTEM {percent:.4f}%"
                    got = self.con.execute(query).fetchall()
                    if len(got) < rows // 4:  # statistics were stale: the table is smaller than it says
                        got = self.con.execute(sql.SQL("SELECT {} FROM {} LIMIT {}").format(
                            select, target, sql.Literal(rows))).fetchall()
                        method = f"first {rows} rows"
                else:
                    got = self.con.execute(sql.SQL("SELECT {} FROM {} LIMIT {}").format(
                        select, target, sql.Literal(rows))).fetchall()
                    method = "all rows" if len(got) < rows else f"first {rows} rows"
        except psycopg.errors.InsufficientPrivilege as e:
            raise TableError(f"{self.label} {table.name}: permission denied ({str(e).strip()}). "
                             "Fix: GRANT SELECT on it to the scanning role, or leave it out.") from e
        except psycopg.errors.QueryCanceled as e:
            raise TableError(f"{self.label} {table.name}: timed out after {timeout_s:.0f}s. "
                             "Fix: raise --max-seconds or lower --sample.") from e
        except psycopg.Error as e:
            raise TableError(f"{self.label} {table.name}: cannot read ({str(e).strip()}).") from e
        return Sample([c.name for c in cols], got, method)

    def close(self) -> None:
        self.con.close()
