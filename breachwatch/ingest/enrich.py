"""Complete plain access-log records from the catalog.

Most services do not log whose data a response carried. The catalog says, per
route template, which fields an endpoint returns and where its subject comes
from (the token's own subject for `/me/...` routes, or a path or query
parameter), so an ordinary gateway line with a user id and a path becomes an
event that says whose data went out and which fields.
"""
from __future__ import annotations

import duckdb
import pyarrow as pa

from breachwatch.contract.catalog import Catalog
from breachwatch.store.db import arrow_views

# Access rows the catalog completes: an endpoint, but no subject_ids or no fields.
NEEDS_CATALOG = "kind = 'access' AND endpoint IS NOT NULL AND (subject_ids IS NULL OR fields IS NULL)"
_ROUTES_SCHEMA = pa.schema([("logged", pa.string()), ("route", pa.string()), ("ep_fields", pa.list_(pa.string())),
                            ("subjects_from", pa.string()), ("from_request", pa.list_(pa.string()))])


def enrich_batch(con: duckdb.DuckDBPyConnection, catalog: Catalog, rows: str = "_valid_rows") -> tuple[int, str]:
    """Fill `subject_ids`, `fields` and the route template of access rows in `rows`.

    Returns the rows left uncatalogued and the relation that now holds the batch: `rows` itself when
    nothing needed filling, else a table `_enriched` copied from it and updated. Each distinct logged
    endpoint is resolved once in Python (route templates are regular expressions); the rows themselves
    are updated by one SQL join.
    """
    logged = [r[0] for r in con.execute(f"SELECT DISTINCT endpoint FROM {rows} WHERE {NEEDS_CATALOG}").fetchall()]
    if not logged:
        return 0, rows
    table = "_enriched"
    con.execute(f"CREATE OR REPLACE TEMP TABLE {table} AS SELECT * FROM {rows}")
    rows: dict[str, list] = {name: [] for name in _ROUTES_SCHEMA.names}
    for ep_text in logged:
        hit = catalog.resolve(ep_text)
        if hit is None:
            continue
        ep, params, query = hit
        from_request: list[str] | None = None
        if ep.subjects_from == "path" and ep.param in params:
            from_request = [params[ep.param]]
        elif ep.subjects_from == "query" and query.get(ep.param or ""):
            from_request = list(query[ep.param or ""])
        rows["logged"].append(ep_text)
        rows["route"].append(ep.route)
        rows["ep_fields"].append(list(ep.fields) or None)
        rows["subjects_from"].append(ep.subjects_from)
        rows["from_request"].append(from_request)
    routes = pa.Table.from_pydict(rows, schema=_ROUTES_SCHEMA)
    with arrow_views(con, _routes=routes):
        con.execute(f"""
            UPDATE {table} AS e SET
              fields = coalesce(e.fields, r.ep_fields),
              subject_ids = coalesce(e.subject_ids, CASE r.subjects_from
                  WHEN 'principal' THEN CASE WHEN e.principal_id IS NOT NULL THEN [e.principal_id] END
                  ELSE r.from_request END),
              -- Keep the concrete path (it names the record read) and store the template,
              -- so counts per endpoint group all ids of one route together.
              attributes = CASE WHEN e.endpoint = r.route THEN e.attributes
                  WHEN json_extract(e.attributes, '$.path') IS NOT NULL THEN e.attributes
                  ELSE json_merge_patch(coalesce(e.attributes, '{{}}'), json_object('path', e.endpoint))::VARCHAR END,
              endpoint = r.route
            FROM _routes r
            WHERE e.endpoint = r.logged AND e.kind = 'access' AND (e.subject_ids IS NULL OR e.fields IS NULL)""")
        left = con.execute(f"SELECT count(*) FROM {table} WHERE {NEEDS_CATALOG} AND endpoint NOT IN "
                           "(SELECT route FROM _routes)").fetchall()[0][0]
    return left, table
