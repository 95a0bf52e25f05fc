"""Every kind of bad input goes to quarantine with its reason; good records load; nothing is lost."""
from __future__ import annotations

import csv
import gzip
import io
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from breachwatch.contract.catalog import load_catalog
from breachwatch.contract.event import ARROW_SCHEMA
from breachwatch.ingest.normalize import parse_zone
from breachwatch.ingest.pipeline import ingest_paths, ingest_records


def write_lines(path: Path, lines: list[bytes | str]) -> Path:
    with open(path, "wb") as f:
        for ln in lines:
            f.write((ln.encode() if isinstance(ln, str) else ln) + b"\n")
    return path


def quarantine(con) -> dict[int, str]:
    return dict(con.execute("SELECT position, reason FROM quarantine").fetchall())


BAD_CASES = [
    ('{"event_id": "x", "time": ', "invalid_json"),
    ('["not", "an", "object"]', "not_an_object"),
    ('{"event_id": "x", "time": "2025-04-14T02:10:00Z", "kind": "teleport"}', "unknown_kind"),
    ('{"event_id": "x", "kind": "access"}', "missing_field"),
    ('{"event_id": "x", "time": "2025-04-14T02:10:00Z"}', "missing_field"),
    ('{"event_id": "x", "time": "next tuesday", "kind": "access"}', "bad_timestamp"),
    ('{"event_id": "x", "time": "2025-04-14T02:10:00", "kind": "access"}', "naive_timestamp"),
    ('{"event_id": "x", "time": "2025-04-14T02:10:00Z", "kind": "access", "status": "200"}', "wrong_type"),
    ('{"event_id": "x", "time": "2025-04-14T02:10:00Z", "kind": "access", "subject_ids": "42"}', "wrong_type"),
    ('{"event_id": "x", "time": "2025-04-14T02:10:00Z", "kind": "access", "attributes": [1]}', "wrong_type"),
    ('{"event_id": "x", "time": true, "kind": "access"}', "wrong_type"),
    ('{"event_id": "x", "time": "2025-04-14T02:10:00Z", "kind": "access", "principal_type": "robot"}', "bad_value"),
    ('{"event_id": "x", "time": "2025-04-14T02:10:00Z", "kind": "access", "src_country": "Korea"}', "bad_value"),
]


@pytest.mark.parametrize("line,reason", BAD_CASES)
def test_each_bad_record_is_quarantined_with_its_reason(store, tmp_path, line, reason, make_event):
    con, path = store
    f = write_lines(tmp_path / "in.ndjson", [json.dumps(make_event(1)), line, json.dumps(make_event(2))])
    s = ingest_paths(con, path, [str(f)])
    assert s.loaded == 2
    assert s.quarantined == {reason: 1}
    assert quarantine(con) == {2: reason}
    raw, source = con.execute("SELECT raw, source FROM quarantine").fetchone()
    assert raw == line and source == str(f)


def test_invalid_utf8_and_oversized_lines(store, tmp_path, make_event):
    con, path = store
    big = json.dumps(make_event(3, user_agent="A" * 5000))
    f = write_lines(tmp_path / "in.ndjson", [json.dumps(make_event(1)), b'{"event_id": "\xff\xfe"}', big,
                                             json.dumps(make_event(2))])
    s = ingest_paths(con, path, [str(f)], max_line=1024)
    assert s.loaded == 2
    assert quarantine(con) == {2: "invalid_utf8", 3: "oversized_line"}
    raw = con.execute("SELECT raw FROM quarantine WHERE reason = 'oversized_line'").fetchone()[0]
    assert raw.startswith('{"event_id": "e3"') and len(raw) <= 4096


def test_epoch_seconds_and_milliseconds_and_source_zone(store, tmp_path):
    con, path = store
    recs = [{"event_id": "s", "time": 1744564200, "kind": "login"},
            {"event_id": "ms", "time": 1744564200000, "kind": "login"},
            {"event_id": "kst", "time": "2025-04-14T02:10:00", "kind": "login"}]
    ingest_records(con, recs, "mem", db_path=path, source_tz=parse_zone("Asia/Seoul"))
    times = dict(con.execute("SELECT event_id, strftime(time, '%Y-%m-%d %H:%M:%S') FROM events").fetchall())
    assert times == {"s": "2025-04-13 17:10:00", "ms": "2025-04-13 17:10:00", "kst": "2025-04-13 17:10:00"}


def test_csv_lists_json_cells_and_missing_columns(store, tmp_path):
    con, path = store
    f = tmp_path / "in.csv"
    with open(f, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["event_id", "time", "kind", "principal_id", "subject_ids", "subject_fields", "status", "vendor_x"])
        w.writerow(["c1", "2025-04-14T02:10:00Z", "access", "7", "7|r-1",
                    json.dumps({"r-1": ["name", "phone"]}), "200", "blue"])
        w.writerow(["c2", "2025-04-14T02:10:01Z", "access"])  # missing columns
        w.writerow(["c3", "2025-04-14T02:10:02Z", "access", "7", "7", "{bad json", "200", ""])
        w.writerow(["c4", "2025-04-14T02:10:03Z", "access", "7", "7", "", "two hundred", ""])
        w.writerow(["c5", "1744564200", "login", "8", "", "", "", ""])
    s = ingest_paths(con, path, [str(f)])
    assert s.loaded == 2
    assert quarantine(con) == {3: "missing_columns", 4: "wrong_type", 5: "wrong_type"}
    sid, sf, st, attrs = con.execute(
        "SELECT subject_ids, subject_fields, status, attributes FROM events WHERE event_id = 'c1'").fetchone()
    assert sid == ["7", "r-1"] and sf == {"r-1": ["name", "phone"]} and st == 200
    assert json.loads(attrs) == {"vendor_x": "blue"}


def test_csv_header_without_time_quarantines_rows(store, tmp_path):
    con, path = store
    f = tmp_path / "in.csv"
    f.write_text("event_id,kind\nq1,access\nq2,login\n")
    s = ingest_paths(con, path, [str(f)])
    assert s.loaded == 0 and s.quarantined == {"missing_field": 2}


def test_gzip_parquet_directory_and_glob(store, tmp_path, make_event):
    con, path = store
    d = tmp_path / "logs"
    (d / "sub").mkdir(parents=True)
    with gzip.open(d / "a.ndjson.gz", "wt") as g:
        for i in range(10):
            g.write(json.dumps(make_event(i)) + "\n")
    rows = [make_event(i) for i in range(10, 20)]
    table = pa.Table.from_pylist([{**r, "time": None} for r in rows], schema=ARROW_SCHEMA)
    import datetime as dt
    times = pa.array([dt.datetime(2025, 4, 14, 2, 10, i) for i in range(10)], pa.timestamp("us"))
    table = table.set_column(1, "time", times)
    pq.write_table(table, d / "sub" / "b.parquet")
    (d / "notes.txt").write_text("not events")
    s = ingest_paths(con, path, [str(d)])
    assert s.loaded == 20 and s.skipped_files == [str(d / "notes.txt")]
    assert con.execute("SELECT count(DISTINCT event_id) FROM events").fetchone()[0] == 20
    s2 = ingest_paths(con, path, [str(tmp_path / "logs" / "**" / "*.parquet")])
    assert s2.loaded == 0 and s2.duplicates == 10


def test_truncated_gzip_is_quarantined_and_the_rest_kept(store, tmp_path, make_event):
    con, path = store
    buf = io.BytesIO()
    with gzip.GzipFile(fileobj=buf, mode="wb") as g:
        for i in range(2000):
            g.write((json.dumps(make_event(i)) + "\n").encode())
    data = buf.getvalue()
    f = tmp_path / "cut.ndjson.gz"
    f.write_bytes(data[: len(data) // 2])
    s = ingest_paths(con, path, [str(f)])
    assert s.quarantined == {"truncated_input": 1}
    assert 0 < s.loaded < 2000


def test_plain_access_log_gets_subjects_and_fields_from_the_catalog(store):
    """A gateway log naming only the user and the path becomes a complete event."""
    con, path = store
    cat = load_catalog()
    recs = [
        {"time": "2025-04-14T02:10:00Z", "kind": "access", "principal_id": "501", "endpoint": "GET /api/me/addresses"},
        {"time": "2025-04-14T02:10:01Z", "kind": "access", "principal_id": "emp-7",
         "endpoint": "GET /admin/customers/9912?tab=orders"},
        {"time": "2025-04-14T02:10:02Z", "kind": "access", "principal_id": "501", "endpoint": "GET /api/products/77"},
        {"time": "2025-04-14T02:10:03Z", "kind": "access", "principal_id": "501", "endpoint": "GET /nowhere"},
    ]
    s = ingest_records(con, recs, "gateway.log", db_path=path, catalog=cat)
    assert s.loaded == 4 and s.uncatalogued == 1
    got = con.execute("SELECT endpoint, subject_ids, fields, json_extract_string(attributes, '$.path') "
                      "FROM events ORDER BY time").fetchall()
    assert got[0] == ("GET /api/me/addresses", ["501"], ["name", "phone", "address", "entrance_code_masked"], None)
    assert got[1] == ("GET /admin/customers/{customerId}", ["9912"], ["name", "email", "phone", "address"],
                      "GET /admin/customers/9912?tab=orders")
    assert got[2][0] == "GET /api/products/{productId}" and got[2][1] is None and got[2][2] is None
    assert got[3] == ("GET /nowhere", None, None, None)


def test_derived_event_id_is_stable_across_formats(store, tmp_path):
    con, path = store
    rec = {"time": "2025-04-14T02:10:00Z", "kind": "login", "principal_id": "5", "status": 200}
    write_lines(tmp_path / "a.ndjson", [json.dumps(rec)])
    (tmp_path / "a.csv").write_text("time,kind,principal_id,status\n2025-04-14T02:10:00Z,login,5,200\n")
    s = ingest_paths(con, path, [str(tmp_path / "a.ndjson"), str(tmp_path / "a.csv")])
    assert s.loaded == 1 and s.duplicates == 1
    assert con.execute("SELECT event_id FROM events").fetchone()[0].startswith("h-")


def test_default_batch_is_a_whole_number_of_duckdbs_row_groups(tmp_path):
    """The default batch inserts the cheap way only while it is a whole number of DuckDB's row groups
    (pipeline.ROW_GROUP_ROWS); a DuckDB that groups rows otherwise fails this rather than ingesting slower."""
    import duckdb

    from breachwatch.ingest.pipeline import DEFAULT_BATCH, ROW_GROUP_ROWS
    con = duckdb.connect(str(tmp_path / "rg.duckdb"))
    con.execute("CREATE TABLE t AS SELECT range AS i FROM range(3 * 122_880 + 5)")
    con.execute("CHECKPOINT")
    rows = dict(con.execute("SELECT row_group_id, sum(count) FROM pragma_storage_info('t') "
                            "WHERE segment_type <> 'VALIDITY' GROUP BY 1").fetchall())
    assert rows == {0: ROW_GROUP_ROWS, 1: ROW_GROUP_ROWS, 2: ROW_GROUP_ROWS, 3: 5}
    assert DEFAULT_BATCH % ROW_GROUP_ROWS == 0 and DEFAULT_BATCH >= 2 * ROW_GROUP_ROWS
