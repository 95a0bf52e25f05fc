"""The drill follows Contract 4: its JSON names, and detection times that do not depend on the batch size."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from breachwatch.drill import DrillOptions, run_drill

BIN = Path(sys.executable).parent / "breachwatch"
SMALL = dict(customers=600, days=1.25, warmup_days=0.25, seed=3, scenarios="forged_token,canary_read")
SCENARIO_KEYS = {"name", "detected", "time_to_detect_s", "subjects_exposed_before_detection",
                 "subjects_exposed_total", "scope_recall", "scope_precision"}


@pytest.fixture(scope="module")
def by_batch() -> dict[float, dict]:
    return {b: run_drill(DrillOptions(batch_s=b, **SMALL)) for b in (5.0, 60.0)}


def test_detection_times_do_not_depend_on_the_replay_batch(by_batch):
    five, sixty = by_batch[5.0], by_batch[60.0]
    times = lambda r: {s["name"]: (s["detected"], s["time_to_detect_s"], s["subjects_exposed_before_detection"])
                       for s in r["scenarios"]}
    assert times(five) == times(sixty)
    assert all(s["detected"] for s in five["scenarios"])


def test_json_fields_are_contract_4(by_batch):
    r = by_batch[60.0]
    assert {"scenarios", "false_positive_incidents", "benign_days", "events", "events_per_s"} <= set(r)
    assert r["benign_days"] == 1.0 and r["events"] > 0 and r["events_per_s"] > 0
    for s in r["scenarios"]:
        assert SCENARIO_KEYS <= set(s)
        if s["detected"]:
            assert s["time_to_detect_s"] >= 0
            assert 0 <= s["subjects_exposed_before_detection"] <= s["subjects_exposed_total"]
            assert 0 <= s["scope_recall"] <= 1 and 0 <= s["scope_precision"] <= 1


def test_cli_json_and_usage_error(tmp_path):
    bad = subprocess.run([str(BIN), "drill", "--days", "1", "--warmup-days", "1"], capture_output=True, text=True)
    assert bad.returncode == 2 and "--days" in bad.stderr
