"""Ground truth must agree exactly with the events it describes."""
from __future__ import annotations

from collections import Counter
from datetime import datetime

import pyarrow as pa
import pyarrow.compute as pc

from breachwatch.simulate import SimConfig, simulate

ENTITY = {"principals": "principal_id", "tokens": "token_id", "keys": "key_id", "ips": "src_ip", "asns": "src_asn",
          "countries": "src_country", "fingerprints": "client_fingerprint", "user_agents": "user_agent"}


def exposure(rows: list[dict]) -> dict[str, set[str]]:
    """Independent of the simulator's own code: subject_fields overrides fields for the subjects it names."""
    out: dict[str, set[str]] = {}
    for r in rows:
        per = dict(r["subject_fields"] or [])
        for s in r["subject_ids"] or []:
            out.setdefault(s, set()).update(per.get(s, r["fields"] or []))
        for s, fs in per.items():
            out.setdefault(s, set()).update(fs)
    return {s: f for s, f in out.items() if f}


def stamp(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=None)


def test_every_scenario_has_events_inside_the_attack_period(standard_run):
    period = standard_run.truth["period"]
    assert [s["name"] for s in standard_run.truth["scenarios"]] == [
        "forged_token", "stale_credential", "insider_browsing", "bola_enumeration", "partner_scraping",
        "credential_stuffing", "canary_read"]
    for s in standard_run.truth["scenarios"]:
        assert s["malicious_events"] > 0, s["name"]
        assert period["warmup_end"] <= s["start"] <= s["end"] < period["end"], s["name"]


def test_truth_matches_the_malicious_events(standard_run):
    for s in standard_run.truth["scenarios"]:
        table = standard_run.malicious(s["name"])
        rows = table.to_pylist()
        assert len(rows) == s["malicious_events"] == len(set(s["malicious_event_ids"])), s["name"]
        assert {k: {x for x in v} for k, v in exposure(rows).items()} == \
               {k: set(v) for k, v in s["exposed"].items()}, s["name"]
        assert s["subjects_exposed"] == len(s["exposed"])
        assert s["members_exposed"] + s["non_members_exposed"] == s["subjects_exposed"]
        assert s["pairs_exposed"] == sum(len(v) for v in s["exposed"].values())
        for key, col in ENTITY.items():
            assert set(s["entities"][key]) == {r[col] for r in rows if r[col] is not None}, (s["name"], key)
        times = [r["time"] for r in rows]
        assert min(times) == stamp(s["start"]) and max(times) == stamp(s["end"]), s["name"]
        assert dict(Counter(r["kind"] for r in rows)) == s["events_by_kind"], s["name"]


def test_event_ids_are_unique_and_scenarios_disjoint(standard_run):
    ids = standard_run.events.column("event_id")
    assert pc.count_distinct(ids).as_py() == len(ids) == standard_run.truth["events"]
    seen: set[str] = set()
    for s in standard_run.truth["scenarios"]:
        mine = set(s["malicious_event_ids"])
        assert not seen & mine
        seen |= mine


def test_benign_traffic_never_touches_a_canary(standard_run):
    canaries = pa.array(standard_run.truth["world"]["canaries"])
    assert len(canaries) == 5
    malicious = pa.array([i for s in standard_run.truth["scenarios"] for i in s["malicious_event_ids"]])
    benign = standard_run.events.filter(pc.invert(pc.is_in(standard_run.events.column("event_id"),
                                                           value_set=malicious)))
    touched = pc.list_flatten(benign.column("subject_ids").combine_chunks())
    assert not pc.any(pc.is_in(touched, value_set=canaries)).as_py()
    as_principal = benign.filter(pc.is_in(benign.column("principal_id"), value_set=canaries))
    assert set(as_principal.column("kind").to_pylist()) == {"subject_status"}
    # ...while the canary scenario's reads are of canaries only.
    assert set(standard_run.scenario("canary_read")["exposed"]) <= set(canaries.to_pylist())


def test_without_issuance_log_no_token_is_issued_and_truth_follows(tmp_path):
    config = SimConfig(customers=500, days=0.5, warmup_days=0.25, seed=3, scenarios="credential_stuffing",
                       issuance_log=False)
    sim = simulate(config)
    kinds = pc.unique(pa.concat_tables(list(sim.iter_batches())).column("kind")).to_pylist()
    assert "token_issued" not in kinds and "login" in kinds
    truth = sim.truth()
    assert "token_issued" not in truth["events_by_kind"]
    stuffing = truth["scenarios"][0]
    assert stuffing["events_by_kind"]["login"] == 12 and "token_issued" not in stuffing["events_by_kind"]


def test_scenarios_alone_for_injection_into_recorded_traffic():
    sim = simulate(SimConfig(customers=500, days=0.5, warmup_days=0.25, seed=3, benign=False,
                             scenarios="stale_credential,canary_read"))
    events = pa.concat_tables(list(sim.iter_batches()))
    truth = sim.truth()
    malicious = {i for s in truth["scenarios"] for i in s["malicious_event_ids"]}
    rest = events.filter(pc.invert(pc.is_in(events.column("event_id"), value_set=pa.array(sorted(malicious)))))
    # Besides the scenarios' events: the opening snapshot and the stale credential's offboarding.
    assert set(rest.column("kind").to_pylist()) == {"subject_status", "key_created", "principal_created",
                                                    "principal_offboarded"}
    assert rest.filter(pc.equal(rest.column("kind"), "principal_offboarded")).num_rows == 1
    assert len(malicious) == sum(s["malicious_events"] for s in truth["scenarios"]) > 250
