"""What the store holds, in numbers: the demo's and the dashboard's overview."""
from __future__ import annotations

from typing import Any

import duckdb


def _pairs(con: duckdb.DuckDBPyConnection, sql: str) -> list[list[Any]]:
    return [list(r) for r in con.execute(sql).fetchall()]


def store_summary(con: duckdb.DuckDBPyConnection, top: int = 8) -> dict[str, Any]:
    """Counts computed from the store: events by kind, principal type and country, top endpoints,
    personal-data reads, distinct subjects, quarantine by reason and the chain length."""
    first, last, events = con.execute("SELECT min(time), max(time), count(*) FROM events").fetchall()[0]
    subjects = con.execute("""
        SELECT count(DISTINCT s) FROM (
            SELECT unnest(subject_ids) AS s FROM events WHERE kind = 'access'
            UNION ALL SELECT unnest(map_keys(subject_fields)) FROM events WHERE kind = 'access')""").fetchall()[0][0]
    return {
        "events": events,
        "first_event": str(first) if first else None,
        "last_event": str(last) if last else None,
        "by_kind": _pairs(con, "SELECT kind, count(*) n FROM events GROUP BY 1 ORDER BY n DESC"),
        "by_principal_type": _pairs(con, "SELECT coalesce(principal_type, '(none)'), count(*) n FROM events "
                                         "GROUP BY 1 ORDER BY n DESC"),
        "by_country": _pairs(con, f"SELECT coalesce(src_country, '(none)'), count(*) n FROM events "
                                  f"GROUP BY 1 ORDER BY n DESC LIMIT {int(top)}"),
        "top_endpoints": _pairs(con, f"SELECT endpoint, count(*) n FROM events WHERE kind = 'access' "
                                     f"GROUP BY 1 ORDER BY n DESC LIMIT {int(top)}"),
        "personal_data_reads": con.execute(
            "SELECT count(*) FROM events WHERE kind = 'access' AND (len(subject_ids) > 0 "
            "OR cardinality(subject_fields) > 0)").fetchall()[0][0],
        "distinct_subjects_read": subjects,
        "quarantined": _pairs(con, "SELECT reason, count(*) n FROM quarantine GROUP BY 1 ORDER BY n DESC"),
        "chain_links": con.execute("SELECT count(*) FROM batches").fetchall()[0][0],
    }
