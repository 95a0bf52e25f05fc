"""`breachwatch demo` simulates, ingests and reports only numbers it computed from the store."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import duckdb

BIN = Path(sys.executable).parent / "breachwatch"


def test_demo_json_matches_the_store(tmp_path):
    out = tmp_path / "demo"
    r = subprocess.run([str(BIN), "demo", "--out", str(out), "--customers", "2000", "--days", "0.5", "--json"],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    res = json.loads(r.stdout)
    s = res["store_summary"]
    assert res["ingest"]["loaded"] == res["simulated"]["events"] == s["events"]
    assert res["ingest"]["quarantined"] == 0 and s["quarantined"] == []
    assert sum(n for _, n in s["by_kind"]) == s["events"]
    assert {k for k, _ in s["by_kind"]} >= {"access", "login", "token_issued"}
    assert (out / "truth.json").exists()
    con = duckdb.connect(res["store"], read_only=True)
    assert con.execute("SELECT count(*) FROM events").fetchone()[0] == s["events"]
    assert con.execute("SELECT count(*) FROM batches").fetchone()[0] == s["chain_links"] >= 1
    con.close()
    v = subprocess.run([str(BIN), "verify", "--db", res["store"]], capture_output=True, text=True)
    assert v.returncode == 0, v.stdout
