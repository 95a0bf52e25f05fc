"""The incident a scope starts from: its Contract 5 object and the events it links.

The incidents stage keeps a link table from each incident to the events its
detectors used; those events are the seed. A caller with an incident object
from elsewhere (a test, another store) passes the event ids directly.
"""
from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import duckdb
import pyarrow as pa

from breachwatch.scope.duck import temp_table_from_arrow


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
    """Temp table `_scope_seed(event_id)`; returns how many of the ids are stored events."""
    ids = list(event_ids) if event_ids is not None else incident.get("event_ids")
    if ids is None:
        ids = incident_event_ids(con, str(incident["id"]))
    temp_table_from_arrow(con, "_scope_seed_in", pa.table({"event_id": pa.array([str(i) for i in ids], pa.string())}))
    con.execute("CREATE OR REPLACE TEMP TABLE _scope_seed AS SELECT DISTINCT s.event_id FROM _scope_seed_in s "
                "SEMI JOIN events e ON e.event_id = s.event_id")
    n = con.execute("SELECT count(*) FROM _scope_seed").fetchone()[0]
    if n == 0 and ids:
        raise ValueError(f"incident '{incident.get('id')}': none of its {len(ids)} event ids is in this store. "
                         "Fix: scope the incident against the store it was detected in (--db).")
    return n
