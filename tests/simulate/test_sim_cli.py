"""`breachwatch simulate` from the command line, with --json parsed."""
from __future__ import annotations

import json

from typer.testing import CliRunner

import breachwatch.cli.simulate  # noqa: F401  (registers the command)
from breachwatch.cli.main import app

ARGS = ["simulate", "--customers", "400", "--days", "0.3", "--warmup-days", "0.1", "--seed", "2"]


def _run(*args: str):
    return CliRunner().invoke(app, [*ARGS, *args])


def test_json_summary_and_files(tmp_path):
    out = tmp_path / "sim"
    r = _run("--out", str(out), "--scenarios", "forged_token,canary_read", "--param", "forged_token.ips=40",
             "--json")
    assert r.exit_code == 0, r.output
    s = json.loads(r.stdout)
    assert s["events"] > 1000 and s["format"] == "ndjson"
    assert [x["name"] for x in s["scenarios"]] == ["forged_token", "canary_read"]
    assert all(x["malicious_events"] > 0 for x in s["scenarios"])
    assert (out / "events.ndjson").stat().st_size == s["bytes"]
    truth = json.loads((out / "truth.json").read_text())
    assert truth["events"] == s["events"] and truth["scenarios"][0]["params"]["ips"] == 40
    assert len(truth["scenarios"][0]["entities"]["ips"]) == 40


def test_refuses_to_mix_runs_unless_told(tmp_path):
    out = tmp_path / "sim"
    assert _run("--out", str(out), "--scenarios", "none", "--json").exit_code == 0
    r = _run("--out", str(out), "--scenarios", "none", "--json")
    assert r.exit_code == 2 and "--overwrite" in r.output
    r = _run("--out", str(out), "--scenarios", "none", "--format", "parquet", "--overwrite", "--json")
    assert r.exit_code == 0
    assert sorted(p.name for p in out.iterdir()) == ["events.parquet", "truth.json"]


def test_no_issuance_log_and_world_files(tmp_path):
    out = tmp_path / "sim"
    r = _run("--out", str(out), "--scenarios", "none", "--no-issuance-log", "--world", "--format", "ndjson.gz",
             "--json")
    assert r.exit_code == 0, r.output
    s = json.loads(r.stdout)
    assert "token_issued" not in s["events_by_kind"] and s["events_by_kind"]["login"] > 0
    assert sorted(p.name for p in (out / "world").iterdir()) == ["customers.ndjson.gz", "principals.json",
                                                                  "recipients.ndjson.gz"]


def test_bad_input_exits_2_with_a_fix(tmp_path):
    out = str(tmp_path / "sim")
    for args, words in ((["--scenarios", "forged"], "unknown scenario"),
                        (["--param", "forged_token.ipz=3"], "no such parameter"),
                        (["--param", "forged_token.ips=many"], "expected int"),
                        (["--param", "canary_read.canaries=2", "--scenarios", "forged_token"], "not selected"),
                        (["--format", "csv"], "--format csv"),
                        (["--start", "2025-06-01T15:30:00Z"], "on the hour")):
        r = _run("--out", out, *args)
        assert r.exit_code == 2, (args, r.output)
        assert words in r.output and "Fix" in r.output, (args, r.output)


def test_a_catalog_without_the_retailers_routes_is_refused(tmp_path):
    cat = tmp_path / "cat.yaml"
    cat.write_text("endpoints:\n  - route: GET /api/me/profile\n    fields: []\n")
    r = _run("--out", str(tmp_path / "sim"), "--catalog", str(cat))
    assert r.exit_code == 2 and "has no endpoint" in r.output


def test_an_interrupted_run_leaves_no_half_written_file(tmp_path):
    from breachwatch.simulate import SimConfig, simulate

    sim = simulate(SimConfig(customers=300, days=0.3, warmup_days=0, scenarios="none"))
    seen = []

    def stop_after_three(window):
        seen.append(window)
        if len(seen) == 3:
            raise KeyboardInterrupt

    try:
        sim.write(tmp_path / "sim", "ndjson.gz", on_window=stop_after_three)
    except KeyboardInterrupt:
        pass
    assert list((tmp_path / "sim").iterdir()) == []
