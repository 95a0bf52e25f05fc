"""An incident folded into another brings its scoping along: manifests, duties done, awareness changes."""
from __future__ import annotations

import csv
from datetime import datetime, timezone
from pathlib import Path

from scope_world import incident_of

from breachwatch.incidents.merge import MergeOutcome, _fold
from breachwatch.scope.deadlines import awareness, record_duty_done, set_aware_at
from breachwatch.scope.fold import TABLES
from breachwatch.scope.run import run_scope

NOW = datetime(2025, 4, 3, 0, 0, tzinfo=timezone.utc)


def _incident_row(con, incident_id: str, seq: int, aware_at: datetime) -> None:
    t = datetime(2025, 4, 1, 2, 0)
    con.execute("INSERT INTO incidents VALUES (?, ?, 'high', 'open', ?, ?, ?, ?, ['forged_token'], 1, 3, ?, ?)",
                [incident_id, seq, t, t, aware_at, aware_at, t, t])


def test_a_folded_incidents_scope_joins_the_incident_that_stays(world_store, tmp_path: Path) -> None:
    con, _, w = world_store
    inc, seed = incident_of(w, "forged_token")
    part, stays = {**inc, "id": "INC-000001", "event_ids": seed}, {**inc, "id": "INC-000002", "event_ids": seed}
    _incident_row(con, "INC-000001", 1, datetime(2025, 4, 1, 6, 0))
    _incident_row(con, "INC-000002", 2, datetime(2025, 4, 1, 7, 0))
    # The part was scoped and reported before detection found both to be one attack; its awareness was
    # moved later by hand, to after the time the incident that stays was itself detected.
    first = run_scope(con, part, tmp_path / "v1", reject=["unissued-key:k-2019-07"], pdf=False, now=NOW)
    record_duty_done(con, "INC-000001", "pipa_regulator", NOW, by="dpo")
    set_aware_at(con, part, "2025-04-01T09:00:00+00:00", reason="the logs were first read then", by="dpo")

    _fold(con, "INC-000001", "INC-000002", "key k-2019-07", MergeOutcome())

    for table in TABLES:
        assert con.execute(f"SELECT count(*) FROM {table} WHERE incident_id = 'INC-000001'").fetchone()[0] == 0
    assert con.execute("SELECT run_id FROM scope_runs WHERE incident_id = 'INC-000002'").fetchall() == \
        [(first.manifest.run_id,)]
    assert con.execute("SELECT duty FROM scope_duties WHERE incident_id = 'INC-000002'").fetchall() == \
        [("pipa_regulator",)]
    aware = awareness(con, {**stays, "aware_at": "2025-04-01T07:00:00+00:00"})
    assert aware.aware_at == datetime(2025, 4, 1, 7, 0)  # the earlier of the two parts', not the hand-set 09:00
    assert "INC-000001 merged in" in aware.history[-1]["reason"] and aware.history[-1]["changed_by"] == "breachwatch"

    # The next scope of the incident that stays updates the notices the part already sent.
    contacts = tmp_path / "c.csv"
    contacts.write_text("subject_id,name,email,phone\n")
    second = run_scope(con, stays, tmp_path / "v2", accept_all=True, contacts=contacts, pdf=False, now=NOW)
    assert second.version == 2
    with open(second.files["mail_merge.csv"], newline="") as f:
        notices = {r["subject_id"]: r["notice"] for r in csv.DictReader(f)}
    told = set(first.manifest.subjects())
    assert told and {s for s, n in notices.items() if n == "first"} == set(notices) - told
    assert all(notices[s] in ("unchanged", "update") for s in told)
