"""Store-wide tables every scope run needs, built once per connection while the store is unchanged.

Scoping asks the same questions of the whole history for every incident: which
tokens a login issued, when each principal was created and offboarded, when each
principal first read anything, who is known as a customer. The drill scopes
dozens of incidents on one connection, so each answer is kept as a temp table
stamped with the state of the store it was computed from (the events' count and
highest batch, the address-book snapshots' count); a table is rebuilt only when
the stamp no longer matches, so an ingest between two runs is always seen.
"""
from __future__ import annotations

import duckdb

# name -> SQL over the store. Each is one pass over `events` (or a small table).
SHARED_TABLES: dict[str, str] = {
    # Tokens a login issued: the line between a legitimate token and a forged one.
    "_scope_issued": "SELECT DISTINCT token_id FROM events WHERE kind = 'token_issued' AND token_id IS NOT NULL",
    # Per key, how many distinct tokens logins issued with it (a key step's evidence).
    "_scope_issued_by_key": """SELECT key_id, count(DISTINCT token_id) AS issued FROM events
        WHERE kind = 'token_issued' AND key_id IS NOT NULL GROUP BY 1""",
    "_scope_offboarded": """SELECT principal_id, min(time) AS gone FROM events
        WHERE kind = 'principal_offboarded' AND principal_id IS NOT NULL GROUP BY 1""",
    "_scope_created": """SELECT principal_id, min(time) AS created FROM events
        WHERE kind = 'principal_created' AND principal_id IS NOT NULL GROUP BY 1""",
    # A principal's first read: "read nothing before the campaign" is first_access >= its start.
    "_scope_first_access": """SELECT principal_id, min(time) AS first_access FROM events
        WHERE kind = 'access' AND principal_id IS NOT NULL GROUP BY 1""",
    # Without an id convention a member is anyone known as an account holder.
    "_scope_known_members": """SELECT DISTINCT subject_id FROM (
            SELECT principal_id AS subject_id FROM events WHERE principal_type = 'customer'
            UNION ALL SELECT member_id FROM address_book_snapshots
            UNION ALL SELECT unnest(subject_ids) FROM events WHERE kind = 'subject_status')
        WHERE subject_id IS NOT NULL""",
}


def store_stamp(con: duckdb.DuckDBPyConnection) -> str:
    """The store's state as far as scope reads it: events appended or removed, or snapshots loaded, change it."""
    n, top = con.execute("SELECT count(*), max(batch_id) FROM events").fetchone()
    books = con.execute("SELECT count(*) FROM address_book_snapshots").fetchone()[0]
    return f"{n}:{top}:{books}"


def ensure_shared(con: duckdb.DuckDBPyConnection, *names: str) -> None:
    """Make the named SHARED_TABLES current on `con`, rebuilding only those built from another store state."""
    unknown = [n for n in names if n not in SHARED_TABLES]
    if unknown:
        raise ValueError(f"shared scope tables {unknown} are not defined. Fix: use one of {sorted(SHARED_TABLES)}.")
    con.execute("CREATE TEMP TABLE IF NOT EXISTS _scope_shared_stamps (name VARCHAR PRIMARY KEY, stamp VARCHAR)")
    stamp = store_stamp(con)
    built = dict(con.execute("SELECT name, stamp FROM _scope_shared_stamps").fetchall())
    for name in names:
        if built.get(name) == stamp:
            continue
        con.execute(f"CREATE OR REPLACE TEMP TABLE {name} AS {SHARED_TABLES[name]}")
        con.execute("INSERT OR REPLACE INTO _scope_shared_stamps VALUES (?, ?)", [name, stamp])
