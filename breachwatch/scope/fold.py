"""When detection folds one incident into another, its scoping records move along.

A folded incident's manifests, the duties done for it (a regulator already
notified) and the changes to when the company became aware are part of the
incident it now belongs to: left under the folded id, the merged incident's
next scope would re-notify people already told, miss a report already sent,
or take a later awareness time than either part had. So they are re-filed
under the incident that stays, its next scope run is an update of every
earlier one, and its awareness is the earlier of the two parts' (recorded
with its reason, as every change to it is).
"""
from __future__ import annotations

from datetime import datetime

import duckdb

from breachwatch.scope.deadlines import awareness

TABLES = ("scope_runs", "scope_subjects", "scope_duties", "scope_aware_at")


def _incident(con: duckdb.DuckDBPyConnection, incident_id: str) -> dict:
    row = con.execute("SELECT aware_at, detected_at, first_seen FROM incidents WHERE incident_id = ?",
                      [incident_id]).fetchone()
    return {"id": incident_id, **dict(zip(("aware_at", "detected_at", "first_seen"), row or (None,) * 3))}


def fold_scope(con: duckdb.DuckDBPyConnection, src: str, dst: str, now: datetime) -> None:
    """Re-file `src`'s scoping records under `dst`; call before `src`'s incident row is merged and deleted."""
    had = con.execute("SELECT count(*) FROM scope_aware_at WHERE incident_id IN (?, ?)", [src, dst]).fetchone()[0]
    earliest = min(awareness(con, _incident(con, src)).aware_at, awareness(con, _incident(con, dst)).aware_at)
    for table in TABLES:
        con.execute(f"UPDATE {table} SET incident_id = ? WHERE incident_id = ?", [dst, src])
    if not had:
        return  # neither part's awareness was ever changed by hand: the incidents' own times merge
    now_holds = awareness(con, _incident(con, dst)).aware_at
    if now_holds != earliest:
        con.execute("INSERT INTO scope_aware_at VALUES (?, ?, ?, ?, 'breachwatch', ?)",
                    [dst, earliest, now_holds, f"incident {src} merged in: the earlier awareness of the two holds",
                     now])
