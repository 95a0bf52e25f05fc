"""The detectors: section of the catalog: defaults, overrides and errors that name the key and the fix."""
from __future__ import annotations

import pytest

from breachwatch.contract.catalog import parse_catalog
from breachwatch.detect.config import DetectConfigError, load_detect_config, parse_duration, validate_detectors


def _cfg(detectors_yaml: str):
    return load_detect_config(parse_catalog(f"detectors:\n{detectors_yaml}", "<test>"))


def test_defaults_cover_every_detector_and_feed():
    cfg = load_detect_config(parse_catalog("{}", "<empty>"))
    assert set(cfg.detectors) == {"forged_token", "offboarded_principal", "canary_read", "enumeration",
                                  "novel_source", "volume_anomaly", "ml_outlier"}
    assert cfg.issuance_feed() == "issuance"
    assert cfg.detectors["enumeration"]["windows"] == [3600.0, 86400.0, 604800.0, 2592000.0]


def test_partial_window_floors_override_only_what_they_name():
    cfg = _cfg("  enumeration:\n    min_subjects: {1h: 99}\n")
    floors = cfg.detectors["enumeration"]["min_subjects"]
    assert floors[3600.0] == 99 and floors[86400.0] == 150


def test_shadow_mode_and_allowlist_are_accepted():
    cfg = _cfg("  ml_outlier: {mode: shadow}\n  enumeration:\n    allowlist: {principals: [svc-a], prefixes: [10.0.0.0/8]}\n")
    assert cfg.detectors["ml_outlier"]["mode"] == "shadow"
    assert cfg.detectors["enumeration"]["allowlist"]["prefixes"] == ["10.0.0.0/8"]


@pytest.mark.parametrize("text, key, fix", [
    ("  enumeraton: {}\n", "detectors.enumeraton", "use one of"),
    ("  enumeration: {windowz: [1h]}\n", "detectors.enumeration.windowz", "use one of"),
    ("  enumeration: {own_factor: lots}\n", "detectors.enumeration.own_factor", "write a number"),
    ("  enumeration: {windows: [30s]}\n", "detectors.enumeration.windows", "1m or more"),
    ("  enumeration: {windows: [1h, 2h]}\n", "detectors.enumeration.min_subjects", "add '2h: N'"),
    ("  forged_token: {severity: urgent}\n", "detectors.forged_token.severity", "low, medium, high, critical"),
    ("  canary_read: {mode: loud}\n", "detectors.canary_read.mode", "active, shadow"),
    ("  novel_source: {dimensions: [planet]}\n", "detectors.novel_source.dimensions", "use some of"),
    ("  enumeration: {allowlist: {hosts: [a]}}\n", "detectors.enumeration.allowlist.hosts", "use one of"),
    ("  engine: {feeds: {a: {kinds: [access]}, b: {kinds: [access, token_issued]}}}\n",
     "detectors.engine.feeds.b.kinds", "one feed"),
    ("  engine: {feeds: {a: {kinds: [access]}}}\n", "detectors.engine.feeds", "token_issued"),
    ("  engine: {merge_gap: soon}\n", "detectors.engine.merge_gap", "'90s'"),
])
def test_errors_name_the_key_and_the_fix(text, key, fix):
    with pytest.raises(DetectConfigError) as e:
        _cfg(text)
    assert key in str(e.value) and "Fix:" in str(e.value) and fix in str(e.value)


def test_durations():
    assert parse_duration("90s") == 90 and parse_duration("5m") == 300 and parse_duration("2w") == 1_209_600
    assert parse_duration(45) == 45
    with pytest.raises(DetectConfigError):
        parse_duration("-1h")


def test_validate_without_catalog_keeps_defaults_independent():
    a = validate_detectors({"enumeration": {"min_subjects": {"1h": 5}}})
    b = validate_detectors({})
    assert a["enumeration"]["min_subjects"][3600.0] == 5 and b["enumeration"]["min_subjects"][3600.0] == 30


def test_allowlist_prefixes_are_address_ranges():
    """An allowlisted IPv4 range holds every address inside it and none outside, whatever the digits."""
    import duckdb

    from breachwatch.detect.context import allowlist_sql

    where = allowlist_sql({"prefixes": ["10.0.0.0/8", "192.168.1.0/24", "2001:db8::/32"]})
    con = duckdb.connect()
    got = dict(con.execute(f"SELECT src_ip, {where} FROM (VALUES ('10.9.0.7'), ('11.0.0.1'), ('192.168.1.20'), "
                           "('192.168.10.5'), ('2001:db8::1'), ('2001:db9::1')) t(src_ip)").fetchall())
    assert got == {"10.9.0.7": True, "11.0.0.1": False, "192.168.1.20": True, "192.168.10.5": False,
                   "2001:db8::1": True, "2001:db9::1": False}
