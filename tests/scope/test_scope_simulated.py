"""For every simulator scenario: the manifest from a first-hour incident, with the proposed
expansions accepted, equals the ground truth exactly (every subject and field, nothing extra)."""
from __future__ import annotations

from pathlib import Path

import pytest

from breachwatch.ingest.pipeline import ingest_records
from breachwatch.scope import build_manifest, propose_expansions
from breachwatch.simulate import SCENARIO_NAMES, SimConfig, simulate
from breachwatch.store.db import connect


def _first_hour_incident(con, name: str, truth: dict) -> tuple[dict, list[str]]:
    """An incident as a detector would open it: the scenario's malicious events of its first hour only."""
    ids = truth["malicious_event_ids"]
    rows = con.execute("""
        SELECT event_id, time, principal_id, token_id, key_id, src_ip, client_fingerprint FROM events
        WHERE event_id IN (SELECT unnest(?)) AND time < (SELECT min(time) FROM events WHERE event_id IN
                                                          (SELECT unnest(?))) + INTERVAL 1 HOUR
        ORDER BY time""", [ids, ids]).fetchall()
    ent = {"principals": sorted({r[2] for r in rows if r[2]}), "tokens": sorted({r[3] for r in rows if r[3]}),
           "keys": sorted({r[4] for r in rows if r[4]}), "ips": sorted({r[5] for r in rows if r[5]}),
           "fingerprints": sorted({r[6] for r in rows if r[6]})}
    inc = {"id": f"INC-{name}", "severity": "high", "status": "open", "first_seen": rows[0][1].isoformat() + "Z",
           "last_seen": rows[-1][1].isoformat() + "Z", "detected_at": rows[-1][1].isoformat() + "Z",
           "aware_at": rows[-1][1].isoformat() + "Z", "detectors": [name], "entities": ent, "subjects": 0,
           "fields": [], "summary": f"{name} seen for one hour", "evidence": [],
           "sample_event_ids": [r[0] for r in rows[:5]]}
    return inc, [r[0] for r in rows]


@pytest.fixture(scope="module")
def simulated(tmp_path_factory: pytest.TempPathFactory):
    sim = simulate(SimConfig(customers=1000, days=2, warmup_days=1, seed=5))
    path = str(Path(tmp_path_factory.mktemp("sim")) / "store.duckdb")
    con = connect(path)
    summary = ingest_records(con, sim.iter_records(), "simulator", db_path=path)
    assert summary.quarantined_total == 0, summary.as_dict()
    truth = {s["name"]: s for s in sim.truth()["scenarios"]}
    yield con, truth
    con.close()


@pytest.mark.parametrize("name", SCENARIO_NAMES)
def test_manifest_with_accepted_expansions_equals_truth(simulated, name: str) -> None:
    con, truth = simulated
    t = truth[name]
    incident, seed = _first_hour_incident(con, name, t)
    steps = propose_expansions(con, incident, event_ids=seed)
    m = build_manifest(con, incident, steps, event_ids=seed)
    want = {(s, f) for s, fields in t["exposed"].items() for f in fields}
    got = m.pairs()
    assert sorted(got - want)[:5] == [] and sorted(want - got)[:5] == []
    assert got == want
    assert m.summary["subjects"] == t["subjects_exposed"]
    assert (m.summary["members"], m.summary["non_members"]) == (t["members_exposed"], t["non_members_exposed"])
    for s in steps:
        assert s.decision == "accepted" and s.added_subjects > 0 and s.evidence


def test_forged_token_first_hour_reaches_the_whole_campaign(simulated) -> None:
    con, truth = simulated
    t = truth["forged_token"]
    incident, seed = _first_hour_incident(con, "forged_token", t)
    assert len(seed) < 0.01 * t["malicious_events"]  # the seed really is a sliver of the campaign
    without = build_manifest(con, incident, [], event_ids=seed)
    assert without.summary["subjects"] < 0.01 * t["subjects_exposed"]
    steps = propose_expansions(con, incident, event_ids=seed)
    key_steps = [s for s in steps if s.id == "unissued-key:k-2019-07"]
    assert key_steps, [s.id for s in steps]
    step = key_steps[0]
    assert "k-2019-07" in step.title and f"{step.new_ips:,} more IPs" in step.title
    assert step.new_ips >= len(t["entities"]["ips"]) - len(incident["entities"]["ips"])
    # The same key also signed real customers' tokens; the step names them and leaves them out.
    assert any("logins did issue" in e for e in step.evidence)
    full = build_manifest(con, incident, steps, event_ids=seed)
    assert full.summary["subjects"] == t["subjects_exposed"]
