"""The fast lane decides exactly as the full validator would: same values, reasons and derived ids.

Each record below is validated twice in one batch, once with the fast lane vouching for what it can and
once with every record sent through the full validator, from JSON text and from typed Arrow columns;
the valid rows and the quarantine rows must be identical.
"""
from __future__ import annotations

import datetime as dt
import json

import duckdb
import orjson
import pyarrow as pa
import pytest

from breachwatch.contract.event import ARROW_SCHEMA, FIELD_NAMES
from breachwatch.ingest.compactlane import split_compact
from breachwatch.ingest.normalize import _OFFSET, has_offset, parse_zone
from breachwatch.ingest.pipeline import ingest_paths, ingest_tables, typed_ok
from breachwatch.ingest.readers import typed_as_json
from breachwatch.ingest.validate import validate_batch
from breachwatch.store.db import arrow_views

T = "2025-04-14T02:10:00Z"
BASE = {"event_id": "x", "time": T, "kind": "access"}
RECORDS: list[str] = [json.dumps({**BASE, **extra}) for extra in [
    {},
    {"principal_id": "p\u00e9/\\\"q\"", "user_agent": "Mozilla \u2603 \t"},
    {"src_asn": 4766}, {"src_asn": "AS4766"}, {"src_country": "kr"}, {"src_country": ""}, {"src_country": "Korea"},
    {"time": 1744564200}, {"time": 1744564200000}, {"time": 1744564200.5}, {"time": "1744564200"},
    {"time": "2025-04-14T02:10:00"}, {"time": "2025-04-14T11:10:00+09:00"}, {"time": "2025-04-14T11:10:00+0900"},
    {"time": "2025-04-14"}, {"time": "1980-01-01T00:00:00Z"}, {"time": 99999999999999999999}, {"time": None},
    {"time": "2025-04-14t02:10:00z"}, {"time": "2025-04-14\nT02:10:00Z"}, {"time": "2025-04-14T02:10:00\nZ"},
    {"time": "Z"}, {"time": "2025-04-14T02:10:00Zz"}, {"time": "2025-04-14T02:10:00-05"},
    {"token_issued_at": "2025-04-14T02:00:00.123456Z", "token_expires_at": 1744564200},
    {"token_expires_at": "soon"},
    {"status": 200}, {"status": 200.0}, {"status": 200.5}, {"status": "200"}, {"status": -5},
    {"status": 9007199254740993}, {"bytes_out": 18446744073709551615}, {"record_count": None},
    {"status": -0}, {"status": -9007199254740991}, {"bytes_out": 1e3}, {"bytes_out": 1E400}, {"time": -5},
    {"time": True}, {"time": ["2025-04-14T02:10:00Z"]}, {"src_ip": "\\"}, {"endpoint": "/a\\u00e9?q=\\"},
    {"subject_ids": ["1", "r-2"]}, {"subject_ids": [1, 2]}, {"subject_ids": []}, {"subject_ids": ["a", None]},
    {"subject_ids": [1.5]}, {"subject_ids": [["a"]]}, {"subject_ids": "42"}, {"fields": ["name", "\u00e9"]},
    {"subject_fields": {"r-1": ["name", "phone"]}}, {"subject_fields": {}}, {"subject_fields": {"r-1": [1]}},
    {"subject_fields": {"r-1": None}}, {"subject_fields": {"r-1": ["a", None]}}, {"subject_fields": {"r": "a"}},
    {"subject_fields": []},
    {"attributes": {"a": 1, "b": [1, {"c": None}]}}, {"attributes": '{"a": 1}'}, {"attributes": "[1]"},
    {"attributes": [1]}, {"attributes": {}},
    {"vendor": "blue", "attributes": {"a": 1}}, {"vendor": {"x": [1]}}, {"event_id": None},
    {"principal_type": "robot"}, {"principal_type": "customer"}, {"action": "print"}, {"action": ""},
    {"status_value": "dormant"}, {"kind": "teleport"}, {"kind": ""}, {"kind": None}, {"kind": 5}, {"session_id": 5},
    {"session_id": True}, {"session_id": ["s"]}, {"session_id": {"s": 1}}, {"reason_ref": ""},
]] + [
    '{"event_id": "x", "time": "2025-04-14T02:10:00Z", "kind": "access", "kind": "login"}',
    '{"event_id": "x", "time": "2025-04-14T02:10:00Z", "kind": "access", "vendor": 1, "vendor": 2}',
    '  {"event_id": "x", "time": "2025-04-14T02:10:00Z", "kind": "login"}  ',
    '{"event_id": "x", "time": ', '["not", "an", "object"]', '"text"', "42", "null", "",
]
# Ids are made unique per line so that every row's values can be told apart.
LINES = [line.replace('"event_id": "x"', f'"event_id": "x{i}"', 1) for i, line in enumerate(RECORDS)]


def _compact(line: str) -> str:
    """The line as orjson writes its object (what the compact lane takes), or as it is if it holds none."""
    try:
        return orjson.dumps(json.loads(line)).decode()
    except (ValueError, TypeError):  # not JSON, or an integer orjson does not write
        return line


# The same records as compact JSON, as most producers write them: the compact lane stages those it can.
COMPACT_LINES = [_compact(line) for line in LINES]


def _run(con: duckdb.DuckDBPyConnection, fast: bool, lines: list[str] | None = None,
         typed: pa.Table | None = None, zone: str | None = None, compact: bool = False) -> tuple[list, list]:
    views: dict[str, pa.Table] = {}
    if lines is not None:
        views["_lines_in"] = pa.table({"_src": ["f"] * len(lines), "_pos": list(range(1, len(lines) + 1)),
                                       "line": [line + "\n" for line in lines]})
        if compact:
            views["_compact_in"], views["_lines_in"] = split_compact(views["_lines_in"])
    if typed is not None:
        views["_typed_in"] = typed
    with arrow_views(con, **views):
        validate_batch(con, parse_zone(zone), "_lines_in" if lines is not None else None,
                       [(k, v.schema) for k, v in views.items() if k != "_lines_in"], fast=fast)
    cols = ", ".join(f'"{n}"' for n in FIELD_NAMES)
    valid = con.execute(f"SELECT _pos, {cols} FROM _valid_rows ORDER BY _pos").fetchall()
    bad = con.execute("SELECT position, reason, detail, raw, event_id, quarantine_id FROM _bad_rows "
                      "ORDER BY position").fetchall()
    return valid, bad


@pytest.mark.parametrize("zone", [None, "Asia/Seoul"])
def test_json_lines_fast_lane_matches_the_full_validator(zone):
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    fast = _run(con, True, LINES, zone=zone)
    vouched = con.execute("SELECT count(*) FROM _fast WHERE _sure").fetchone()[0]
    full = _run(con, False, LINES, zone=zone)
    assert fast == full
    assert len(fast[0]) > 30 and len(fast[1]) > 20  # both outcomes are exercised
    assert vouched > 20  # and the fast lane vouched for many


def test_the_blank_line_filter_lets_every_other_line_through():
    """The JSON feeder skips blank lines before anything else; a line that is not blank must reach a
    verdict whatever it opens with (both lanes share the filter, so the equivalence tests cannot see it)."""
    lines = ['{"event_id": "b1", "time": "2025-04-14T02:10:00Z", "kind": "access"}',
             'not json', '  {"event_id": "b3", "time": "2025-04-14T02:10:00Z", "kind": "access"}',
             '  {"event_id": ', '}{', '[1, 2]', '"text"', '\t{"event_id": "b8"}']
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    valid, bad = _run(con, True, lines)
    assert [row[0] for row in valid] == [1, 3]
    assert [(pos, reason) for pos, reason, *_ in bad] == [
        (2, "invalid_json"), (4, "invalid_json"), (5, "invalid_json"), (6, "not_an_object"), (7, "not_an_object"),
        (8, "not_an_object")]  # DuckDB's ltrim takes spaces only


@pytest.mark.parametrize("batch", [2, 100_000])  # small batches (compact lane, full validator) and the feeder
def test_blank_lines_are_skipped_not_quarantined(tmp_path, batch):
    """Lines holding only JSON whitespace (empty, spaces, tabs, a CRLF file's '\\r') are no records: a
    file's trailing or separating blank lines must not turn into invalid_json rows of empty text."""
    from breachwatch.store.db import connect
    record = '{{"event_id": "w{}", "time": "2025-04-14T02:10:00Z", "kind": "login", "principal_id": "c1"}}'
    (tmp_path / "in.ndjson").write_bytes(("\r\n".join([record.format(1), "", "   ", "\t", record.format(2), "", ""])
                                          ).encode())
    path = str(tmp_path / "s.duckdb")
    con = connect(path)
    s = ingest_paths(con, path, [str(tmp_path / "in.ndjson")], batch_size=batch).as_dict()
    assert (s["records"], s["loaded"], s["quarantined"]) == (2, 2, 0), s
    assert con.execute("SELECT count(*) FROM quarantine").fetchone()[0] == 0


@pytest.mark.parametrize("zone", [None, "Asia/Seoul"])
def test_compact_lane_matches_the_full_validator(zone):
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    lines = COMPACT_LINES + LINES  # compact and spaced-out text of the same records, in one batch
    lines = [line.replace('"x', f'"c{i}-x', 1) for i, line in enumerate(lines)]
    staged = split_compact(pa.table({"_src": ["f"] * len(lines), "_pos": list(range(1, len(lines) + 1)),
                                     "line": [line + "\n" for line in lines]}))[0]
    fast = _run(con, True, lines, zone=zone, compact=True)
    full = _run(con, False, lines, zone=zone)
    assert fast == full
    # The lane took most compact lines and no spaced-out one; some of those it took fail a value check
    # and still get the full validator's reason and their original text as raw.
    took = set(staged.column("_pos").to_pylist())
    assert len(took) > 30 and max(took) <= len(COMPACT_LINES)
    assert {pos for pos, *_ in fast[1]} & took
    assert all(raw == lines[pos - 1] for pos, _, _, raw, _, _ in fast[1])


def _typed_rows() -> pa.Table:
    good = {"event_id": "t1", "time": dt.datetime(2025, 4, 14, 2, 10), "kind": "access", "principal_id": "7",
            "src_country": "kr", "status": 200, "subject_ids": ["7", "r-1"], "fields": ["name"],
            "subject_fields": [("r-1", ["name", "phone"])], "attributes": '{"a": [1, 2]}'}
    variants = [
        {}, {"event_id": None}, {"src_country": "Korea"}, {"kind": "teleport"}, {"time": None},
        {"time": dt.datetime(1980, 1, 1)}, {"subject_ids": ["a", None]}, {"subject_ids": []},
        {"subject_fields": [("r-1", None)]}, {"subject_fields": [("r-1", ["a", None])]}, {"attributes": "[1]"},
        {"attributes": "not json"}, {"attributes": ""}, {"principal_id": ""}, {"status": 2 ** 60},
        {"token_expires_at": dt.datetime(2025, 4, 14, 3, 0, 0, 123456)}, {"kind": ""},
    ]
    rows = [{**good, **v, **({"event_id": f"t{i}"} if "event_id" not in v else {})} for i, v in enumerate(variants)]
    table = pa.Table.from_pylist(rows, schema=ARROW_SCHEMA)
    n = table.num_rows
    return table.add_column(0, "_src", pa.array(["p"] * n)).add_column(1, "_pos", pa.array(range(1, n + 1), pa.int64()))


def test_typed_columns_fast_lane_matches_the_full_validator():
    table = _typed_rows()
    assert typed_ok(table.schema.remove(0).remove(0))
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    fast = _run(con, True, typed=table)
    vouched = con.execute("SELECT count(*) FROM _fast WHERE _sure").fetchone()[0]
    full = _run(con, False, typed=table)
    assert fast == full
    assert len(fast[0]) >= 5 and len(fast[1]) >= 5 and vouched >= 5


def test_typed_and_json_input_give_the_same_events_and_ids(store, tmp_path):
    """The same records from NDJSON and from typed Arrow columns: every event is a duplicate the second time,
    including those whose event_id is derived."""
    con, path = store
    table = _typed_rows().drop_columns(["_src", "_pos"])
    s1 = ingest_tables(con, [table], "arrow", db_path=path)
    ndjson = tmp_path / "same.ndjson"
    ndjson.write_text("".join(line + "\n" for line in typed_as_json(table).to_pylist()))
    s2 = ingest_paths(con, path, [str(ndjson)])
    assert s1.loaded > 5 and s2.loaded == 0 and s2.duplicates == s1.loaded
    assert s2.quarantined == s1.quarantined
    reasons = con.execute("SELECT source, position, reason, detail FROM quarantine ORDER BY 2, 1").fetchall()
    by_source: dict[str, list] = {}
    for src, pos, reason, detail in reasons:
        by_source.setdefault(src, []).append((pos, reason, detail))
    assert by_source["arrow"] == by_source[str(ndjson)]


def test_parquet_with_an_unknown_column_goes_as_json_and_keeps_it(store, tmp_path):
    import pyarrow.parquet as pq

    con, path = store
    table = pa.table({"event_id": ["u1"], "time": pa.array([dt.datetime(2025, 4, 14)], pa.timestamp("us")),
                      "kind": ["login"], "vendor_x": ["blue"]})
    assert not typed_ok(table.schema)
    pq.write_table(table, tmp_path / "u.parquet")
    s = ingest_paths(con, path, [str(tmp_path / "u.parquet")])
    assert s.loaded == 1
    assert json.loads(con.execute("SELECT attributes FROM events").fetchone()[0]) == {"vendor_x": "blue"}


def test_small_batches_store_what_one_big_batch_stores(tmp_path, monkeypatch):
    """Ingesting compact NDJSON 7 lines at a time (compact lane, index probes, the all-new commit) stores
    the same events, quarantine rows and counts as one batch through the JSON feeder, including a repeat
    of an earlier batch's record, a conflicting one and a repeat inside one batch."""
    from breachwatch.ingest import compactlane
    from breachwatch.store.db import connect

    extra = [COMPACT_LINES[0], COMPACT_LINES[0].replace('"access"', '"login"'), COMPACT_LINES[3], COMPACT_LINES[3]]
    (tmp_path / "in.ndjson").write_text("".join(line + "\n" for line in COMPACT_LINES + extra))
    results = []
    for name, batch, compact_max in (("small", 7, 2_000), ("big", 10_000, 0)):
        monkeypatch.setattr(compactlane, "COMPACT_MAX_LINES", compact_max)
        path = str(tmp_path / f"{name}.duckdb")
        con = connect(path)
        summary = ingest_paths(con, path, [str(tmp_path / "in.ndjson")], batch_size=batch).as_dict()
        summary.pop("batches")
        cols = ", ".join(f'"{n}"' for n in FIELD_NAMES)
        events = con.execute(f"SELECT {cols} FROM events ORDER BY event_id").fetchall()
        # A conflict's detail names where the first copy is (an earlier batch, or this one): cut differently.
        bad = con.execute("SELECT position, reason, CASE WHEN reason <> 'conflict' THEN detail END, raw, event_id "
                          "FROM quarantine ORDER BY position").fetchall()
        results.append((summary, events, bad))
        con.close()
    assert results[0] == results[1]
    summary, events, bad = results[0]
    assert summary["duplicates"] >= 2 and summary["quarantined_by_reason"].get("conflict") == 1
    assert len(events) > 30 and len(bad) > 20


def test_the_offset_shortcut_agrees_with_the_pattern():
    """`has_offset` tells a trailing Z by its last character and asks the pattern otherwise: the answer
    must be the pattern's for every text, line breaks (which the pattern's `.` does not cross) included."""
    texts = ["2025-04-14T02:10:00Z", "2025-04-14T02:10:00z", "Z", "z", "", "ZZ", "2025-04-14T02:10:00",
             "2025-04-14T11:10:00+09:00", "2025-04-14T11:10:00+0900", "2025-04-14T11:10:00-05", "+09",
             "2025-04-14\nT02:10:00Z", "2025-04-14T02:10:00\nZ", "\nZ", "Z\n", "2025-04-14\r\nZ",
             "2025-04-14T02:10:00\u00e9Z", "2025-04-14T02:10:00 Z", "Zebra", "2025-04-14T02:10:00+09:00\n", None]
    con = duckdb.connect()
    got = con.execute(f"SELECT t, {has_offset('t')}, regexp_full_match(t, {_OFFSET}) FROM "
                      "(SELECT unnest(?::VARCHAR[]) AS t)", [texts]).fetchall()
    assert [(t, fast) for t, fast, _ in got] == [(t, slow) for t, _, slow in got]
    assert sum(bool(fast) for _, fast, _ in got) >= 8  # both branches were taken
