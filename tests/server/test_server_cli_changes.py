"""While `serve` holds the store, an analyst's incident changes from the CLI go through it (`--server`)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path

from server_helpers import ServerProcess, make_store

from breachwatch.contract.catalog import parse_catalog
from breachwatch.detect.config import load_detect_config
from breachwatch.detect.engine import run_detect
from breachwatch.ingest.pipeline import ingest_records
from breachwatch.store.db import connect

BIN = Path(sys.executable).parent / "breachwatch"
T0 = datetime(2025, 5, 1, 9, 0, 0)


def _canary_incident(db: str) -> str:
    """An incident in the store: an employee read a honey record."""
    con = connect(db)
    reads = [{"event_id": f"r{i}", "time": (T0 + timedelta(seconds=i)).isoformat() + "Z", "kind": "access",
              "principal_id": "agent.kim", "principal_type": "employee", "src_ip": "10.0.0.5", "src_country": "KR",
              "endpoint": "GET /admin/customers/{customerId}", "subject_ids": [s], "fields": ["name"],
              "status": 200, "reason_ref": "T-1"} for i, s in enumerate(["c-100", "honey-1", "c-101"])]
    ingest_records(con, reads, "test", db_path=db)
    res = run_detect(con, load_detect_config(parse_catalog('canaries: ["honey-1"]\n', "<t>")))
    con.close()
    return res.incidents_opened[0]


def _cli(*args: str, key: str | None = None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("BREACHWATCH_API_KEY", "BREACHWATCH_SERVER")}
    if key:
        env["BREACHWATCH_API_KEY"] = key
    return subprocess.run([str(BIN), *args], capture_output=True, text=True, env=env, timeout=120)


def test_incident_changes_go_through_the_running_server(tmp_path):
    db, keys = make_store(tmp_path)
    inc = _canary_incident(db)
    server = ServerProcess(db, "--detect-interval", "0")
    try:
        # The store is held by the server: a change made on the file itself is refused with the fix.
        direct = _cli("incidents", "ack", inc, "--by", "kim", "--db", db)
        assert direct.returncode == 2 and "--server" in direct.stderr + direct.stdout
        listed = _cli("incidents", "--server", server.url, "--json", key=keys["analyst"])
        assert listed.returncode == 0, listed.stderr
        assert [i["id"] for i in json.loads(listed.stdout)] == [inc]
        shown = _cli("incidents", inc, "--server", server.url, key=keys["analyst"])
        assert shown.returncode == 0 and "canary" in shown.stdout.lower(), shown.stderr
        alerts = _cli("incidents", "alerts", "--server", server.url, "--json", key=keys["analyst"])
        assert alerts.returncode == 0 and json.loads(alerts.stdout)[0]["incident_id"] == inc
        acked = _cli("incidents", "ack", inc, "--note", "on it", "--server", server.url, "--json", key=keys["analyst"])
        assert acked.returncode == 0, acked.stderr
        assert json.loads(acked.stdout)["status"] == "acknowledged"
        refused = _cli("incidents", "resolve", inc, "--server", server.url, key=keys["dpo"])
        assert refused.returncode != 0 and "403" in refused.stderr
        fp = _cli("incidents", "false-positive", inc, "--scope", "pattern", "--expires", "7d", "--reason",
                  "QA account", "--server", server.url, "--json", key=keys["analyst"])
        assert fp.returncode == 0, fp.stderr
        listed = _cli("incidents", "suppressions", "--active", "--server", server.url, "--json", key=keys["analyst"])
        sups = json.loads(listed.stdout)
        assert [s["incident_id"] for s in sups] == [inc] and sups[0]["created_by"].startswith("key:")
        lifted = _cli("incidents", "unsuppress", sups[0]["suppression_id"], "--reason", "QA over", "--server",
                      server.url, "--json", key=keys["analyst"])
        assert lifted.returncode == 0, lifted.stderr
        again = _cli("incidents", "unsuppress", sups[0]["suppression_id"], "--reason", "twice", "--server",
                     server.url, key=keys["analyst"])
        assert again.returncode != 0 and "409" in again.stderr
    finally:
        server.stop()
    con = connect(db, read_only=True)
    actions = [r[0] for r in con.execute("SELECT action FROM audit_log WHERE actor LIKE 'key:%' AND action IN "
                                         "('incident.acknowledge', 'incident.false_positive', 'suppression.lift') "
                                         "ORDER BY seq").fetchall()]
    assert actions == ["incident.acknowledge", "incident.false_positive", "suppression.lift"]
    assert con.execute("SELECT status FROM incidents WHERE incident_id = ?", [inc]).fetchone()[0] == "false_positive"


def test_a_change_without_a_server_must_name_who_makes_it(tmp_path):
    db, _ = make_store(tmp_path)
    inc = _canary_incident(db)
    out = _cli("incidents", "ack", inc, "--db", db)
    assert out.returncode == 2 and "--by" in out.stderr


def test_a_dpo_scopes_and_records_duties_through_the_running_server(tmp_path):
    db, keys = make_store(tmp_path)
    inc = _canary_incident(db)
    server = ServerProcess(db, "--detect-interval", "0")
    out = tmp_path / "scope-copy"
    try:
        denied = _cli("scope", inc, "--server", server.url, "--out", str(out), key=keys["analyst"])
        assert denied.returncode != 0 and "403" in denied.stderr
        aware = _cli("scope", "aware-at", inc, "--at", "2025-05-01T20:00:00+09:00", "--reason", "PIPC finding",
                     "--server", server.url, "--json", key=keys["dpo"])
        assert aware.returncode == 0, aware.stderr
        assert json.loads(aware.stdout)["aware_at"].startswith("2025-05-01T11:00:00")
        duty = _cli("scope", "duty-done", inc, "--duty", "pipa_regulator", "--at", "2025-05-02T09:00:00+09:00",
                    "--server", server.url, key=keys["dpo"])
        assert duty.returncode == 0, duty.stderr
        bad = _cli("scope", "duty-done", inc, "--duty", "pipa_regulator", "--at", "2025-05-02 09:00",
                   "--server", server.url, key=keys["dpo"])
        assert bad.returncode == 2 and "offset" in bad.stderr
        run = _cli("scope", inc, "--accept-all", "--server", server.url, "--out", str(out), "--json", key=keys["dpo"])
        # The notices to the people were due long ago: the run says so with exit code 1.
        assert run.returncode == 1, run.stderr
        doc = json.loads(run.stdout)
        assert doc["version"] == 1 and doc["subjects"] >= 1 and "pipa_notice" in doc["missed_deadlines"]
        assert "pipa_regulator" not in doc["missed_deadlines"]  # recorded as done above, within 72 h
        assert (out / "manifest.csv").is_file() and (out / "deadlines.json").is_file()
    finally:
        server.stop()
    con = connect(db, read_only=True)
    assert con.execute("SELECT created_by FROM scope_runs").fetchone()[0].startswith("key:")
    assert con.execute("SELECT recorded_by FROM scope_duties").fetchone()[0].startswith("key:")


def test_address_book_snapshots_go_through_the_running_server(tmp_path):
    db, keys = make_store(tmp_path)
    snap = tmp_path / "book.csv"
    snap.write_text("member_id,recipient_id,valid_from\n1001,r-1,2025-04-01T00:00:00+09:00\n"
                    "1001,r-2,2025-04-01T00:00:00+09:00\n")
    broken = tmp_path / "broken.csv"
    broken.write_text("member,recipient\n1,2\n")
    server = ServerProcess(db, "--detect-interval", "0")
    try:
        for _ in range(2):  # loaded twice with --replace: still two rows
            r = _cli("scope", "address-book", str(snap), "--replace", "--server", server.url, "--json", key=keys["dpo"])
            assert r.returncode == 0, r.stderr
            assert json.loads(r.stdout) == {str(snap): 2}
        bad = _cli("scope", "address-book", str(broken), "--server", server.url, key=keys["dpo"])
        assert bad.returncode != 0 and "missing column" in bad.stderr and str(broken) in bad.stderr
        assert "bw-addressbook" not in bad.stderr  # the server's scratch file is not named
    finally:
        server.stop()
    con = connect(db, read_only=True)
    assert con.execute("SELECT count(*), any_value(source) FROM address_book_snapshots").fetchone() == (2, str(snap))


def test_discovery_is_recorded_by_the_running_server(tmp_path):
    """The scan runs where the data is and resumes in its own store; the server keeps the data map."""
    import csv

    from breachwatch.discover import samples

    db, keys = make_store(tmp_path)
    folder = tmp_path / "exports"
    folder.mkdir()
    rows = samples.customer_rows(300, seed=5)
    with open(folder / "customers.csv", "w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    work = tmp_path / "scan.duckdb"
    # Phone numbers that leaked into the gateway's logged URLs: `--store` finds them in the events.
    con = connect(db)
    ingest_records(con, [{"event_id": f"q{i}", "time": (T0 + timedelta(seconds=i)).isoformat() + "Z",
                          "kind": "access", "principal_id": "c1", "endpoint": f"GET /api/search?q=010-1234-{i:04d}"}
                         for i in range(50)], "gw", db_path=db)
    con.close()
    server = ServerProcess(db, "--detect-interval", "0")
    try:
        # The events are the server's to read: it scans them itself, into its data map.
        held = _cli("discover", "--store", "--server", server.url, "--db", str(work), "--json", key=keys["admin"])
        assert held.returncode == 0, held.stderr
        [scan] = json.loads(held.stdout)["scans"]
        assert scan["source"] == f"store:{Path(db).resolve()}" and scan["status"] == "complete"
        assert [(f["column"], f["entity"]) for t in scan["tables"] for f in t["findings"]] == [("endpoint", "PHONE")]
        shown = _cli("discover", "--store", "--server", server.url, "--db", str(work), key=keys["admin"])
        assert shown.returncode == 0 and "PHONE" in shown.stdout, shown.stderr
        in_logs = _cli("discover", "--list", "--server", server.url, "--json", key=keys["dpo"])
        assert any(f["source"] == scan["source"] for f in json.loads(in_logs.stdout)["datamap"])
        denied = _cli("discover", "--store", "--server", server.url, "--db", str(work), key=keys["analyst"])
        assert denied.returncode != 0 and "403" in denied.stderr
        for _ in range(2):  # a second scan of the same table replaces its findings
            r = _cli("discover", str(folder), "--server", server.url, "--db", str(work), "--fresh", "--json",
                     key=keys["admin"])
            assert r.returncode == 0, r.stderr
            sent = json.loads(r.stdout)["sent"]
            assert len(sent) == 1 and sent[0]["findings"] >= 3
        listed = _cli("discover", "--list", "--server", server.url, "--json", key=keys["dpo"])
        assert listed.returncode == 0, listed.stderr
        found = json.loads(listed.stdout)["datamap"]
        assert {f["field"] for f in found} >= {"email", "phone"}
        assert len([f for f in found if f["source"] != scan["source"]]) == sent[0]["findings"]
        denied = _cli("discover", str(folder), "--server", server.url, "--db", str(work), key=keys["analyst"])
        assert denied.returncode != 0 and "403" in denied.stderr
    finally:
        server.stop()
    assert work.exists()  # where the scan resumes


def test_verify_through_the_running_server(tmp_path):
    """verify cannot open a store the server holds; --server has the server check its chain and anchor."""
    from server_helpers import event

    from breachwatch.server.client import ServerClient

    db, keys = make_store(tmp_path)
    server = ServerProcess(db, "--detect-interval", "0")
    try:
        with ServerClient(server.url, keys["ingest"]) as c:
            for k in range(3):
                c.post_events(b"".join(json.dumps(event(i, f"v{k}-")).encode() + b"\n" for i in range(20)))
        held = _cli("verify", "--db", db)
        assert held.returncode == 2 and "--server" in held.stderr
        ok = _cli("verify", "--server", server.url, "--json", key=keys["analyst"])
        assert ok.returncode == 0, ok.stderr
        rep = json.loads(ok.stdout)
        assert rep["ok"] and rep["events"] == 60 and rep["links"] == rep["anchor_links"] >= 1
        anchor = Path(db + ".anchor")  # someone rewrites the outside anchor: the chain no longer matches it
        lines = anchor.read_text().splitlines()
        first = json.loads(lines[0])
        lines[0] = json.dumps({**first, "head": "0" * 64})
        anchor.write_text("\n".join(lines) + "\n")
        bad = _cli("verify", "--server", server.url, "--json", key=keys["analyst"])
        assert bad.returncode == 1 and json.loads(bad.stdout)["problem"] == "rewritten"
        assert _cli("verify", "--server", server.url, key=keys["ingest"]).returncode != 0  # not its role
    finally:
        server.stop()
