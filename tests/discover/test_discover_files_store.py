"""Scanning files, SQLite and the event store; resuming; the data map; catalog suggestions; the CLI."""
from __future__ import annotations

import csv
import json
import random
import sqlite3

import orjson
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from discover_helpers import findings_by_column
from typer.testing import CliRunner

import breachwatch.cli.discover  # noqa: F401  (registers the discover and deidentify commands)
from breachwatch.cli.main import app
from breachwatch.contract.catalog import load_catalog
from breachwatch.discover import datamap, samples
from breachwatch.discover.engine import Analyzer
from breachwatch.discover.scan import Budget, scan_source, scan_sources
from breachwatch.discover.scanners.eventstore import EventStoreSource
from breachwatch.discover.suggest import suggest_catalog
from breachwatch.store.db import connect


@pytest.fixture()
def store(tmp_path):
    con = connect(tmp_path / "store.duckdb")
    yield con
    con.close()


def _write_customer_files(folder, n: int = 800) -> None:
    rows = samples.customer_rows(n, seed=21)
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / "customers.csv", "w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    pq.write_table(pa.Table.from_pylist([{k: str(v) for k, v in r.items()} for r in rows]), folder / "orders.parquet")
    nested = folder / "nested"
    nested.mkdir(exist_ok=True)
    with open(nested / "members.ndjson", "wb") as f:
        for r in rows:
            f.write(orjson.dumps({"id": r["cust_no"], "profile": {"hp": r["cust_hp_no"], "mail": r["email_addr"]},
                                  "grade": r["grade"]}) + b"\n")
    (folder / "notes.txt").write_text("not a table", "utf-8")


def test_folder_of_csv_parquet_and_ndjson(store, tmp_path) -> None:
    folder = tmp_path / "export"
    _write_customer_files(folder)
    [report] = scan_sources(store, [str(folder)], budget=Budget(sample=500))
    found = findings_by_column(report)
    assert {t.table for t in report.tables} == {"customers.csv", "orders.parquet", "nested/members.ndjson"}
    for table in ("customers.csv", "orders.parquet"):
        assert found[(table, "jumin_no")] == {"KR_RRN"}
        assert found[(table, "cust_hp_no")] == {"PHONE"}
        assert (table, "prod_cd") not in found and (table, "ord_no") not in found
    # Nested JSON is scanned as JSON text: the struct column holds phones and emails.
    assert found[("nested/members.ndjson", "profile")] >= {"PHONE", "EMAIL"}
    parquet = next(t for t in report.tables if t.table == "orders.parquet")
    assert parquet.estimated_rows == 800 and parquet.sampled_rows == 500


def test_sqlite_is_opened_read_only(store, tmp_path) -> None:
    db = tmp_path / "shop.db"
    con = sqlite3.connect(db)
    con.execute("CREATE TABLE members (id INTEGER PRIMARY KEY, name TEXT, phone TEXT, pw_hash BLOB)")
    rng = random.Random(2)
    con.executemany("INSERT INTO members (name, phone, pw_hash) VALUES (?, ?, ?)",
                    [(samples.person_name(rng), samples.phone_number(rng, "mobile"), b"\x00") for _ in range(3000)])
    con.commit()
    con.close()
    before = db.read_bytes()
    [report] = scan_sources(store, [f"sqlite:///{db}"], budget=Budget(sample=300))
    found = findings_by_column(report)
    assert found[("members", "name")] == {"PERSON_NAME"} and found[("members", "phone")] == {"PHONE"}
    assert report.tables[0].sample_method.startswith("10 rowid-range slices")
    assert db.read_bytes() == before


def test_sqlite_rowid_sample_tops_up_short_slices_without_repeats(tmp_path) -> None:
    """A rowid range with a far outlier: every random slice lands past the dense rows and reads the one
    outlying row, so the sample must top up from the start of the range and count each row once."""
    from breachwatch.discover.scanners.sqlite import SQLiteSource
    db = tmp_path / "skewed.db"
    con = sqlite3.connect(db)
    con.execute("CREATE TABLE notes (id INTEGER PRIMARY KEY, note TEXT)")
    con.executemany("INSERT INTO notes VALUES (?, ?)", [(i, f"n{i}") for i in range(1, 101)] + [(10**12, "far")])
    con.commit()
    con.close()
    source = SQLiteSource(f"sqlite:///{db}")
    try:
        [table] = [t for t in source.tables() if t.name == "notes"]
        sample = source.sample(table, 40, 10.0)
    finally:
        source.close()
    assert sample.method == "10 rowid-range slices of 4 rows"
    assert len(sample.rows) == 40 and len(set(sample.rows)) == 40 and ("1000000000000", "far") in sample.rows


def test_budget_stops_the_scan_and_the_next_run_resumes(store, tmp_path) -> None:
    folder = tmp_path / "export"
    _write_customer_files(folder, n=300)
    first = scan_sources(store, [str(folder)], budget=Budget(sample=300, max_rows=300))[0]
    assert first.status == "incomplete" and "row budget" in first.message
    assert [t.status for t in first.tables] == ["done"]
    second = scan_sources(store, [str(folder)], budget=Budget(sample=300))[0]
    assert second.resumed and second.run_id == first.run_id and second.status == "complete"
    assert sorted(t.status for t in second.tables) == ["done", "done", "resumed"]
    third = scan_sources(store, [str(folder)], budget=Budget(sample=300))[0]
    assert not third.resumed and third.run_id != first.run_id
    statuses = [r["status"] for r in datamap.list_runs(store)]
    assert statuses.count("complete") == 2


def test_time_budget_marks_the_run_incomplete(store, tmp_path) -> None:
    folder = tmp_path / "export"
    _write_customer_files(folder, n=50)
    budget = Budget(sample=50, max_seconds=1)
    budget.started -= 10  # the budget is already spent when the scan begins
    [report] = scan_sources(store, [str(folder)], budget=budget)
    assert report.status == "incomplete" and "time budget" in report.message


def _insert_events(con, events: list[dict]) -> None:
    for i, e in enumerate(events):
        con.execute("INSERT INTO events (event_id, time, kind, endpoint, user_agent, attributes, batch_id) "
                    "VALUES (?, now(), 'access', ?, ?, ?, 1)",
                    [f"e{i}", e["endpoint"], e.get("user_agent"), json.dumps(e.get("attributes", {}))])


def test_event_store_scan_finds_personal_data_in_logs(store, tmp_path) -> None:
    rng = random.Random(4)
    events = []
    for i in range(400):
        phone = samples.phone_number(rng, "mobile")
        events.append({
            "endpoint": f"GET /api/search?q={phone}" if i % 2 else f"GET /api/products/{i}",
            "user_agent": "Mozilla/5.0 (Linux; Android 14) AppleWebKit/537.36",
            "attributes": {"referrer": f"https://shop.example/orders?email={samples.email(rng)}", "region": "KR"},
        })
    _insert_events(store, events)
    label = f"store:{tmp_path / 'store.duckdb'}"
    report = scan_source(store, EventStoreSource(store, label), budget=Budget(sample=1000), analyzer=Analyzer())
    found = findings_by_column(report)
    assert found[("events", "endpoint")] == {"PHONE"}
    assert found[("events", "attributes.referrer")] == {"EMAIL"}
    assert ("events", "user_agent") not in found and ("events", "attributes.region") not in found
    suggestion = suggest_catalog(datamap.list_datamap(store), load_catalog(None))
    assert {(x["column"], x["entity"]) for x in suggestion["personal_data_in_logs"]} == \
        {("endpoint", "PHONE"), ("attributes.referrer", "EMAIL")}


def test_suggest_catalog_from_captured_responses_and_tables(store, tmp_path) -> None:
    rng = random.Random(8)
    capture = tmp_path / "responses.ndjson"
    with open(capture, "wb") as f:
        for _ in range(60):
            f.write(orjson.dumps({"endpoint": "GET /api/me/profile",
                                  "response": {"name": samples.person_name(rng), "email": samples.email(rng)}}) + b"\n")
            f.write(orjson.dumps({"endpoint": "GET /api/me/addresses", "response": {"addresses": [
                {"recipient_name": samples.person_name(rng), "phone": samples.phone_number(rng, "mobile"),
                 "address": samples.address(rng)} for _ in range(2)]}}) + b"\n")
            f.write(orjson.dumps({"endpoint": "GET /api/me/identity",
                                  "response": {"rrn": samples.resident_number(rng)}}) + b"\n")
    members = tmp_path / "tb_member.csv"
    with open(members, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["mbr_no", "mbr_nm", "email"])
        for i in range(100):
            w.writerow([i, samples.person_name(rng), samples.email(rng)])
    scan_sources(store, [str(capture), str(members)], budget=Budget(sample=500))
    suggestion = suggest_catalog(datamap.list_datamap(store), load_catalog(None))
    by_route = {e["route"]: e for e in suggestion["endpoints"]}
    assert by_route["GET /api/me/profile"]["observed_fields"] == ["email", "name"]
    assert by_route["GET /api/me/addresses"]["observed_fields"] == ["address", "name", "phone"]
    assert by_route["GET /api/me/addresses"]["missing_from_catalog"] == []
    identity = by_route["GET /api/me/identity"]
    assert not identity["in_catalog"] and identity["missing_from_catalog"] == ["resident_registration_number"]
    assert suggestion["fields"] == {}  # the default catalog declares every field found
    assert "email" in by_route["GET /api/members/{memberId}/profile"]["possible_fields"]


runner = CliRunner()


def test_cli_discover_json_list_and_exit_codes(tmp_path) -> None:
    folder = tmp_path / "export"
    _write_customer_files(folder, n=200)
    db = str(tmp_path / "cli.duckdb")
    result = runner.invoke(app, ["discover", str(folder), "postgresql://postgres@127.0.0.1:1/test",
                                 "--db", db, "--sample", "100", "--json"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert [s["status"] for s in doc["scans"]] == ["complete", "failed"]
    listed = runner.invoke(app, ["discover", "--list", "--suggest-catalog", "--db", db, "--json"])
    assert listed.exit_code == 0
    doc = json.loads(listed.stdout)
    assert {r["column_name"] for r in doc["datamap"]} >= {"jumin_no", "cust_hp_no", "email_addr", "rcv_addr"}
    assert "endpoints" in doc["suggestion"]
    text = runner.invoke(app, ["discover", "--suggest-catalog", "--db", db])
    assert text.exit_code == 0 and "fields:" in text.stdout and "endpoints:" in text.stdout
    # Nothing could be scanned at all: unusable input.
    failed = runner.invoke(app, ["discover", str(tmp_path / "missing.csv"), "--db", db])
    assert failed.exit_code == 2
    assert runner.invoke(app, ["discover", "--db", db]).exit_code == 2


def test_cli_scans_the_event_store(tmp_path) -> None:
    db = tmp_path / "events.duckdb"
    con = connect(db)
    _insert_events(con, [{"endpoint": f"GET /api/search?q=010-1234-{i:04d}"} for i in range(50)])
    con.close()
    result = runner.invoke(app, ["discover", "--store", "--db", str(db), "--json"])
    assert result.exit_code == 0, result.output
    [scan] = json.loads(result.stdout)["scans"]
    assert scan["source"] == f"store:{db.resolve()}" and scan["status"] == "complete"
    [table] = scan["tables"]
    assert [(f["column"], f["entity"]) for f in table["findings"]] == [("endpoint", "PHONE")]
