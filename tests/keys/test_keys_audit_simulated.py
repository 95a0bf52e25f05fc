"""The audit on the simulator's forged_token scenario names the offboarded engineer's key."""
from __future__ import annotations

import json

from breachwatch.ingest.pipeline import ingest_records
from breachwatch.simulate.config import SimConfig
from breachwatch.simulate.simulation import simulate
from keys_helpers import run_cli

def test_audit_names_the_key_the_offboarded_engineer_kept(store):
    sim = simulate(SimConfig(customers=2000, days=1, warmup_days=0.5, scenarios="forged_token", rate_scale=0.05))
    con, path = store
    ingest_records(con, sim.iter_records(), "simulated")
    con.close()
    truth = sim.truth()
    (scenario,) = truth["scenarios"]
    leaked, owner = scenario["context"]["leaked_key"], scenario["context"]["key_owner"]

    r = run_cli("keys", "audit", "--db", path, "--as-of", truth["period"]["end"], "--json")
    assert r.returncode == 1, r.stderr
    report = json.loads(r.stdout)
    findings = {(f["code"], f["key_id"]): f for f in report["findings"]}
    left = findings[("holder_left", leaked)]
    assert left["severity"] == "critical" and left["data"]["holders_left"] == [owner]
    forged = findings[("forged_tokens", leaked)]
    assert forged["severity"] == "critical" and forged["data"]["tokens"] > 0
    # Only the leaked key is accused: the app and back-office keys' owners never left and
    # every token they signed was issued by a login.
    accused = {k for (code, k) in findings if code in ("holder_left", "forged_tokens")}
    assert accused == {leaked}
    # The snapshot's created_at (2019), not the log's first instant, dates the key.
    assert findings[("key_never_rotated", leaked)]["data"]["age_days"] > 365 * 5
