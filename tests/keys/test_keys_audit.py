"""The key hygiene audit on a realistic retailer: the departed engineer's key,
his forged tokens, long-lived service tokens, and keys left lying around."""
from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest

from breachwatch.ingest.pipeline import ingest_records
from breachwatch.keys.audit import AuditPolicy, run_audit
from breachwatch.keys.report import to_markdown
from breachwatch.store.db import connect
from keys_helpers import AUDIT_NOW, Retailer, run_cli

@pytest.fixture(scope="module")
def retailer():
    return Retailer()


@pytest.fixture
def world(tmp_path, store, retailer):
    con, path = store
    ingest_records(con, retailer.events(), "retailer-logs")
    con.close()
    files = {"jwks": retailer.write_jwks(tmp_path / "jwks.json"),
             "inventory": retailer.write_inventory(tmp_path / "keys.csv"),
             "hr": retailer.write_hr(tmp_path / "hr.csv"),
             "backup": retailer.write_laptop_backup(tmp_path),
             "repo": retailer.make_repo_with_history(tmp_path),
             "db": path}
    return files


def full_audit(world, **kw):
    con = connect(world["db"], read_only=True)
    try:
        return run_audit(jwks=[str(world["jwks"])], inventory_files=[str(world["inventory"])],
                         hr_files=[str(world["hr"])], con=con, store_label=world["db"],
                         scan_paths=[str(world["backup"])], history_repos=[str(world["repo"])],
                         policy=AuditPolicy(**kw), now=AUDIT_NOW)
    finally:
        con.close()


def by_code(report):
    out = {}
    for f in report.findings:
        out.setdefault(f.code, []).append(f)
    return out


def test_the_departed_engineers_key_is_named_critical(world):
    report = full_audit(world)
    found = by_code(report)
    (left,) = found["holder_left"]
    assert (left.key_id, left.severity) == ("k-2019-07", "critical")
    assert left.data["holders_left"] == ["emp-30004"]
    assert "emp-30004 (left 2025-01-10" in left.evidence[0]
    assert any("never issued by a login" in e for e in left.evidence)
    # emp-30002 also left, but k-bo-2021-01 was rotated after: no finding for it.
    assert not any(f.key_id == "k-bo-2021-01" and f.code == "holder_left" for f in report.findings)


def test_tokens_no_login_issued_are_forgery_evidence(world):
    (forged,) = by_code(full_audit(world))["forged_tokens"]
    assert (forged.key_id, forged.severity) == ("k-2019-07", "critical")
    d = forged.data
    assert (d["tokens"], d["principals"], d["access_events"]) == (25, 25, 25)
    assert d["subjects"] == 50  # members plus the non-members in their address books
    assert d["countries"] == ["JP", "SG", "US"]
    assert d["sample_tokens"] == ["forged-000", "forged-001", "forged-002", "forged-003", "forged-004"]


def test_age_lifetime_and_exposure_findings(world):
    found = by_code(full_audit(world))
    assert [(f.key_id, f.severity) for f in found["key_never_rotated"]] == [("k-2019-07", "high")]
    assert "key_rotation_overdue" not in found  # the other two were rotated within 90 days
    (life,) = found["token_lifetime_exceeds_policy"]
    assert (life.key_id, life.severity, life.data["max_lifetime_s"]) == ("k-bo-2021-01", "high", 30 * 86400)
    exposed = {(f.key_id, f.severity): f for f in found["private_key_exposed"]}
    web = exposed[("k-2019-07", "critical")]
    assert web.data["locations"][0].endswith("laptop-backup/keys/jwt-signing.pem:1")
    app = exposed[("k-2022-03", "critical")]
    assert app.data["locations"][0].endswith("(git history only)")
    assert (None, "high") in exposed  # the stray key nobody inventoried
    secrets = {f.data["kind"] for f in found["secret_exposed"]}
    assert secrets == {"aws_access_key", "signing_secret"}


def test_reports_never_contain_the_secrets(world, retailer):
    report = full_audit(world)
    text = json.dumps(report.as_dict()) + to_markdown(report)
    pem_body = retailer.private_pem(retailer.web).decode().splitlines()[1]
    assert pem_body not in text
    assert "AKIAIOSFODNN7EXAMPLQ" not in text
    assert retailer.app.as_dict(private=True)["d"] not in text


def test_shorter_rotation_policy_and_no_store(world):
    report = run_audit(jwks=[str(world["jwks"])], inventory_files=[str(world["inventory"])], hr_files=[],
                       con=None, store_label=None, scan_paths=[], history_repos=[],
                       policy=AuditPolicy(max_key_age_days=30), now=AUDIT_NOW)
    codes = {(f.code, f.key_id) for f in report.findings}
    assert ("key_rotation_overdue", "k-2022-03") in codes  # rotated 2025-06-20: 42 days
    assert not any(c == "forged_tokens" for c, _ in codes)
    assert any("no store" in n for n in report.notes)


def cli(*args):
    return run_cli("keys", "audit", *args)


def test_cli_json_markdown_and_exit_codes(world, tmp_path):
    md = tmp_path / "audit.md"
    r = cli("--jwks", str(world["jwks"]), "--inventory", str(world["inventory"]), "--hr", str(world["hr"]),
            "--db", world["db"], "--scan", str(world["backup"]), "--markdown", str(md), "--json")
    assert r.returncode == 1, r.stderr
    report = json.loads(r.stdout)
    assert report["summary"]["actionable"] is True
    assert report["findings"][0]["severity"] == "critical"
    keys = {k["kid"]: k for k in report["keys"]}
    assert keys["k-2019-07"]["worst_severity"] == "critical"
    assert keys["k-2019-07"]["tokens_issued"] == 20
    text = md.read_text()
    assert "# Signing-key and token hygiene audit" in text
    assert "CRITICAL: Key k-2019-07 was not rotated when emp-30004 left" in text
    assert "**Fix:** Rotate k-2019-07" in text


def test_cli_clean_inventory_exits_0(tmp_path):
    now = datetime.now(timezone.utc).date()
    (tmp_path / "keys.yaml").write_text(
        f"keys:\n  - kid: k-new\n    owner: team-auth\n    created: {now}\n    location: kms\n")
    r = cli("--inventory", str(tmp_path / "keys.yaml"), "--no-db", "--json")
    assert r.returncode == 0, r.stdout + r.stderr
    assert json.loads(r.stdout)["findings"] == []


def test_cli_bad_input_exits_2(tmp_path):
    assert cli("--no-db").returncode == 2
    (tmp_path / "keys.csv").write_text("id,owner\nx,y\n")
    r = cli("--inventory", str(tmp_path / "keys.csv"), "--no-db")
    assert r.returncode == 2 and "kid" in r.stderr
    r = cli("--jwks", str(tmp_path / "missing.json"), "--no-db")
    assert r.returncode == 2 and "not found" in r.stderr
    r = cli("--db", str(tmp_path / "nostore.duckdb"))
    assert r.returncode == 2
