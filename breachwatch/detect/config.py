"""Detector settings: the `detectors:` section of `breachwatch.yaml`, with defaults.

Every threshold is either relative to a learned baseline (a factor over what
the entity itself, or its peers, did before) or an explicit floor the user can
change here. Unknown keys and wrong types are refused with an error that names
the key path and says how to fix it, so a typo never silently disables a
detector.
"""
from __future__ import annotations

import copy
import re
from dataclasses import dataclass
from typing import Any

from breachwatch.contract.catalog import Catalog
from breachwatch.contract.event import KINDS, PRINCIPAL_TYPES

ENTITY_TYPES = ("principal", "key", "ip", "prefix", "asn", "country", "fingerprint", "user_agent")
SEVERITIES = ("low", "medium", "high", "critical")
MODES = ("active", "shadow")
ALLOWLIST_KEYS = ("principals", "ips", "prefixes", "asns", "countries", "fingerprints", "user_agents", "keys")

# The shape of every setting: a type tag and its default. Type tags:
# duration ("90s", "5m", "1h", "7d" or seconds), durations (list), int, float,
# bool, severity, mode, entities (list of ENTITY_TYPES), kinds (list of event
# kinds), ptypes (list of principal types), strs (list of text), counts (map
# of duration to a number), allowlist (map of ALLOWLIST_KEYS to lists), feeds.
_COMMON: dict[str, tuple[str, Any]] = {
    "enabled": ("bool", True),
    "mode": ("mode", "active"),
    "allowlist": ("allowlist", {}),
}

SPEC: dict[str, dict[str, tuple[str, Any]]] = {
    "engine": {
        "feeds": ("feeds", {
            "issuance": {"kinds": ["token_issued", "token_revoked", "login", "login_failed"],
                         "allowed_lateness": "5s", "silent_after": "10m"},
            "gateway": {"kinds": ["access", "token_denied"], "allowed_lateness": "30s", "silent_after": "10m"},
            "directory": {"kinds": ["principal_created", "principal_offboarded", "subject_status", "key_created",
                                    "key_rotated", "key_retired", "key_revoked"],
                          "allowed_lateness": "0s", "silent_after": "0s"},
        }),
        "baseline_refresh": ("duration", "24h"),
        "provenance_every": ("duration", "0.5s"),
        "behaviour_every": ("duration", "5s"),
        "behaviour_max_lag": ("duration", "1h"),
        "max_pass_events": ("int", 1_000_000),
        "baseline_history": ("duration", "30d"),
        "merge_gap": ("duration", "1h"),
        "sample_events": ("int", 20),
        "escalate_subjects": ("counts_by_severity", {"high": 1000, "critical": 10000}),
    },
    "forged_token": {
        **_COMMON,
        "severity": ("severity", "critical"),
        "max_token_lifetime": ("duration_or_auto", "auto"),
        "lifetime_slack": ("float", 1.5),
        "clock_skew": ("duration", "5s"),
    },
    "offboarded_principal": {
        **_COMMON,
        "severity": ("severity", "high"),
        "grace": ("duration", "0s"),
        "orphaned_keys": ("bool", True),
    },
    "canary_read": {
        **_COMMON,
        "severity": ("severity", "critical"),
    },
    "enumeration": {
        **_COMMON,
        "severity": ("severity", "high"),
        "windows": ("durations", ["1h", "24h", "7d", "30d"]),
        "entities": ("entities", list(ENTITY_TYPES)),
        "min_subjects": ("counts", {"1h": 30, "24h": 150, "7d": 500, "30d": 1500}),
        "own_factor": ("float", 4.0),
        "peer_quantile": ("float", 0.99),
        "peer_factor": ("float", 5.0),
        "inactive_min": ("int", 15),
        "walk_min": ("int", 25),
        "noreason_min": ("int", 12),
        "authfail_min": ("int", 60),
        "authfail_entities": ("entities", ["ip", "prefix", "asn", "country", "fingerprint", "user_agent"]),
        "walk_max_stride": ("int", 8),
        "critical_coverage": ("float", 0.01),
        # A walk by an announced principal of these types, from these ranges, through an endpoint only such
        # principals used, is a batch job: a finding, not an incident (detectors/enumeration.py).
        "batch_principal_types": ("ptypes", ["service"]),
        "batch_networks": ("strs", ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fc00::/7"]),
    },
    "novel_source": {
        **_COMMON,
        "severity": ("severity", "high"),
        "dimensions": ("entities", ["country", "asn", "fingerprint"]),
        "min_novel_dimensions": ("int", 2),
        "aggregate_by": ("entities", ["country", "asn", "prefix", "fingerprint", "user_agent"]),
        "windows": ("durations", ["1h", "24h"]),
        "min_principals": ("counts", {"1h": 15, "24h": 60}),
        "own_factor": ("float", 4.0),
        "peer_quantile": ("float", 0.99),
        "peer_factor": ("float", 5.0),
        "min_rarity": ("float", 0.7),
        "rare_min_accounts": ("int", 2),
        "rare_window": ("duration", "1h"),
        "spread_min_rarity": ("float", 0.3),
        # An arrival whose session the account's own login opened from the same network and country is its
        # owner: spread does not count it (detectors/novel_source.py says why; rare_source still does).
        "spread_vouched_by_login": ("bool", True),
        "spread_vouch_lookback": ("duration", "24h"),
        "privileged_types": ("ptypes", ["employee", "service", "partner"]),
        "privileged_min_rarity": ("float", 0.5),
    },
    "volume_anomaly": {
        **_COMMON,
        "severity": ("severity", "medium"),
        "entities": ("entities", ["principal", "ip", "prefix", "asn", "fingerprint"]),
        "factor": ("float", 6.0),
        "min_requests": ("int", 2000),
        "min_bytes": ("int", 50_000_000),
        "min_subject_reads": ("int", 2000),
    },
    "ml_outlier": {
        **_COMMON,
        "severity": ("severity", "medium"),
        "entities": ("entities", ["ip", "prefix", "asn", "fingerprint", "principal"]),
        "step": ("duration", "5m"),
        "window": ("duration", "1h"),
        "score_margin": ("float", 0.05),
        "min_features_beyond": ("int", 2),
        "min_requests": ("int", 50),
        "min_training_rows": ("int", 300),
        "max_training_rows": ("int", 50_000),
        "trees": ("int", 100),
        "seed": ("int", 0),
    },
}

DETECTOR_NAMES = tuple(k for k in SPEC if k != "engine")
_DUR = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)?\s*$")
_UNIT = {"ms": 0.001, "s": 1, None: 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


class DetectConfigError(ValueError):
    """A `detectors:` setting that cannot be used; the message names the key and the fix."""


def parse_duration(value: Any, key: str = "duration") -> float:
    """'90s', '5m', '1h', '7d', '2w' or a number of seconds, as seconds."""
    if isinstance(value, bool):
        raise DetectConfigError(f"detectors.{key}: {value!r} is not a duration. Fix: write e.g. '90s', '5m', '1h' or '7d'.")
    if isinstance(value, (int, float)):
        if value < 0:
            raise DetectConfigError(f"detectors.{key}: {value} is negative. Fix: use a duration of 0 or more.")
        return float(value)
    m = _DUR.match(str(value))
    if not m:
        raise DetectConfigError(f"detectors.{key}: '{value}' is not a duration. Fix: write e.g. '90s', '5m', '1h' or '7d'.")
    return float(m.group(1)) * _UNIT[m.group(2)]


def _fail(key: str, problem: str, fix: str) -> DetectConfigError:
    return DetectConfigError(f"detectors.{key}: {problem}. Fix: {fix}.")


def _check(tag: str, value: Any, key: str) -> Any:
    if tag == "bool":
        if not isinstance(value, bool):
            raise _fail(key, f"{value!r} is not true or false", "write true or false")
        return value
    if tag in ("int", "float"):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or (tag == "int" and value != int(value)):
            raise _fail(key, f"{value!r} is not {'a whole number' if tag == 'int' else 'a number'}", "write a number")
        if value < 0:
            raise _fail(key, f"{value} is negative", "use 0 or more")
        return int(value) if tag == "int" else float(value)
    if tag == "duration":
        return parse_duration(value, key)
    if tag == "duration_or_auto":
        return "auto" if value == "auto" else parse_duration(value, key)
    if tag == "durations":
        if not isinstance(value, list) or not value:
            raise _fail(key, "must be a non-empty list of durations", "write e.g. [1h, 24h]")
        out = sorted({parse_duration(v, key) for v in value})
        if out[0] < 60:
            raise _fail(key, f"window {out[0]:g}s is shorter than a minute", "use windows of 1m or more")
        return out
    if tag in ("severity", "mode"):
        allowed = SEVERITIES if tag == "severity" else MODES
        if value not in allowed:
            raise _fail(key, f"'{value}' is not a {tag}", f"use one of {', '.join(allowed)}")
        return value
    if tag in ("entities", "kinds", "ptypes", "strs"):
        allowed = {"entities": ENTITY_TYPES, "kinds": tuple(sorted(KINDS)),
                   "ptypes": tuple(sorted(PRINCIPAL_TYPES)), "strs": None}[tag]
        if not isinstance(value, list):
            raise _fail(key, "must be a list", "write e.g. [a, b]")
        for v in value:
            if allowed is not None and v not in allowed:
                raise _fail(key, f"'{v}' is not known", f"use some of {', '.join(allowed)}")
        return [str(v) for v in value]
    if tag == "counts":
        if not isinstance(value, dict):
            raise _fail(key, "must map a window to a number", "write e.g. {1h: 30, 24h: 150}")
        return {parse_duration(k, f"{key}.{k}"): float(_check("float", v, f"{key}.{k}")) for k, v in value.items()}
    if tag == "counts_by_severity":
        if not isinstance(value, dict):
            raise _fail(key, "must map a severity to a number of subjects", "write e.g. {high: 1000, critical: 10000}")
        for k in value:
            _check("severity", k, f"{key}.{k}")
        return {k: int(_check("int", v, f"{key}.{k}")) for k, v in value.items()}
    if tag == "allowlist":
        if not isinstance(value, dict):
            raise _fail(key, "must be a mapping", f"write e.g. {{principals: [svc-batch]}} with keys {', '.join(ALLOWLIST_KEYS)}")
        for k, v in value.items():
            if k not in ALLOWLIST_KEYS:
                raise _fail(f"{key}.{k}", "unknown allowlist", f"use one of {', '.join(ALLOWLIST_KEYS)}")
            if not isinstance(v, list):
                raise _fail(f"{key}.{k}", "must be a list", "write e.g. [a, b]")
        return {k: [str(x) for x in v] for k, v in value.items()}
    if tag == "feeds":
        if not isinstance(value, dict) or not value:
            raise _fail(key, "must map feed names to {kinds, allowed_lateness, silent_after}",
                        "write e.g. {issuance: {kinds: [token_issued], allowed_lateness: 5s}}")
        out, seen = {}, {}
        for name, spec in value.items():
            if not isinstance(spec, dict):
                raise _fail(f"{key}.{name}", "must be a mapping", "write {kinds: [...], allowed_lateness: 5s}")
            for k in spec:
                if k not in ("kinds", "allowed_lateness", "silent_after"):
                    raise _fail(f"{key}.{name}.{k}", "unknown key", "use kinds, allowed_lateness or silent_after")
            kinds = _check("kinds", spec.get("kinds", []), f"{key}.{name}.kinds")
            for k in kinds:
                if k in seen:
                    raise _fail(f"{key}.{name}.kinds", f"kind '{k}' is already in feed '{seen[k]}'",
                                "put each event kind in one feed")
                seen[k] = name
            out[str(name)] = {"kinds": kinds,
                              "allowed_lateness": parse_duration(spec.get("allowed_lateness", 0), f"{key}.{name}.allowed_lateness"),
                              "silent_after": parse_duration(spec.get("silent_after", 0), f"{key}.{name}.silent_after")}
        return out
    raise AssertionError(tag)


@dataclass
class DetectConfig:
    """Validated settings: `engine` plus one mapping per detector."""
    engine: dict[str, Any]
    detectors: dict[str, dict[str, Any]]
    canaries: frozenset[str]
    global_allowlist: dict[str, list[str]]
    home_country: str | None

    def detector(self, name: str) -> dict[str, Any]:
        return self.detectors[name]

    def active(self, name: str) -> bool:
        return bool(self.detectors[name]["enabled"])

    def feed_of_kind(self) -> dict[str, str]:
        return {k: f for f, spec in self.engine["feeds"].items() for k in spec["kinds"]}

    def issuance_feed(self) -> str | None:
        """The feed that carries token issuance, whichever name the user gave it."""
        return self.feed_of_kind().get("token_issued")


def validate_detectors(raw: dict[str, Any] | None) -> dict[str, dict[str, Any]]:
    """Defaults overlaid with `raw` (the catalog's `detectors:`), checked key by key."""
    raw = raw or {}
    if not isinstance(raw, dict):
        raise _fail("<top>", "must be a mapping", "write 'detectors:' followed by detector names")
    for name in raw:
        if name not in SPEC:
            raise _fail(str(name), "unknown detector", f"use one of {', '.join(SPEC)}")
    out: dict[str, dict[str, Any]] = {}
    for name, spec in SPEC.items():
        given = raw.get(name) or {}
        if not isinstance(given, dict):
            raise _fail(name, "must be a mapping of settings", f"write '{name}: {{enabled: true}}'")
        for k in given:
            if k not in spec:
                raise _fail(f"{name}.{k}", "unknown setting", f"use one of {', '.join(spec)}")
        settings = {}
        for k, (tag, default) in spec.items():
            value = given[k] if k in given else copy.deepcopy(default)
            if tag == "counts" and k in given:
                value = {**copy.deepcopy(default), **given[k]}  # a partial map overrides only the windows it names
            settings[k] = _check(tag, value, f"{name}.{k}")
        out[name] = settings
    _cross_checks(out)
    return out


def _cross_checks(out: dict[str, dict[str, Any]]) -> None:
    for name in ("enumeration", "novel_source"):
        d = out[name]
        floors = d["min_subjects" if name == "enumeration" else "min_principals"]
        for w in d["windows"]:
            if w not in floors:
                key = "min_subjects" if name == "enumeration" else "min_principals"
                raise _fail(f"{name}.{key}", f"no floor for window {_fmt_window(w)}",
                            f"add '{_fmt_window(w)}: N' under {name}.{key}")
        if not 0 < d["peer_quantile"] <= 1:
            raise _fail(f"{name}.peer_quantile", f"{d['peer_quantile']} is not in (0, 1]", "use e.g. 0.99")
    if out["engine"]["feeds"] and "token_issued" not in {k for f in out["engine"]["feeds"].values() for k in f["kinds"]}:
        raise _fail("engine.feeds", "no feed carries 'token_issued'", "add token_issued to the issuance feed's kinds")


def _fmt_window(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{seconds:g}s"


def fmt_window(seconds: float) -> str:
    """A window in the unit a person would write: 3600 -> '1h'."""
    return _fmt_window(seconds)


def load_detect_config(catalog: Catalog, overrides: dict[str, Any] | None = None) -> DetectConfig:
    """Settings from the catalog's `detectors:` section (plus `overrides`, e.g. from a drill)."""
    raw = copy.deepcopy(catalog.detectors or {})
    for name, settings in (overrides or {}).items():
        raw.setdefault(name, {}).update(settings)
    validated = validate_detectors(raw)
    engine = validated.pop("engine")
    home = catalog.company.get("customer_base_country") if catalog.company else None
    return DetectConfig(engine=engine, detectors=validated, canaries=catalog.canaries,
                        global_allowlist={k: list(v) for k, v in (catalog.allowlists or {}).items()},
                        home_country=str(home) if home else None)
