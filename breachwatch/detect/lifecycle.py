"""Provenance and lifecycle state kept from the feeds: issued tokens, signing
keys, principals created and offboarded, subjects' account status.

These are facts, not detections; the provenance detectors join access events
against them. A snapshot record (e.g. a key inventory exported today) may carry
the real date in `attributes.created_at`, which is preferred to its own time.
"""
from __future__ import annotations

import duckdb

_CREATED = ("coalesce(try_cast(json_extract_string(attributes, '$.created_at') AS TIMESTAMPTZ) AT TIME ZONE 'UTC', "
            "time)")


def update(con: duckdb.DuckDBPyConnection, kinds: dict[str, int]) -> float | None:
    """Append the segment's lifecycle records to the state tables.

    Returns the longest lifetime among the tokens issued in this segment, if any.
    """
    lifetime = None
    if kinds.get("token_issued"):
        lifetime = con.execute("""INSERT INTO issued_tokens
            SELECT token_id, principal_id, key_id, token_issued_at, token_expires_at, time FROM _seg
            WHERE kind = 'token_issued' AND token_id IS NOT NULL
            RETURNING epoch(expires_at) - epoch(issued_at)""").fetchall()
        lifetime = max((r[0] for r in lifetime if r[0] is not None), default=None)
    keys = any(kinds.get(k) for k in ("key_created", "key_rotated", "key_retired", "key_revoked"))
    people = any(kinds.get(k) for k in ("principal_created", "principal_offboarded"))
    if keys:
        con.execute(f"""INSERT INTO key_lifecycle
            SELECT key_id, kind, owner_id, CASE WHEN kind = 'key_created' THEN {_CREATED} ELSE time END FROM _seg
            WHERE kind IN ('key_created', 'key_rotated', 'key_retired', 'key_revoked') AND key_id IS NOT NULL""")
    if people:
        con.execute("""INSERT INTO principal_lifecycle
            SELECT principal_id, kind, time FROM _seg
            WHERE kind IN ('principal_created', 'principal_offboarded') AND principal_id IS NOT NULL""")
    if keys or people:
        _departures(con)
    if kinds.get("subject_status"):
        con.execute("""INSERT INTO subject_status_state
            SELECT coalesce(subject_ids[1], principal_id), status_value, time FROM _seg
            WHERE kind = 'subject_status' AND status_value IS NOT NULL
              AND coalesce(subject_ids[1], principal_id) IS NOT NULL""")
    return lifetime


def _departures(con: duckdb.DuckDBPyConnection) -> None:
    """Who has left (and not been created again since), and the keys they owned that were not rotated."""
    con.execute("DELETE FROM departures")
    con.execute("""INSERT INTO departures
        SELECT principal_id, max(at_time) FILTER (WHERE kind = 'principal_offboarded')
        FROM principal_lifecycle GROUP BY principal_id
        HAVING max(at_time) FILTER (WHERE kind = 'principal_offboarded') >
               coalesce(max(at_time) FILTER (WHERE kind = 'principal_created'), TIMESTAMP '1970-01-01')""")
    con.execute("DELETE FROM orphan_keys")
    con.execute("""INSERT INTO orphan_keys
        SELECT k.key_id, k.owner_id, g.left_at
        FROM (SELECT key_id, any_value(owner_id) FILTER (WHERE kind = 'key_created') AS owner_id,
                     max(at_time) FILTER (WHERE kind IN ('key_rotated', 'key_retired', 'key_revoked')) AS changed_at
              FROM key_lifecycle GROUP BY key_id) k
        JOIN departures g ON g.principal_id = k.owner_id
        WHERE k.changed_at IS NULL OR k.changed_at < g.left_at""")


def issuance_since(con: duckdb.DuckDBPyConnection) -> object:
    """When the issuance log starts: tokens claiming an earlier issue cannot be checked against it."""
    return con.execute("SELECT min(seen_at) FROM issued_tokens").fetchall()[0][0]
