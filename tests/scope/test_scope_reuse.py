"""Scoping many incidents on one connection: shared tables follow the store, and the manifest
built from a proposal's own scope equals the one replayed from scratch."""
from __future__ import annotations

import re

from scope_world import KEY, incident_of

from breachwatch.ingest.pipeline import ingest_records
from breachwatch.scope import build_manifest, propose_expansions


def _issued_count(steps) -> int:
    step = next(s for s in steps if s.id == f"unissued-key:{KEY}")
    line = next(e for e in step.evidence if "logins did issue" in e)
    return int(re.search(r"also signed ([\d,]+) tokens", line).group(1).replace(",", ""))


def test_shared_tables_are_rebuilt_after_an_ingest(world_store) -> None:
    con, path, w = world_store
    inc, seed = incident_of(w, "forged_token")
    before = _issued_count(propose_expansions(con, inc, event_ids=seed))
    late = {"event_id": "late-login", "kind": "token_issued", "time": "2025-04-01T23:00:00+00:00",
            "principal_id": "1000002", "principal_type": "customer", "token_id": "tok-late", "key_id": KEY,
            "session_id": "s-tok-late", "src_ip": "121.130.0.1", "src_asn": "AS4766", "src_country": "KR"}
    assert ingest_records(con, [late], "late", db_path=path).loaded == 1
    assert _issued_count(propose_expansions(con, inc, event_ids=seed)) == before + 1


def _rows(m) -> tuple:
    summary = {k: v for k, v in m.summary.items() if k != "run_id"}
    return m.subjects(), summary


def test_a_manifest_from_the_proposal_equals_a_replay(world_store) -> None:
    con, _, w = world_store
    checked = 0
    for scenario in w.malicious:
        inc, seed = incident_of(w, scenario)
        steps = propose_expansions(con, inc, event_ids=seed)
        # Every prefix of the proposals (the drill accepts all of them) can reuse the proposal's scope.
        for k in range(len(steps) + 1):
            fresh = propose_expansions(con, inc, event_ids=seed)
            reused = build_manifest(con, inc, fresh[:k], proposed=fresh, event_ids=seed)
            assert con.execute("SELECT count(*) FROM duckdb_tables() WHERE table_name = '_scope_proposal'"
                               ).fetchone()[0] == 1, "the proposal was not reused"
            con.execute("DROP TABLE _scope_proposal")  # now the manifest must replay the steps
            replayed = build_manifest(con, inc, fresh[:k], proposed=fresh, event_ids=seed)
            assert _rows(reused) == _rows(replayed), (scenario, k)
            checked += 1
    assert checked > len(w.malicious)  # some scenario had steps to accept
