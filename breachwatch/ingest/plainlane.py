"""The plain lane: a small batch of plainly valid compact records, validated by one short statement.

A request of a hundred events waited about 20 ms for its validation, most of it
DuckDB planning the fast lane's statement (every rule on every field, the union
of feeders, the derived ids) and the statements around it. When every line of a
small batch went through the compact lane (compactlane.py) and passes, in
Python, the rules that need no parsing (a kind among the known ones, the other
enumerated fields among theirs, a two-letter country, a time given), what is
left is the typed feeder's own checks, the timestamps and the attributes: one
short statement, which also renders each record's canonical text for its hash.
Should any record fail any of it, the whole batch goes the usual way, where the
full validator names the reason; so this lane only ever accepts what the full
validator accepts, with the same values (tests/ingest/test_plain_lane.py runs
every edge case and generated records through it).

Most batches need not even that statement: when no record carries attributes
(whose stored text is DuckDB's own rendering of the JSON) and every timestamp
is plain RFC 3339 (`2025-04-14T02:10:00.5+09:00`), Python reads the times and
renders each record's canonical text itself, as DuckDB's `to_json` renders it
(`canonical_text`; tests compare the two on every edge case, and verify
recomputes every hash in SQL). A text holding a control character, which the
two escape differently, sends the batch to the statement. Plain gateway lines
(an access with an endpoint but no subject_ids or fields) are completed from
the catalog here too, as enrich.py completes them; only this Python path does
that, so such a batch goes the usual way whenever it cannot be taken here.
"""
from __future__ import annotations

import functools
import hashlib
import re
import warnings
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

import duckdb
import pyarrow as pa
import orjson
import pyarrow.compute as pc

from breachwatch.contract.catalog import Catalog
from breachwatch.contract.event import ARROW_SCHEMA, FIELD_NAMES, FIELDS, KINDS, canonical_record_sql
from breachwatch.ingest.fastlane import finished_sql, times_in_range, typed_feeder_sql
from breachwatch.ingest.normalize import ENUM_FIELDS
from breachwatch.store.chain import sha256_each
from breachwatch.store.db import arrow_views

# The statement's result is read as Arrow from execute(), which plans it once; con.sql() binds it as a
# relation first and costs about 2 ms more per batch. The copy DuckDB warns about is of a hundred rows.
warnings.filterwarnings("ignore", message="Arrow output on a DB-API result", category=UserWarning)

ROW_COLUMNS = [*FIELD_NAMES, "_src", "_pos"]  # the columns of a staged batch's valid rows, in this order
ROW_SCHEMA = pa.schema([*ARROW_SCHEMA, pa.field("_src", pa.string()), pa.field("_pos", pa.int64())])
_TIMES = tuple(f.name for f in FIELDS if f.kind == "time")
_NEED_COLS = ("kind", "endpoint", "subject_ids", "fields")


@dataclass
class PlainBatch:
    rows: pa.Table  # the valid rows: Contract 1 columns, `_src`, `_pos` (ROW_COLUMNS)
    hashes: pa.Table  # `record_hashes` of `rows`: `_src`, `_pos`, `event_id`, `_rh`
    uncatalogued: int = 0  # access rows the catalog should have completed but knows no route for


def _column(table: pa.Table, name: str) -> list:
    return table.column(name).to_pylist() if name in table.column_names else [None] * table.num_rows


def _needs_catalog(kinds: list, endpoints: list, subject_ids: list, fields: list) -> list[bool]:
    """Per row: an access with an endpoint but without subject_ids or fields, which the catalog completes
    (enrich.py's NEEDS_CATALOG; '' is no endpoint)."""
    return [k == "access" and bool(ep) and (ids is None or f is None)
            for k, ep, ids, f in zip(kinds, endpoints, subject_ids, fields)]


def _plain(compact: pa.Table, catalog: Catalog | None) -> tuple[bool, bool]:
    """(whether every row passes the rules checked here, whether some row needs an id derived)."""
    if any(k not in KINDS for k in _column(compact, "kind")):
        return False, False
    if any(t is None for t in _column(compact, "time")):
        return False, False
    for name, allowed in ENUM_FIELDS.items():
        if any(v not in allowed for v in _column(compact, name) if v):  # '' is no value, as in str_value()
            return False, False
    # upper() in SQL and in Python differ beyond ASCII: only ASCII letters are decided here.
    if any(not (len(c) == 2 and c.isascii() and c.isalpha()) for c in _column(compact, "src_country") if c):
        return False, False
    return True, any(not i for i in _column(compact, "event_id"))


@functools.lru_cache(maxsize=64)
def _statement(schema: pa.Schema, derive_ids: bool) -> str:
    """The rest of validation for rows of `schema` (in view `_plain_in`): values, `_ok` and canonical text."""
    feeder = typed_feeder_sql(schema, "_plain_in")
    if feeder is None:
        raise AssertionError("compact rows always have a typed feeder")
    # The same conditions the fast lane vouches with (fastlane.fast_sql), less those checked in Python.
    rows = (f"(SELECT * EXCLUDE (_line, _typed_ok), coalesce(_typed_ok AND \"time\" IS NOT NULL AND "
            f"{times_in_range()}, false) AS _ok FROM ({feeder}))")
    rows = f"({finished_sql(rows)})" if derive_ids else f"(SELECT * EXCLUDE (_extra) FROM {rows})"
    names = ", ".join(f'"{n}"' for n in ROW_COLUMNS)
    return f"SELECT {names}, _ok, {canonical_record_sql()} AS _text FROM {rows}"


def plain_batch(con: duckdb.DuckDBPyConnection, compact: pa.Table, catalog: Catalog | None) -> PlainBatch | None:
    """Validate `compact` (split_compact's typed rows: the whole batch) on `con`, or None when some row is
    not plainly valid and the batch must go the usual way."""
    ok, derive_ids = _plain(compact, catalog)
    if not ok:
        return None
    done = in_python(compact, catalog)
    if done is not None:
        return done
    if catalog is not None and any(_needs_catalog(*(_column(compact, c) for c in _NEED_COLS))):
        return None  # the catalog completes these rows in Python only (in_python): the usual way does it too
    with arrow_views(con, _plain_in=compact):
        out = con.execute(_statement(compact.schema, derive_ids)).to_arrow_table()
    if not pc.all(out.column("_ok")).as_py():
        return None
    return _batch(out.select(ROW_COLUMNS).cast(ROW_SCHEMA), out.column("_text"))


def _batch(rows: pa.Table, texts: pa.Array | pa.ChunkedArray) -> PlainBatch:
    return PlainBatch(rows, pa.table({"_src": rows.column("_src"), "_pos": rows.column("_pos"),
                                      "event_id": rows.column("event_id"), "_rh": sha256_each(texts)}))


# The timestamps read here: RFC 3339 with a 'T', at most microseconds, and Z or a +hh:mm offset. DuckDB
# reads them the same way; any other form it accepts goes to the statement.
_RFC3339 = re.compile(r"(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,6}))?(?:Z|([+-])(\d{2}):(\d{2}))")
_EPOCH = datetime(1970, 1, 1)
_LOW, _HIGH = datetime(1990, 1, 1), datetime(2100, 1, 1)  # normalize.out_of_range's bounds


def _instant(text: str) -> datetime | None:
    """The UTC instant (zone-less) of an RFC 3339 timestamp in the accepted years, else None."""
    m = _RFC3339.fullmatch(text)
    if m is None:
        return None
    y, mo, d, h, mi, sec, frac, sign, oh, om = m.groups()
    try:
        t = datetime(int(y), int(mo), int(d), int(h), int(mi), int(sec), int((frac or "0").ljust(6, "0")))
        if sign:
            shift = timedelta(hours=int(oh), minutes=int(om))
            if int(oh) > 23 or int(om) > 59:
                return None
            t = t - shift if sign == "+" else t + shift
    except (ValueError, OverflowError):  # a day or hour that does not exist: the full validator says so
        return None
    return t if _LOW <= t < _HIGH else None


def _duck_text(t: datetime) -> str:
    """A timestamp as DuckDB's to_json writes it: a space, and the fraction without trailing zeros."""
    text = t.strftime("%Y-%m-%d %H:%M:%S")
    return f"{text}.{t.microsecond:06d}".rstrip("0") if t.microsecond else text


def canonical_text(record: dict) -> bytes:
    """contract.event.canonical_record_sql in Python: `record` holds every Contract 1 field in FIELDS order,
    its timestamps already as `_duck_text`. Equal to DuckDB's rendering unless it holds `\\u00`."""
    return orjson.dumps(record)


def _complete(values: dict[str, list], shown: dict[str, list], catalog: Catalog) -> int | None:
    """enrich.enrich_batch in Python, on rows without attributes: fill subject_ids and fields from each
    access row's route, keep the concrete path in attributes, store the route. Returns the rows left
    uncatalogued, or None when a path needs escaping that DuckDB writes differently."""
    needs = _needs_catalog(*(values[c] for c in _NEED_COLS))
    routes: dict[str, tuple | None] = {}
    left = 0
    for i in (i for i, need in enumerate(needs) if need):
        logged = values["endpoint"][i]
        if logged not in routes:
            routes[logged] = catalog.resolve(logged)
        hit = routes[logged]
        if hit is None:
            left += 1
            continue
        ep, params, query = hit
        if values["fields"][i] is None and ep.fields:
            values["fields"][i] = list(ep.fields)
        if values["subject_ids"][i] is None:
            if ep.subjects_from == "principal":
                pid = values["principal_id"][i]
                values["subject_ids"][i] = [pid] if pid is not None else None
            elif ep.subjects_from == "path" and ep.param in params:
                values["subject_ids"][i] = [params[ep.param]]
            elif ep.subjects_from == "query" and query.get(ep.param or ""):
                values["subject_ids"][i] = list(query[ep.param or ""])
        if logged != ep.route:  # the concrete path names the record read; the route groups the reads
            path = orjson.dumps({"path": logged})
            if b"\\u00" in path:
                return None
            values["attributes"][i] = path.decode()
        values["endpoint"][i] = ep.route
    for name in ("fields", "subject_ids", "attributes", "endpoint"):
        shown[name] = values[name]
    return left


def in_python(compact: pa.Table, catalog: Catalog | None = None) -> PlainBatch | None:
    """The batch validated (and completed from `catalog`) without DuckDB, or None when it holds attributes,
    a timestamp not read here, or a control character."""
    if "attributes" in compact.column_names and compact.column("attributes").null_count < compact.num_rows:
        return None
    n = compact.num_rows
    present = set(compact.column_names)
    values = {name: _column(compact, name) for name in FIELD_NAMES}
    if "subject_fields" in present:  # the compact lane keeps a map as its (key, value) pairs
        values["subject_fields"] = [dict(v) if v is not None else None for v in values["subject_fields"]]
    for f in FIELDS:
        if f.kind == "str" and f.name in present:
            col = values[f.name]
            values[f.name] = [(v.upper() if f.name == "src_country" else v) if v else None for v in col]
    shown = dict(values)  # the values as the canonical text writes them: timestamps as DuckDB's text
    for name in _TIMES:
        if name not in present:
            continue
        instants = [_instant(v) if v is not None else None for v in values[name]]
        if any(t is None and v is not None for t, v in zip(instants, values[name])):
            return None
        values[name] = instants
        shown[name] = [_duck_text(t) if t is not None else None for t in instants]
    # A missing event_id is derived from the record as validated, before the catalog completes it
    # (normalize.derived_id_sql: the hash of the rest of the record).
    for i in (i for i, e in enumerate(values["event_id"]) if e is None):
        rest = {name: shown[name][i] for name in FIELD_NAMES if name != "event_id"}
        derived = orjson.dumps(rest)
        if b"\\u00" in derived:
            return None
        values["event_id"][i] = "h-" + hashlib.sha256(derived).hexdigest()[:32]
    shown["event_id"] = values["event_id"]
    uncatalogued = 0
    if catalog is not None:
        values["attributes"] = list(values["attributes"])  # (all None: a batch with attributes is not taken)
        got = _complete(values, shown, catalog)
        if got is None:
            return None
        uncatalogued = got
    canonical: list[bytes] = []
    for row in zip(*(shown[name] for name in FIELD_NAMES)):
        text = canonical_text(dict(zip(FIELD_NAMES, row)))
        if b"\\u00" in text:  # DuckDB writes \u001F where orjson writes \u001f
            return None
        canonical.append(text)
    if "subject_fields" in present:
        values["subject_fields"] = [list(v.items()) if v is not None else None for v in values["subject_fields"]]
    arrays = [pa.array(values[f.name], f.arrow) for f in FIELDS]
    arrays += [compact.column("_src").combine_chunks().cast(pa.string()), compact.column("_pos").combine_chunks()]
    rows = pa.Table.from_arrays(arrays, schema=ROW_SCHEMA)
    out = _batch(rows, pa.array(canonical, pa.binary()).cast(pa.string()))
    out.uncatalogued = uncatalogued
    return out
