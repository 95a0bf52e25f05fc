"""breachwatch's own event store: personal data that leaked into URLs, user
agents, stated reasons or free-form attributes of the events it keeps.

The `events` table is one table to the scanner; its columns are the text
fields where personal data should not be (`endpoint` with its query string,
`user_agent`, `reason_ref`, `session_id`, `client_fingerprint`) plus one
column per top-level key of `attributes` (`attributes.referrer`, ...).
"""
from __future__ import annotations

import duckdb

from breachwatch.discover.scanners.base import Column, Sample, SourceError, Table, TableError

TEXT_FIELDS = ("endpoint", "user_agent", "reason_ref", "session_id", "client_fingerprint")
MAX_ATTRIBUTE_KEYS = 200


class EventStoreSource:
    def __init__(self, con: duckdb.DuckDBPyConnection, label: str) -> None:
        self.con = con
        self.label = label
        try:
            self.con.execute("SELECT count(*) FROM events LIMIT 0")
        except duckdb.Error as e:
            raise SourceError(f"{label}: no events table ({str(e).splitlines()[0]}). Fix: point --db at a "
                              "breachwatch store.") from e

    def tables(self) -> list[Table]:
        total = self.con.execute("SELECT count(*) FROM events").fetchone()[0]
        keys = [r[0] for r in self.con.execute(
            "SELECT k FROM (SELECT unnest(json_keys(attributes)) AS k FROM "
            "(SELECT attributes FROM events WHERE attributes IS NOT NULL LIMIT 100000)) "
            f"GROUP BY k ORDER BY count(*) DESC, k LIMIT {MAX_ATTRIBUTE_KEYS}").fetchall()]
        columns = [Column(f, "VARCHAR") for f in TEXT_FIELDS] + [Column(f"attributes.{k}", "VARCHAR") for k in keys]
        return [Table("events", columns, int(total))]

    def sample(self, table: Table, rows: int, timeout_s: float) -> Sample:
        exprs = []
        for c in table.columns:
            if c.name.startswith("attributes."):
                key = c.name.split(".", 1)[1].replace('"', '\\"')
                path = "'$.\"" + key.replace("'", "''") + "\"'"
                exprs.append(f"json_extract_string(attributes, {path})")
            else:
                exprs.append(f'"{c.name}"')
        sampler = f"USING SAMPLE reservoir({rows} ROWS) REPEATABLE (7)" if (table.estimated_rows or 0) > rows else ""
        try:
            got = self.con.execute(f"SELECT {', '.join(exprs)} FROM events {sampler}").fetchall()
        except duckdb.Error as e:
            raise TableError(f"{self.label} events: cannot read ({str(e).splitlines()[0]}).") from e
        method = f"reservoir of {rows}" if sampler else "all rows"
        return Sample([c.name for c in table.columns], got, method)

    def close(self) -> None:
        """The connection belongs to the caller."""
