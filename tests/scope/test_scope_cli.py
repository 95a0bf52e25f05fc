"""`breachwatch scope INCIDENT --out DIR` and its helpers, run as a user would."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from scope_world import build, incident_of
from typer.testing import CliRunner

from breachwatch.cli.main import _register, app
from breachwatch.ingest.pipeline import ingest_records
from breachwatch.store.db import connect

_register()
KEY_HEX = "11" * 32


@pytest.fixture
def cli_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    path = str(tmp_path / "store.duckdb")
    con = connect(path)
    w = build()
    ingest_records(con, w.events, "fixture", db_path=path)
    con.close()
    inc, seed = incident_of(w, "forged_token")
    f = tmp_path / "incident.json"
    f.write_text(json.dumps({**inc, "event_ids": seed}))
    monkeypatch.setenv("BREACHWATCH_LOOKUP_KEY", KEY_HEX)
    monkeypatch.chdir(tmp_path)
    return path, f, w


def _run(*args: str):
    return CliRunner().invoke(app, list(args), catch_exceptions=False)


def test_scope_incident_out_dir_with_steps_accepted_by_id(cli_store, tmp_path: Path) -> None:
    db, f, w = cli_store
    prop = _run("scope", "INC-forged_token", "--propose", "--incident-file", str(f), "--db", db, "--json")
    assert prop.exit_code == 0, prop.output
    steps = json.loads(prop.stdout)
    assert [s["id"] for s in steps] == ["unissued-key:k-2019-07"] and steps[0]["evidence"]
    out = tmp_path / "out"
    res = _run("scope", "INC-forged_token", "--out", str(out), "--accept", "unissued-key:k-2019-07",
               "--incident-file", str(f), "--db", db, "--no-pdf", "--json")
    # The test history is from 2025: its 72-hour deadlines are long gone, a finding (exit 1).
    assert res.exit_code == 1, res.output
    doc = json.loads(res.stdout)
    assert doc["subjects"] == len({s for s, _ in w.truth["forged_token"]})
    assert doc["steps"][0]["decision"] == "accepted"
    assert set(doc["missed_deadlines"]) >= {"pipa_notice", "pipa_regulator"}
    for name in ("manifest.csv", "manifest.parquet", "counts_by_field.csv", "counts_by_category.parquet",
                 "steps.json", "exposures.csv", "deadlines.json", "reports/pipa_regulator.ko.md",
                 "reports/gdpr_art34.en.html"):
        assert (out / name).exists(), name


def test_unknown_step_and_missing_out_are_usage_errors(cli_store) -> None:
    db, f, _ = cli_store
    res = _run("scope", "INC-forged_token", "--out", "x", "--accept", "same-key:k-2019-07",
               "--incident-file", str(f), "--db", db)
    assert res.exit_code == 2 and "was not proposed" in res.output
    res = _run("scope", "INC-forged_token", "--incident-file", str(f), "--db", db)
    assert res.exit_code == 2 and "--out is required" in res.output


def test_aware_at_needs_a_reason_and_is_recorded(cli_store) -> None:
    db, f, _ = cli_store
    res = _run("scope", "aware-at", "INC-forged_token", "--at", "2025-04-01T09:00:00", "--reason", "x", "--by", "y",
               "--incident-file", str(f), "--db", db)
    assert res.exit_code == 2 and "no UTC offset" in res.output
    res = _run("scope", "aware-at", "INC-forged_token", "--at", "2025-04-01T09:00:00+09:00", "--reason",
               "KISA's finding", "--by", "legal", "--incident-file", str(f), "--db", db, "--json")
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    assert doc["aware_at"] == "2025-04-01T00:00:00+00:00" and doc["history"][0]["reason"] == "KISA's finding"


def test_lookup_token_and_lookup(cli_store, tmp_path: Path) -> None:
    db, f, _ = cli_store
    assert _run("scope", "INC-forged_token", "--out", str(tmp_path / "o"), "--accept-all", "--no-pdf",
                "--incident-file", str(f), "--db", db).exit_code == 1
    token = _run("scope", "lookup-token", "r-10").stdout.strip()
    ok = _run("scope", "lookup", token, "--db", db)
    assert ok.exit_code == 0 and json.loads(ok.stdout)["exposed"] is True
    denied = _run("scope", "lookup", token, "--subject", "r-11", "--db", db)
    assert denied.exit_code == 1 and json.loads(denied.stdout)["error"] == "invalid_or_expired_token"


def test_address_book_snapshots_load_from_the_command_line(cli_store, tmp_path: Path) -> None:
    db, _, _ = cli_store
    snap = tmp_path / "books.csv"
    snap.write_text("member_id,recipient_id,valid_from\n1000001,r-1,2025-01-01T00:00:00+09:00\n")
    res = _run("scope", "address-book", str(snap), "--db", db, "--json")
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout) == {str(snap): 1}
    bad = tmp_path / "bad.csv"
    bad.write_text("member_id,recipient_id,valid_from\n1000001,r-1,2025-01-01 00:00\n")
    res = _run("scope", "address-book", str(bad), "--db", db)
    assert res.exit_code == 2 and "no UTC offset" in res.output
