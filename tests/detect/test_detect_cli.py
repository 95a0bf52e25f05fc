"""`breachwatch detect` and `breachwatch incidents` as a user runs them."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from cli_runner import run_group_cli


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path, monkeypatch):
    """Each test is a user in a fresh directory: ./breachwatch.yaml and the store live there."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("BREACHWATCH_DB", str(tmp_path / "store.duckdb"))
    monkeypatch.delenv("BREACHWATCH_CATALOG", raising=False)


def _run(*args: str, cwd: Path, check: bool = True):
    p = run_group_cli(("ingest", "detect", "incidents"), *args)
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
