"""The fast lane of validation: records that are plainly well-formed, decided in one cheap pass.

The full validator (normalize.py) evaluates every rule on every record to name the
first one a record breaks. Almost every record breaks none, so this lane first
stages every record into one common column set (each Contract 1 field already
typed, plus `_typed_ok`: every field had exactly an accepted type), from either
of two feeders:

- JSON text (NDJSON, CSV, HTTP bodies, in-memory records): one typed
  `json_transform` per line, with `json_type` for the types and `json_keys` for
  unknown keys, instead of dozens of per-field extractions, casts and regexes;
- typed columns (Parquet, Arrow): the columns themselves, checked by their
  Arrow types, with no JSON round trip.

One shared SQL then applies the value checks (the same expressions the full
validator uses) and marks a record `_sure` only when the full validator would
accept it with exactly these values. Every other record goes, as JSON text, to
the full validator, which alone decides reasons, so a bad record gets the same
quarantine row whichever format or lane it came through.
"""
from __future__ import annotations

import functools

import pyarrow as pa

from breachwatch.contract.event import FIELDS, Field
from breachwatch.ingest.normalize import (blank_sql, derived_id_sql, extra_sql, from_epoch, has_offset, out_of_range,
                                          str_value, value_checks, with_offset)

_MAX_EXACT = 9007199254740991  # 2**53 - 1: the full validator reads integers through DOUBLE
_TRANSFORM = {"str": "VARCHAR", "time": "VARCHAR", "int": "BIGINT", "strlist": "JSON", "fieldmap": "JSON",
              "attrs": "JSON"}
_STRUCT = "'{" + ", ".join(f'"{f.name}": "{_TRANSFORM[f.kind]}"' for f in FIELDS) + "}'"
_PATHS = "[" + ", ".join(f"'$.{f.name}'" for f in FIELDS) + "]"


def _out_type(f: Field) -> str:
    return "VARCHAR" if f.kind == "attrs" else f.duck


def _no_nulls(lst: str) -> str:
    return f"list_count({lst}) = len({lst})"


def _map_ok(m: str) -> str:
    """A subject-field map with no null list and no null field name."""
    return f"({_no_nulls(f'map_values({m})')} AND {_no_nulls(f'flatten(map_values({m}))')})"


def _json_field(f: Field, i: int) -> tuple[str, str, str]:
    """(staging expression, value, ok) for field `f` of a JSON line; `_ty[i]` is its JSON type.

    Strings, integers and attributes have no staging and no `ok` of their own: their types are checked
    together (`_group_checks`). Their values need no type guard: a record whose types are wrong is not
    vouched for, so its values are never used."""
    ty, s = f"_ty[{i}]", f'_s."{f.name}"'
    absent = f"({ty} IS NULL OR {ty} = 'NULL')"
    if f.kind == "str":
        return "", str_value(f, s), ""
    if f.kind == "int":
        return "", s, ""
    if f.kind == "attrs":
        return "", f"{s}::VARCHAR", ""
    # Multi-step values are staged first (as `_f{i}`) so they are computed once.
    st = f"_f{i}"
    if f.kind == "time":
        stage = (f"CASE WHEN {ty} = 'VARCHAR' AND {has_offset(s)} THEN {with_offset(s)} "
                 f"WHEN {ty} IN ('BIGINT', 'UBIGINT', 'DOUBLE') THEN {from_epoch(s)} END")
        return stage, st, f"({absent} OR {st} IS NOT NULL)"
    if f.kind == "strlist":
        # Only a list of plain strings round-trips to the same text; numbers, nulls and nesting go
        # to the full validator.
        stage = f"CASE WHEN {ty} = 'ARRAY' THEN json_transform({s}, '[\"VARCHAR\"]') END"
        return stage, st, (f"({absent} OR ({st} IS NOT NULL AND {_no_nulls(st)} "
                           f"AND to_json({st})::VARCHAR = {s}::VARCHAR))")
    if f.kind == "fieldmap":
        stage = f"CASE WHEN {ty} = 'OBJECT' THEN try(json_transform({s}, '\"MAP(VARCHAR, VARCHAR[])\"')) END"
        return stage, st, (f"({absent} OR ({st} IS NOT NULL AND {_map_ok(st)} "
                           f"AND to_json({st})::VARCHAR = {s}::VARCHAR))")
    raise AssertionError(f.kind)


def _type_in(i: int, allowed: tuple[str, ...]) -> str:
    """True when field i (JSON type `_ty[i]`) is absent, null or of an `allowed` JSON type."""
    return f"coalesce(_ty[{i}] IN ({', '.join(repr(t) for t in ('NULL', *allowed))}), true)"


def _group_checks() -> str:
    """The type checks of the fields without a staging of their own (strings, integers, attributes).

    One allowlist comparison per field: building a list of a group's types per record and testing it
    against a banned list cost about five times as much CPU."""
    checks = []
    for i, f in enumerate(FIELDS, 1):
        if f.kind == "str":
            checks.append(_type_in(i, ("VARCHAR",)))
        elif f.kind == "attrs":
            checks.append(_type_in(i, ("OBJECT",)))
        elif f.kind == "int":
            # An integer beyond what BIGINT holds reads as NULL; the full validator decides what that means.
            v = f'_s."{f.name}"'
            checks.append(f"(coalesce(_ty[{i}] = 'NULL', true) OR (_ty[{i}] IN ('BIGINT', 'UBIGINT') "
                          f"AND {v} BETWEEN -{_MAX_EXACT} AND {_MAX_EXACT}))")
    return " AND ".join(checks)


def json_feeder_sql(lines: str) -> str:
    """Stage JSON text lines (`_src`, `_pos`, `line`) into the common column set."""
    fields = [_json_field(f, i) for i, f in enumerate(FIELDS, 1)]
    stages = ", ".join(f"{stage} AS _f{i}" for i, (stage, _, _) in enumerate(fields, 1) if stage)
    values = ", ".join(f'CAST({v} AS {_out_type(f)}) AS "{f.name}"' for f, (_, v, _) in zip(FIELDS, fields))
    oks = " AND ".join([ok for _, _, ok in fields if ok] + [_group_checks()])
    # With as many keys as known fields present, there is no unknown and no repeated key; otherwise a
    # repeated key goes to the full validator and unknown keys are kept, as it keeps them.
    # (A CASE, not OR: only CASE spares the common rows the cost of list_distinct.)
    keys_ok = "CASE WHEN len(_k) = list_count(_ty) THEN true ELSE len(list_distinct(_k)) = len(_k) END"
    extra = f"CASE WHEN len(_k) > list_count(_ty) THEN {extra_sql('_k', 'line')} END"
    return f"""
SELECT _src, _pos, {values}, {extra} AS _extra, coalesce(_obj AND {keys_ok} AND {oks}, false) AS _typed_ok,
       line AS _line
FROM (
  SELECT *, {stages} FROM (
    SELECT _src, _pos, line, _obj,
           CASE WHEN _obj THEN json_transform(line, {_STRUCT}) END AS _s,
           CASE WHEN _obj THEN json_type(line, {_PATHS}) END AS _ty,
           CASE WHEN _obj THEN json_keys(line) END AS _k
    FROM (SELECT _src, _pos, line, _valid AND (starts_with(line, '{{') OR left(ltrim(line), 1) = '{{') AS _obj
          FROM (SELECT *, json_valid(line) AS _valid FROM {lines})
          -- Blank lines are skipped, as the full validator skips them; only invalid lines can be blank,
          -- and trimming every line would copy it. A line opening with '{{' is not blank: testing that
          -- first matters because DuckDB pushes this filter into the scan, where `_valid` would be a
          -- second json_valid of every line. A CASE, not OR: DuckDB reorders the terms of an OR and put
          -- json_valid first (130 ms of a 1.1 s statement per 200,000 lines on one thread).
          WHERE CASE WHEN starts_with(line, '{{') THEN true ELSE _valid OR NOT {blank_sql('line')} END)))"""


def _is_str(t: pa.DataType) -> bool:
    return pa.types.is_string(t) or pa.types.is_large_string(t)


def _typed_field(f: Field, t: pa.DataType | None) -> tuple[str, str] | None:
    """(value, ok) for a typed column of Arrow type `t` (None: absent), or None when the column's type
    is not one this lane reads exactly; then the batch goes as JSON text."""
    c = f't."{f.name}"'
    if t is None or pa.types.is_null(t):
        return "NULL", "true"
    if f.kind == "str" and _is_str(t):
        return str_value(f, c), "true"
    if f.kind == "int" and pa.types.is_integer(t) and t != pa.uint64():
        return c, f"({c} IS NULL OR {c} BETWEEN -{_MAX_EXACT} AND {_MAX_EXACT})"
    if f.kind == "time" and pa.types.is_timestamp(t) and t.unit in ("s", "ms", "us"):
        return c, "true"  # zone-less timestamps are instants in UTC by convention
    if f.kind == "time" and _is_str(t):
        v = f"CASE WHEN {has_offset(c)} THEN {with_offset(c)} END"
        return v, f"({c} IS NULL OR {v} IS NOT NULL)"
    if f.kind == "strlist" and (pa.types.is_list(t) or pa.types.is_large_list(t)) and _is_str(t.value_type):
        return c, f"({c} IS NULL OR {_no_nulls(c)})"
    if (f.kind == "fieldmap" and pa.types.is_map(t) and _is_str(t.key_type)
            and (pa.types.is_list(t.item_type) or pa.types.is_large_list(t.item_type))
            and _is_str(t.item_type.value_type)):
        return c, f"({c} IS NULL OR {_map_ok(c)})"
    if f.kind == "attrs" and _is_str(t):
        v = f"CASE WHEN json_valid({c}) AND left(ltrim({c}), 1) = '{{' THEN json({c})::VARCHAR END"
        return v, f"({c} IS NULL OR {v} IS NOT NULL)"
    return None


def typed_feeder_sql(schema: pa.Schema, table: str) -> str | None:
    """Stage typed rows (`_src`, `_pos` and Contract 1 columns) into the common column set, or None when
    a column is unknown or of a type this lane does not read exactly (the rows then go as JSON text).

    A `_line` column (rows parsed from JSON text, see compactlane.py) is each row's original text: a row
    the lane cannot vouch for meets the full validator as that text rather than re-rendered."""
    known = {f.name for f in FIELDS} | {"_src", "_pos", "_line"}
    if any(name not in known for name in schema.names):
        return None
    parts = [_typed_field(f, schema.field(f.name).type if f.name in schema.names else None) for f in FIELDS]
    if any(p is None for p in parts):
        return None
    values = ", ".join(f'CAST({v} AS {_out_type(f)}) AS "{f.name}"' for f, (v, _) in zip(FIELDS, parts))  # type: ignore[misc]
    oks = " AND ".join(ok for _, ok in parts)  # type: ignore[misc]
    line = "t._line::VARCHAR" if "_line" in schema.names else "NULL::VARCHAR"
    return (f"SELECT _src, _pos, {values}, NULL::VARCHAR AS _extra, coalesce({oks}, false) AS _typed_ok, "
            f"{line} AS _line FROM {table} t")


@functools.lru_cache(maxsize=64)
def typed_ok(schema: pa.Schema) -> bool:
    """Whether rows of this schema can be validated from their typed columns (else as JSON text)."""
    if "_src" in schema.names or "_pos" in schema.names:
        return False
    return typed_feeder_sql(schema, "_t") is not None


def json_text_sql(schema: pa.Schema, table: str) -> str:
    """Each typed row as JSON text (column `line`, after `_src` and `_pos` when the table has them), as a
    JSON source would have written it. Zone-less timestamps are instants in UTC by convention."""
    exprs = []
    for f in schema:
        if f.name in ("_src", "_pos", "_line"):
            continue
        col = '"' + f.name.replace('"', '""') + '"'
        key = "'" + f.name.replace("'", "''") + "'"
        if pa.types.is_timestamp(f.type):
            exprs.append(f"{key}: strftime({col}, '%Y-%m-%dT%H:%M:%S.%fZ')")
        else:
            exprs.append(f"{key}: {col}")
    keep = "_src, _pos, " if "_src" in schema.names else ""
    return f"SELECT {keep}to_json({{{', '.join(exprs)}}})::VARCHAR AS line FROM {table}"


def finished_sql(relation: str) -> str:
    """The stored values of validated rows (Contract 1 columns, `_extra` dropped): unknown keys merged into
    `attributes`, and an `event_id` derived where the record has none. Other columns pass through."""
    merge = ("CASE WHEN _extra IS NULL THEN \"attributes\" "
             "ELSE json_merge_patch(_extra, coalesce(\"attributes\", '{}'))::VARCHAR END")
    return (f"SELECT * REPLACE (coalesce(\"event_id\", {derived_id_sql()}) AS \"event_id\") FROM "
            f"(SELECT * EXCLUDE (_extra) REPLACE ({merge} AS \"attributes\") FROM {relation})")


def times_in_range() -> str:
    """True when every timestamp of a staged record is absent or within the accepted years."""
    return " AND ".join(f'NOT coalesce("{f.name}" IS NOT NULL AND {out_of_range(f"{chr(34)}{f.name}{chr(34)}")}, '
                        'true)' for f in FIELDS if f.kind == "time")


def staged_sql(feeders: list[str], vouch: bool = True) -> str:
    """Every record of the `feeders` with `_sure` (the full validator would accept it as it is) and its
    finished values; `_line` keeps the JSON text of the other lines for the full validator. With `vouch`
    off, no record is sure, so the full validator decides every one (tests compare the two)."""
    time_ok = times_in_range()
    values_ok = " AND ".join(f"NOT coalesce({c}, true)" for c, _, _ in value_checks())
    union = "\nUNION ALL\n".join(feeders)
    staged = f"""(
  SELECT * EXCLUDE (_typed_ok, _line), _sure, CASE WHEN NOT _sure THEN _line END AS _line FROM (
    SELECT *, {'true' if vouch else 'false'} AND coalesce(_typed_ok AND "kind" IS NOT NULL AND "time" IS NOT NULL
                                  AND {time_ok} AND {values_ok}, false) AS _sure
    FROM ({union})))"""
    return finished_sql(staged)


def fast_sql(feeders: list[str], vouch: bool = True, skip: str | None = None) -> str:
    """Create `_fast` from `staged_sql`; `skip` (a predicate over its rows) leaves out the records a direct
    insert has stored already (`Ingestor._commit_direct` in pipeline.py)."""
    rows = staged_sql(feeders, vouch)
    return f"CREATE OR REPLACE TEMP TABLE _fast AS {f'SELECT * FROM ({rows}) WHERE NOT ({skip})' if skip else rows}"
