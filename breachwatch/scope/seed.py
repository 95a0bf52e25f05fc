"""The incident a scope starts from: its Contract 5 object and the events it links.

The incidents stage keeps a link table from each incident to the events its
detectors used; those events are the seed. A caller with an incident object
from elsewhere (a test, another store) passes the event ids directly.
"""
from __future__ import annotations

import hashlib
from collections.abc import Iterable
from typing import Any

import duckdb
import pyarrow as pa

from breachwatch.scope.duck import temp_table_from_arrow, time_between
from breachwatch.scope.shared import store_stamp


class IncidentNotFound(ValueError):
    """The incident id is not in the store."""


def load_incident(con: duckdb.DuckDBPyConnection, incident_id: str) -> dict[str, Any]:
    """The incident in Contract 5 shape, from the incidents stage."""
    from breachwatch.incidents import (
        store as incidents_store,  # the incidents stage owns its tables
    )
    inc = incidents_store.get_incident(con, incident_id)
    if inc is None:
        raise IncidentNotFound(f"incident '{incident_id}' is not in this store. Fix: list incidents with "
                               "'breachwatch incidents' and pass one of their ids, or check --db.")
    return inc


def incident_event_ids(con: duckdb.DuckDBPyConnection, incident_id: str) -> list[str]:
    from breachwatch.incidents import store as incidents_store
    return list(incidents_store.incident_event_ids(con, incident_id))


def register_seed(con: duckdb.DuckDBPyConnection, incident: dict[str, Any],
                  event_ids: Iterable[str] | None = None) -> int:
    """Temp table `_scope_seed(event_id, time)`; returns how many of the ids are stored events.

    Proposing and building the manifest register the same seed one after the other: when the
    ids and the store are unchanged, the table already there is kept.
    """
    ids = list(event_ids) if event_ids is not None else incident.get("event_ids")
    if ids is None:
        ids = incident_event_ids(con, str(incident["id"]))
    ids = [str(i) for i in ids]
    key = hashlib.sha256("\x1f".join(sorted(ids)).encode()).hexdigest() + "@" + store_stamp(con)
    con.execute("CREATE TEMP TABLE IF NOT EXISTS _scope_seed_key (key VARCHAR)")
    if con.execute("SELECT count(*) FROM _scope_seed_key WHERE key = ?", [key]).fetchone()[0]:
        return con.execute("SELECT count(*) FROM _scope_seed").fetchone()[0]
    temp_table_from_arrow(con, "_scope_seed_in", pa.table({"event_id": pa.array(ids, pa.string())}))
    con.execute("""CREATE OR REPLACE TEMP TABLE _scope_seed AS
        SELECT s.event_id, min(e.time) AS time FROM (SELECT DISTINCT event_id FROM _scope_seed_in) s
        JOIN events e ON e.event_id = s.event_id GROUP BY 1""")
    n = con.execute("SELECT count(*) FROM _scope_seed").fetchone()[0]
    if n == 0 and ids:
        raise ValueError(f"incident '{incident.get('id')}': none of its {len(ids)} event ids is in this store. "
                         "Fix: scope the incident against the store it was detected in (--db).")
    con.execute("DELETE FROM _scope_seed_key")
    con.execute("INSERT INTO _scope_seed_key VALUES (?)", [key])
    return n


def seed_key(con: duckdb.DuckDBPyConnection) -> str | None:
    """What identifies the registered seed: its ids and the store state it was registered in."""
    got = con.execute("SELECT count(*) FROM duckdb_tables() WHERE temporary AND table_name = '_scope_seed_key'"
                      ).fetchone()[0]
    row = con.execute("SELECT key FROM _scope_seed_key").fetchone() if got else None
    return row[0] if row else None


def seed_where(con: duckdb.DuckDBPyConnection) -> str:
    """SQL over `events e` selecting the seed's events. The seed's time span is written in as
    constants so the scan skips the row groups outside it (the store is appended in time order)."""
    lo, hi = con.execute("SELECT min(time), max(time) FROM _scope_seed").fetchone()
    where = "e.event_id IN (SELECT event_id FROM _scope_seed)"
    if lo is None:
        return where
    return f"{where} AND {time_between(lo, hi)}"
