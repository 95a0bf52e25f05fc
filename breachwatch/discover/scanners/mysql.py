"""MySQL and MariaDB: tables from information_schema, row estimates from its
TABLE_ROWS, samples spread over the primary-key range on large tables, in a
read-only session with a per-statement time limit.
"""
from __future__ import annotations

from urllib.parse import parse_qs, unquote, urlsplit

import pymysql

from breachwatch.discover.scanners.base import (Column, Sample, SourceError, Table, TableError, key_range_sample,
                                               quote_ident, redact_url)

CONNECT_TIMEOUT_S = 5
SYSTEM_SCHEMAS = ("mysql", "information_schema", "performance_schema", "sys")
_DENIED = {1142, 1143, 1044, 1045}   # table, column, database access denied; bad credentials
_TIMEOUT = {1969, 3024, 1317}        # MariaDB max_statement_time, MySQL max_execution_time, interrupted


def _q(name: str) -> str:
    return quote_ident(name, "`")


class MySQLSource:
    def __init__(self, url: str) -> None:
        self.label = redact_url(url)
        parts = urlsplit(url)
        self.database = unquote(parts.path.lstrip("/")) or None
        params = parse_qs(parts.query)
        try:
            self.con = pymysql.connect(
                host=parts.hostname or "127.0.0.1", port=parts.port or 3306,
                user=unquote(parts.username or "root"), password=unquote(parts.password or ""),
                database=self.database, charset="utf8mb4", connect_timeout=CONNECT_TIMEOUT_S,
                autocommit=True, ssl_disabled=params.get("ssl", ["0"])[0] in ("0", "false"))
        except pymysql.MySQLError as e:
            raise SourceError(f"{self.label}: cannot connect ({e}). Fix: check host, port, database and "
                              "credentials, and that the server accepts connections.") from e
        self.mariadb = "mariadb" in self.con.get_server_info().lower()
        self._keys: dict[str, str] = {}   # table -> integer primary key, for spread sampling

    def _execute(self, query: str, args: object = None) -> list[tuple]:
        with self.con.cursor() as cur:
            cur.execute(query, args)
            return list(cur.fetchall())

    def tables(self) -> list[Table]:
        where = "t.table_schema = %s" if self.database else \
            f"t.table_schema NOT IN ({', '.join(['%s'] * len(SYSTEM_SCHEMAS))})"
        args = (self.database,) if self.database else SYSTEM_SCHEMAS
        try:
            rows = self._execute(
                "SELECT t.table_schema, t.table_name, t.table_rows FROM information_schema.tables t "
                f"WHERE t.table_type = 'BASE TABLE' AND {where} ORDER BY 1, 2", args)
            cols = self._execute(
                "SELECT c.table_schema, c.table_name, c.column_name, c.column_type, c.column_key, c.data_type "
                f"FROM information_schema.columns c JOIN information_schema.tables t "
                f"ON t.table_schema = c.table_schema AND t.table_name = c.table_name "
                f"WHERE t.table_type = 'BASE TABLE' AND {where} ORDER BY 1, 2, c.ordinal_position", args)
        except pymysql.MySQLError as e:
            raise SourceError(f"{self.label}: cannot list tables ({e}).") from e
        by_table: dict[tuple[str, str], list[Column]] = {}
        for schema, name, col, ctype, key, dtype in cols:
            by_table.setdefault((schema, name), []).append(Column(col, ctype))
            if key == "PRI" and dtype in ("int", "bigint", "mediumint", "smallint", "tinyint"):
                self._keys.setdefault(f"{schema}.{name}", col)
        return [Table(f"{schema}.{name}", by_table.get((schema, name), []), est) for schema, name, est in rows]

    def _limit_time(self, timeout_s: float) -> None:
        try:
            if self.mariadb:
                self._execute(f"SET SESSION max_statement_time = {max(timeout_s, 0.01):.3f}")
            else:
                self._execute(f"SET SESSION max_execution_time = {max(1, int(timeout_s * 1000))}")
        except pymysql.MySQLError:
            pass  # an old server without statement limits: the scan's own deadline still applies

    def sample(self, table: Table, rows: int, timeout_s: float) -> Sample:
        schema, _, name = table.name.partition(".")
        cols = [c for c in table.columns if c.scannable]
        if not cols:
            return Sample([], [], "no text columns")
        select = ", ".join(f"CAST({_q(c.name)} AS CHAR)" for c in cols)
        target = f"{_q(schema)}.{_q(name)}"
        key = self._keys.get(table.name)
        try:
            self._execute("SET SESSION TRANSACTION READ ONLY")
            self._limit_time(timeout_s)
            est = table.estimated_rows or 0
            if est > 2 * rows and key:
                got, method = self._spread(select, target, _q(key), rows)
            else:
                got = self._execute(f"SELECT {select} FROM {target} LIMIT %s", (rows,))
                method = "all rows" if len(got) < rows else f"first {rows} rows"
            if table.estimated_rows is None or (len(got) < rows and method == "all rows"):
                table.estimated_rows = len(got) if len(got) < rows else table.estimated_rows
        except pymysql.MySQLError as e:
            code = e.args[0] if e.args else None
            if code in _DENIED:
                raise TableError(f"{self.label} {table.name}: permission denied ({e.args[-1]}). "
                                 "Fix: GRANT SELECT on it to the scanning user, or leave it out.") from e
            if code in _TIMEOUT:
                raise TableError(f"{self.label} {table.name}: timed out after {timeout_s:.0f}s. "
                                 "Fix: raise --max-seconds or lower --sample.") from e
            raise TableError(f"{self.label} {table.name}: cannot read ({e}).") from e
        return Sample([c.name for c in cols], [tuple(r) for r in got], method)

    def _spread(self, select: str, target: str, key: str, rows: int) -> tuple[list[tuple], str]:
        """Rows from ten random points of the key range (`key_range_sample`)."""
        lo, hi = self._execute(f"SELECT MIN({key}), MAX({key}) FROM {target}")[0]
        if lo is None:
            return [], "empty"
        return key_range_sample(self._execute, select, target, key, lo, hi, rows, seed=target, ph="%s")

    def close(self) -> None:
        self.con.close()
