"""The manifest: one row per person with exactly their fields, counts, files, and step decisions."""
from __future__ import annotations

import csv
from pathlib import Path

import duckdb
import pytest
from scope_world import incident_of

from breachwatch.scope import build_manifest, decide, propose_expansions, write_manifest


def test_each_scenario_of_the_test_history_is_scoped_exactly(world_store) -> None:
    con, _, w = world_store
    for scenario in w.malicious:
        inc, seed = incident_of(w, scenario)
        steps = propose_expansions(con, inc, event_ids=seed)
        assert build_manifest(con, inc, steps, event_ids=seed).pairs() == w.truth[scenario], scenario


def test_a_recipients_fields_are_not_the_members(world_store) -> None:
    con, _, w = world_store
    inc, seed = incident_of(w, "forged_token")
    m = build_manifest(con, inc, propose_expansions(con, inc, event_ids=seed), event_ids=seed)
    rows = m.subjects()
    # 1000011's own book was read with a forged token: the member shows by name only, the recipients in full.
    assert rows["1000011"]["fields"] == ["email", "name"]
    assert rows["r-10"]["fields"] == ["address", "entrance_code_masked", "name", "phone"]
    assert rows["r-10"]["subject_type"] == "non_member" and rows["1000011"]["subject_type"] == "member"
    assert rows["1000011"]["reads"] == 2 and rows["1000011"]["endpoints"] == ["GET /api/me/addresses",
                                                                              "GET /api/me/profile"]


def test_a_rejected_step_is_recorded_and_leaves_its_people_out(world_store, tmp_path: Path) -> None:
    con, _, w = world_store
    inc, seed = incident_of(w, "forged_token")
    steps = propose_expansions(con, inc, event_ids=seed)
    assert [s.id for s in steps] == ["unissued-key:k-2019-07"] and steps[0].basis == ["seed"]
    assert [s.id for s in propose_expansions(con, inc, event_ids=seed)] == [s.id for s in steps]  # stable ids
    decide(steps, reject=["unissued-key:k-2019-07"])
    m = build_manifest(con, inc, [s for s in steps if s.decision == "accepted"], proposed=steps, event_ids=seed)
    assert m.summary["subjects"] == len({s for s, _ in m.pairs()}) < len({s for s, _ in w.truth["forged_token"]})
    assert [(s["id"], s["decision"]) for s in m.summary["steps"]] == [("unissued-key:k-2019-07", "rejected")]
    with pytest.raises(ValueError, match="step 'nope' was not proposed.*unissued-key:k-2019-07"):
        decide(steps, accept=["nope"])


def test_files_in_csv_and_parquet_agree_with_the_counts(world_store, tmp_path: Path) -> None:
    con, _, w = world_store
    inc, seed = incident_of(w, "forged_token")
    m = build_manifest(con, inc, propose_expansions(con, inc, event_ids=seed), event_ids=seed)
    files = write_manifest(m, tmp_path)
    with open(files["manifest.csv"], newline="") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == ["subject_id", "subject_type", "fields", "first_exposure", "last_exposure", "reads",
                             "endpoints"]
    pairs = {(r["subject_id"], f) for r in rows for f in r["fields"].split("|")}
    assert pairs == w.truth["forged_token"]
    pq = duckdb.connect().execute(f"SELECT subject_id, fields FROM read_parquet('{files['manifest.parquet']}')")
    assert {(s, f) for s, fs in pq.fetchall() for f in fs} == pairs
    with open(files["counts_by_field.csv"], newline="") as f:
        by_field = {r["field"]: int(r["subjects"]) for r in csv.DictReader(f)}
    want = {}
    for _, fld in pairs:
        want[fld] = want.get(fld, 0) + 1
    assert by_field == want
    with open(files["counts_by_category.csv"], newline="") as f:
        cats = {(r["kind"], r["category"]): int(r["subjects"]) for r in csv.DictReader(f)}
    # The masked entrance code counts under "entrance code"; everyone is in the legal category "personal".
    assert cats[("group", "entrance_code")] == want["entrance_code_masked"]
    assert cats[("legal", "personal")] == len({s for s, _ in pairs})
    assert ("legal", "unique_identifier") not in cats
