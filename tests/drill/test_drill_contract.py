"""The drill follows Contract 4: its JSON names, and detection times that do not depend on the batch size."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from breachwatch.drill import DrillOptions, run_drill

BIN = Path(sys.executable).parent / "breachwatch"
SMALL = dict(customers=600, days=0.5, warmup_days=0.25, seed=3, scenarios="forged_token,canary_read")
SCENARIO_KEYS = {"name", "detected", "time_to_detect_s", "subjects_exposed_before_detection",
                 "subjects_exposed_total", "scope_recall", "scope_precision"}


@pytest.fixture(scope="module")
def by_batch() -> dict[float, dict]:
    # As far apart as batching goes: 60 s micro-batches each stored and detected on its own, against
    # 5 s micro-batches gathered into hourly deliveries (the default catch-up pace).
    return {5.0: run_drill(DrillOptions(batch_s=5.0, **SMALL)),
            60.0: run_drill(DrillOptions(batch_s=60.0, every_batch=True, **SMALL))}


def test_detection_times_do_not_depend_on_the_replay_batch(by_batch):
    five, sixty = by_batch[5.0], by_batch[60.0]
    times = lambda r: {s["name"]: (s["detected"], s["time_to_detect_s"], s["subjects_exposed_before_detection"])
                       for s in r["scenarios"]}
    assert times(five) == times(sixty)
    assert all(s["detected"] for s in five["scenarios"])


def test_json_fields_are_contract_4(by_batch):
    r = by_batch[60.0]
    assert {"scenarios", "false_positive_incidents", "benign_days", "events", "events_per_s"} <= set(r)
    assert r["benign_days"] == 0.25 and r["events"] > 0 and r["events_per_s"] > 0
    for s in r["scenarios"]:
        assert SCENARIO_KEYS <= set(s)
        if s["detected"]:
            assert s["time_to_detect_s"] >= 0
            assert 0 <= s["subjects_exposed_before_detection"] <= s["subjects_exposed_total"]
            assert 0 <= s["scope_recall"] <= 1 and 0 <= s["scope_precision"] <= 1


def test_cli_json_and_usage_error(tmp_path):
    bad = subprocess.run([str(BIN), "drill", "--days", "1", "--warmup-days", "1"], capture_output=True, text=True)
    assert bad.returncode == 2 and "--days" in bad.stderr


def test_drill_into_a_store_leaves_its_report_beside_it(tmp_path):
    # `drill --db S` then `serve --db S`: the dashboard's drill page finds S.drill.json without a flag.
    store = tmp_path / "drill.duckdb"
    p = subprocess.run([str(BIN), "drill", "--customers", "300", "--days", "0.4", "--warmup-days", "0.2",
                        "--scenarios", "canary_read", "--db", str(store), "--json"],
                       capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stderr
    printed = json.loads(p.stdout)
    saved = json.loads((tmp_path / "drill.duckdb.drill.json").read_text())
    assert saved == printed and saved["scenarios"][0]["name"] == "canary_read"


def test_surprises_join_the_simulated_traffic(tmp_path):
    """`--surprises` adds the benign surprises to the drill's simulated traffic (their incidents count as
    false positives); with `--background` there is no simulated traffic to add them to."""
    args = ["drill", "--customers", "300", "--days", "1.2", "--warmup-days", "0.2", "--scenarios", "canary_read",
            "--json"]
    runs = {}
    for name in ("none", "all"):
        p = subprocess.run([str(BIN), *args, "--surprises", name], capture_output=True, text=True, timeout=600)
        assert p.returncode == 0, p.stderr
        runs[name] = json.loads(p.stdout)
    assert runs["all"]["events"] > runs["none"]["events"]  # the sale day and the new job add events
    assert runs["all"]["options"]["surprises"] == "all" and "surprises" not in runs["none"]["options"]
    bad = subprocess.run([str(BIN), *args, "--surprises", "all", "--background", str(tmp_path)],
                         capture_output=True, text=True)
    assert bad.returncode == 2 and "--surprises" in bad.stderr
    bad = subprocess.run([str(BIN), *args, "--surprises", "teleport"], capture_output=True, text=True)
    assert bad.returncode == 2 and "teleport" in bad.stderr
