"""From access events to exposures: one row per (event, subject, field).

An event's `subject_fields` says what each named person got; where it is
absent, every listed subject got the event's `fields`, or the catalog's fields
for its route when the log carried none. Plain gateway logs of an address-book
page name only the member whose book was read; when the company has loaded
address-book snapshots, such a read is expanded to the recipients the book held
at that moment, each with the fields their entry holds, and the member keeps
only the owner's fields (`policy.address_book.owner_fields`, default: name).

Everything here is DuckDB SQL over temporary tables, so a campaign of millions
of reads is exposed in one pass without rows passing through Python.
"""
from __future__ import annotations

import hashlib
import re

import duckdb
import pyarrow as pa

from breachwatch.contract.catalog import Catalog
from breachwatch.scope.duck import temp_table_from_arrow

# A failed request returned no personal data; a missing status means the source
# did not log one, and such reads count (over-reporting beats missing a person).
SUCCESS_SQL = "(status IS NULL OR (status >= 200 AND status < 300))"
DEFAULT_OWNER_FIELDS = ("name",)


def owner_fields(catalog: Catalog) -> list[str]:
    ab = (catalog.policy.get("address_book") or {}) if isinstance(catalog.policy, dict) else {}
    got = ab.get("owner_fields", list(DEFAULT_OWNER_FIELDS))
    if not isinstance(got, list) or not all(isinstance(x, str) for x in got):
        raise ValueError(f"{catalog.source}: key 'policy.address_book.owner_fields' must be a list of field "
                         "names. Fix: write e.g. 'owner_fields: [name]'.")
    return got


def _route_rows(catalog: Catalog) -> list[tuple[str, list[str] | None, bool, str | None]]:
    """Each catalog route's fields and, for address-book detail routes, a regex that pulls the
    entry id out of the logged path."""
    rows = []
    for ep in catalog.endpoints:
        entry_re = None
        if ep.address_book:
            params = re.findall(r"\{([A-Za-z_][A-Za-z0-9_]*)\}", ep.path)
            entry = [p for p in params if p != ep.param]
            if entry:
                entry_re = _entry_regex(ep.path, entry[0])
        rows.append((ep.route, list(ep.fields) or None, ep.address_book, entry_re))
    return rows


def exposure_rules_digest(catalog: Catalog) -> str:
    """What of the catalog decides an event's exposures: exposures built under the same digest agree."""
    text = repr((_route_rows(catalog), owner_fields(catalog)))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def register_routes(con: duckdb.DuckDBPyConnection, catalog: Catalog) -> None:
    """Temp table `_scope_routes` holding `_route_rows`."""
    rows = _route_rows(catalog)
    tbl = pa.table({"route": pa.array([r[0] for r in rows], pa.string()),
                    "route_fields": pa.array([r[1] for r in rows], pa.list_(pa.string())),
                    "address_book": pa.array([r[2] for r in rows], pa.bool_()),
                    "entry_re": pa.array([r[3] for r in rows], pa.string())})
    temp_table_from_arrow(con, "_scope_routes", tbl)


def _entry_regex(path: str, entry_param: str) -> str:
    """The route as an RE2 pattern whose only capturing group is the entry parameter."""
    out, pos = ["^(?:[A-Z]+ )?"], 0  # the logged path may keep its method (enrich stores it as logged)
    for m in re.finditer(r"\{([A-Za-z_][A-Za-z0-9_]*)\}", path):
        out.append(re.escape(path[pos:m.start()]))
        out.append("([^/?]+)" if m.group(1) == entry_param else "[^/?]+")
        pos = m.end()
    out.append(re.escape(path[pos:]) + r"(?:\?.*)?$")
    return "".join(out)


def build_exposures(con: duckdb.DuckDBPyConnection, events_table: str, catalog: Catalog,
                    out_table: str = "_scope_exposures") -> None:
    """Exposures of the access events in `events_table` (a table or view with the Contract 1 columns).

    Writes two temp tables: `{out_table}_subjects` (event_id, time, endpoint, subject_id, recipient),
    one row per person a read carried, where `recipient` says they were there only as an entry in
    someone else's address book; and `out_table` (event_id, time, subject_id, field), one row per
    field of theirs the read carried.
    """
    register_routes(con, catalog)
    owner = owner_fields(catalog)
    has_books = con.execute("SELECT count(*) > 0 FROM address_book_snapshots").fetchone()[0]
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE _scope_subject_rows AS
        SELECT event_id, time, endpoint, subject_id,
               list_distinct(coalesce(sf[subject_id], ev_fields, route_fields)) AS flds,
               -- a plain log line of an address-book page: the book's recipients are not in it
               coalesce(address_book, false) AND sf IS NULL AND subject_id = principal_id AS plain_book,
               coalesce(address_book, false) AND subject_id IS DISTINCT FROM principal_id AS recipient,
               entry_id
        FROM (
            SELECT e.event_id, e.time, e.endpoint, e.principal_id, e.subject_fields AS sf, e.fields AS ev_fields,
                   r.route_fields, r.address_book,
                   coalesce(json_extract_string(e.attributes, '$.entry_id'),
                            CASE WHEN r.entry_re IS NOT NULL
                                 THEN nullif(regexp_extract(json_extract_string(e.attributes, '$.path'),
                                                            r.entry_re, 1), '') END) AS entry_id,
                   unnest(list_distinct(coalesce(e.subject_ids, []::VARCHAR[])
                                        || coalesce(map_keys(e.subject_fields), []::VARCHAR[]))) AS subject_id
            FROM {events_table} e LEFT JOIN _scope_routes r ON r.route = e.endpoint
            WHERE e.kind = 'access' AND {SUCCESS_SQL.replace('status', 'e.status')}
        )""")
    if has_books:
        _expand_address_books(con, owner, f"{out_table}_subjects")
    else:
        con.execute(f"CREATE OR REPLACE TEMP TABLE {out_table}_subjects AS "
                    "SELECT event_id, time, endpoint, subject_id, recipient, flds FROM _scope_subject_rows")
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE {out_table} AS
        SELECT event_id, time, subject_id, field
        FROM (SELECT event_id, time, subject_id, unnest(flds) AS field
              FROM {out_table}_subjects WHERE flds IS NOT NULL)
        WHERE field IS NOT NULL""")
    con.execute(f"ALTER TABLE {out_table}_subjects DROP COLUMN flds")
    con.execute("DROP TABLE IF EXISTS _scope_subject_rows")


def _expand_address_books(con: duckdb.DuckDBPyConnection, owner: list[str], out: str) -> None:
    # A masked field (entrance_code_masked) is held wherever its clear form is.
    held = ("(b.fields IS NULL OR list_contains(b.fields, f) OR "
            "(f LIKE '%\\_masked' ESCAPE '\\' AND list_contains(b.fields, f[:-8])))")
    owner_sql = "[" + ", ".join("'" + f.replace("'", "''") + "'" for f in owner) + "]::VARCHAR[]"
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE {out} AS
        WITH plain AS (
            SELECT r.*, m.member_id IS NOT NULL AS known
            FROM _scope_subject_rows r
            LEFT JOIN (SELECT DISTINCT member_id FROM address_book_snapshots) m ON m.member_id = r.subject_id
            WHERE r.plain_book
        ),
        recipients AS (
            SELECT p.event_id, p.time, p.endpoint, b.recipient_id AS subject_id,
                   list_filter(p.flds, lambda f: {held}) AS flds
            FROM plain p JOIN address_book_snapshots b
              ON b.member_id = p.subject_id AND b.valid_from <= p.time
             AND (b.valid_to IS NULL OR p.time < b.valid_to)
             AND (p.entry_id IS NULL OR b.entry_id IS NULL OR b.entry_id = p.entry_id)
            WHERE p.known
        )
        SELECT event_id, time, endpoint, subject_id, recipient, flds
        FROM _scope_subject_rows WHERE NOT plain_book
        UNION ALL
        -- a member whose book the company never loaded keeps every field: unknown, so not dropped
        SELECT event_id, time, endpoint, subject_id, false,
               CASE WHEN known THEN list_filter(flds, lambda f: list_contains({owner_sql}, f)) ELSE flds END
        FROM plain
        UNION ALL
        -- the entries the book held; a member's own entry is theirs too, beside their owner row
        SELECT event_id, time, endpoint, subject_id, true, flds FROM recipients""")
