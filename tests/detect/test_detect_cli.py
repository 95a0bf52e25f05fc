"""`breachwatch detect` and `breachwatch incidents` as a user runs them."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

BIN = Path(sys.executable).parent / "breachwatch"


def _run(*args: str, cwd: Path, check: bool = True) -> subprocess.CompletedProcess:
    env = {**os.environ, "BREACHWATCH_DB": str(cwd / "store.duckdb")}
    env.pop("BREACHWATCH_CATALOG", None)
    p = subprocess.run([str(BIN), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120)
    if check:
        assert p.returncode == 0, p.stderr + p.stdout
    return p


def _events(path: Path) -> None:
    lines = []
    for i in range(3):
        lines.append({"event_id": f"e{i}", "time": f"2025-06-01T09:00:0{i}Z", "kind": "access",
                      "principal_id": "agent.lee", "principal_type": "employee", "src_ip": "10.1.1.1",
                      "endpoint": "GET /admin/customers/{customerId}", "subject_ids": [["c-1", "honey-7", "c-2"][i]],
                      "fields": ["name"], "status": 200, "reason_ref": "T-9"})
    path.write_text("\n".join(json.dumps(x) for x in lines) + "\n")


def test_detect_then_list_show_and_close_an_incident(tmp_path):
    (tmp_path / "breachwatch.yaml").write_text('canaries: ["honey-7"]\n')
    _events(tmp_path / "ev.ndjson")
    _run("ingest", "ev.ndjson", cwd=tmp_path)
    out = json.loads(_run("detect", "--json", cwd=tmp_path).stdout)
    assert out["events"] == 3 and len(out["incidents_opened"]) == 1
    inc_id = out["incidents_opened"][0]
    again = json.loads(_run("detect", "--json", cwd=tmp_path).stdout)
    assert again["events"] == 0 and again["incidents_opened"] == []

    listed = json.loads(_run("incidents", "--json", cwd=tmp_path).stdout)
    assert [i["id"] for i in listed] == [inc_id] and listed[0]["detectors"] == ["canary_read"]
    shown = json.loads(_run("incidents", inc_id, "--json", cwd=tmp_path).stdout)
    assert shown["id"] == inc_id and shown["subjects"] == 1
    text = _run("incidents", inc_id, cwd=tmp_path).stdout
    assert "canary" in text and "Evidence" in text

    bad = _run("incidents", "false-positive", inc_id, "--scope", "pattern", "--expires", "30d", "--reason",
               "reads by the person it is about", "--by", "agent.lee", cwd=tmp_path, check=False)
    assert bad.returncode == 2 and "cannot suppress" in bad.stderr
    _run("incidents", "false-positive", inc_id, "--scope", "pattern", "--expires", "30d", "--reason",
         "honey record seeded by the QA run", "--by", "qa.lead", cwd=tmp_path)
    sups = json.loads(_run("incidents", "suppressions", "--json", cwd=tmp_path).stdout)
    assert sups[0]["created_by"] == "qa.lead" and sups[0]["active"]
    _run("incidents", "unsuppress", sups[0]["suppression_id"], "--by", "sec.head", "--reason", "QA over",
         cwd=tmp_path)
    assert json.loads(_run("incidents", "--json", "--status", "false_positive", cwd=tmp_path).stdout)[0]["id"] == inc_id


def test_usage_errors_exit_2_with_the_fix(tmp_path):
    (tmp_path / "breachwatch.yaml").write_text("detectors:\n  enumeration: {windowz: [1h]}\n")
    p = _run("detect", cwd=tmp_path, check=False)
    assert p.returncode == 2 and "detectors.enumeration.windowz" in p.stderr and "Fix:" in p.stderr
    (tmp_path / "breachwatch.yaml").write_text("{}\n")
    _events(tmp_path / "ev.ndjson")
    _run("ingest", "ev.ndjson", cwd=tmp_path)
    p = _run("incidents", "INC-424242", cwd=tmp_path, check=False)
    assert p.returncode == 2 and "does not exist" in p.stderr
    p = _run("incidents", "--status", "closed", cwd=tmp_path, check=False)
    assert p.returncode == 2 and "--status closed" in p.stderr
