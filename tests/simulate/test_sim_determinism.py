"""Same seed, byte-identical output; another seed, different output; every NDJSON line a Contract 1 event."""
from __future__ import annotations

import gzip
import re

import orjson
import pytest

from breachwatch.contract.event import FIELD_NAMES, KINDS
from breachwatch.simulate import SimConfig, simulate

SMALL = SimConfig(customers=600, days=0.5, warmup_days=0.25, seed=5,
                  params={"partner_scraping": {"duration_min": 1}, "forged_token": {"ips": 300}})
RFC3339 = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z")


def _write(tmp_path, name, config, fmt):
    out = tmp_path / name
    simulate(config).write(out, fmt)
    events = next(p for p in out.iterdir() if p.name.startswith("events."))
    return events.read_bytes(), (out / "truth.json").read_bytes()


@pytest.mark.parametrize("fmt", ["ndjson", "ndjson.gz", "parquet"])
def test_same_seed_gives_identical_bytes(tmp_path, fmt):
    a = _write(tmp_path, "a", SMALL, fmt)
    b = _write(tmp_path, "b", SMALL, fmt)
    assert a == b


def test_another_seed_gives_other_events(tmp_path):
    a_events, a_truth = _write(tmp_path, "a", SMALL, "ndjson")
    c_events, c_truth = _write(tmp_path, "c", SimConfig(**{**SMALL.__dict__, "seed": 6}), "ndjson")
    assert a_events != c_events and a_truth != c_truth
    a_ids = {orjson.loads(x)["event_id"] for x in a_events.splitlines()[:1000]}
    c_ids = {orjson.loads(x)["event_id"] for x in c_events.splitlines()[:1000]}
    assert not a_ids & c_ids


def test_ndjson_lines_are_contract_events_in_time_order(tmp_path):
    data, _ = _write(tmp_path, "x", SMALL, "ndjson.gz")
    lines = gzip.decompress(data).splitlines()
    assert len(lines) > 10_000
    last = ""
    for line in lines:
        e = orjson.loads(line)
        assert set(e) <= set(FIELD_NAMES) and e["kind"] in KINDS and e["event_id"]
        for key in ("time", "token_issued_at", "token_expires_at"):
            if key in e:
                assert RFC3339.fullmatch(e[key]), e[key]
        assert e["time"] >= last
        last = e["time"]
        assert all(v is not None for v in e.values())
        if "attributes" in e:
            assert isinstance(e["attributes"], dict)


def test_records_api_matches_the_file(tmp_path):
    data, _ = _write(tmp_path, "x", SMALL, "ndjson")
    records = list(simulate(SMALL).iter_records())
    assert records == [orjson.loads(x) for x in data.splitlines()]
