"""Validate one batch: the fast lane for plainly well-formed records, the full validator for the rest.

The result is the same as running the full validator on every record (same
values, same reasons, same derived ids); the fast lane only spares the records
it can vouch for the cost of evaluating every rule.
"""
from __future__ import annotations

from collections.abc import Sequence

import duckdb
import pyarrow as pa

from breachwatch.contract.event import FIELDS
from breachwatch.ingest.fastlane import fast_sql, finished_sql, json_feeder_sql, json_text_sql, typed_feeder_sql
from breachwatch.ingest.normalize import SourceZone, cached_normalize_sql
from breachwatch.store.chain import quarantine_id_sql

_NAMES = ", ".join(f'"{f.name}"' for f in FIELDS)
_CHECKED_NAMES = ", ".join(f'"{f.name}"' + (f'::VARCHAR AS "{f.name}"' if f.kind == "attrs" else "") for f in FIELDS)
_NO_REJECTS = ("CREATE OR REPLACE TEMP TABLE _bad_rows (quarantine_id VARCHAR, source VARCHAR, position BIGINT, "
               "reason VARCHAR, detail VARCHAR, raw VARCHAR, event_id VARCHAR)")


def validate_batch(con: duckdb.DuckDBPyConnection, zone: SourceZone | None, lines: str | None,
                   typed: Sequence[tuple[str, pa.Schema]] = (), *, fast: bool = True, skip: str | None = None) -> None:
    """Create the view `_valid_rows` (Contract 1 columns + `_src`, `_pos`) and `_bad_rows` (quarantine rows).

    `lines` names a table of JSON text (`_src`, `_pos`, `line`); each of `typed` a table of typed
    columns (`_src`, `_pos` and Contract 1 columns) with its schema, which `typed_feeder_sql` accepts.
    `fast=False` sends every record through the full validator (the reference the fast lane must match).
    `skip` leaves out the records a direct insert stored already (`fast_sql`).
    """
    feeders = [json_feeder_sql(lines)] if lines else []
    for name, schema in typed:
        sql = typed_feeder_sql(schema, name)
        if sql is None:
            raise ValueError(f"{name}: its columns cannot be staged as typed; pass them as JSON text instead")
        feeders.append(sql)
    con.execute(fast_sql(feeders, vouch=fast, skip=skip))
    valid = f"SELECT {_NAMES}, _src, _pos FROM _fast WHERE _sure"
    if con.execute("SELECT count(*) FROM _fast WHERE NOT _sure").fetchone()[0]:
        _full_validation(con, zone, typed)
        con.execute(f"""CREATE OR REPLACE TEMP TABLE _valid_full AS {finished_sql(
            f"(SELECT {_CHECKED_NAMES}, _extra, _src, _pos FROM _checked WHERE _reason IS NULL)")}""")
        valid += f" UNION ALL SELECT {_NAMES}, _src, _pos FROM _valid_full"
    else:
        con.execute(_NO_REJECTS)
    # A view, not a copy: the commit reads the valid rows a few times, each time only the columns it needs.
    con.execute(f"CREATE OR REPLACE TEMP VIEW _valid_rows AS {valid}")


def _full_validation(con: duckdb.DuckDBPyConnection, zone: SourceZone | None,
                     typed: Sequence[tuple[str, pa.Schema]]) -> None:
    """Run every rule on the records the fast lane could not vouch for: `_checked` and `_bad_rows`."""
    unsure = ["SELECT _src, _pos, _line AS line FROM _fast WHERE NOT _sure AND _line IS NOT NULL"]
    for name, schema in typed:  # typed rows meet the full validator as the JSON a file would hold
        if "_line" in schema.names:  # ... unless they kept their text: then they are in the first part
            continue
        unsure.append(f"SELECT _src, _pos, line FROM ({json_text_sql(schema, name)} SEMI JOIN "
                      "(SELECT _src, _pos FROM _fast WHERE NOT _sure AND _line IS NULL) u "
                      f"ON {name}._src = u._src AND {name}._pos = u._pos)")
    con.execute(f"CREATE OR REPLACE TEMP TABLE _unsure AS {' UNION ALL '.join(unsure)}")
    sql, _ = cached_normalize_sql(zone, "_unsure")
    con.execute(sql)
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE _bad_rows AS
        SELECT {quarantine_id_sql('_line')} AS quarantine_id, _src AS source,
               _pos AS position, _reason AS reason, _detail AS detail, rtrim(_line, chr(10) || chr(13)) AS raw,
               _claimed_id AS event_id
        FROM _checked WHERE _reason IS NOT NULL""")
