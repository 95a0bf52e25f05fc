"""Incidents in plain words with numbers: the summary sentence and the evidence list.

A reader at 3 a.m. should understand from one sentence what happened, how
big it is and since when: "key k-2019-07 signed 48,211 tokens that no login
issued; they read 41,907 distinct people from 2,313 IPs in 11 countries since
04-14 02:10".
"""
from __future__ import annotations

from datetime import datetime
from typing import Any

from breachwatch.detect.entities import LABEL

_FORGED = {
    "never_issued": "tokens that no login issued",
    "subject_mismatch": "tokens used by someone other than their holder",
    "claims_mismatch": "tokens whose claims contradict their issuance",
    "unknown_key": "tokens although the key is in no inventory",
    "retired_key": "tokens after the key was retired",
    "issued_before_key": "tokens dated before the key existed",
    "lifetime": "tokens with a lifetime no login grants",
    "expired": "tokens that were used after expiry",
}
_ENUM = {
    "subj": "touched {n} people it had never touched",
    "inactive": "touched {n} dormant, closed or non-existent accounts",
    "walk": "walked {n} ids in sequence",
    "noreason": "opened {n} records with no ticket",
    "authfail": "failed logins to {n} accounts",
}


def headline(alert: dict[str, Any], stats: dict[str, int]) -> str:
    """What one alert says, with the incident's running counts where they fit."""
    det, rule, entity = alert["detector"], alert["rule"], alert["entity"]
    label = LABEL.get(alert.get("etype") or "", alert.get("etype") or "entity")
    m = alert.get("metrics") or {}
    if det == "forged_token":
        return f"key {entity} signed {stats.get('tokens', 0):,} {_FORGED.get(rule, 'suspicious tokens')}"
    if det == "canary_read":
        return f"{label} {entity} read {m.get('canaries_read', 1):,} canary record(s) no real task opens"
    if det == "offboarded_principal":
        if rule == "orphaned_key":
            return f"key {entity}, whose owner has left, signed {m.get('tokens', 0):,} forged tokens"
        return f"{entity}, who has left the company, made {m.get('requests', 0):,} requests"
    if det == "enumeration":
        n = f"{m.get('count', 0):,.0f}"
        return f"{label} {entity} {_ENUM.get(rule, 'touched many people').format(n=n)}"
    if det == "novel_source":
        if rule == "rare_source":
            return f"{m.get('accounts', 0):,.0f} account(s) reached from a source rare for everyone ({entity})"
        return f"{label} {entity} reached {m.get('accounts', 0):,.0f} accounts that had never come from there"
    if det == "volume_anomaly":
        return f"{label} {entity} sent {m.get('value', 0):,.0f} {rule.replace('_', ' ')} in an hour"
    if det == "ml_outlier":
        return f"{label} {entity} behaved unlike anything in the history"
    return f"{det} on {entity}"


def summary(lead: dict[str, Any], stats: dict[str, int], first_seen: datetime) -> str:
    people = stats.get("subjects", 0)
    parts = [headline(lead, stats)]
    where = []
    if stats.get("ips"):
        where.append(f"from {stats['ips']:,} IP{'s' if stats['ips'] != 1 else ''}")
    if stats.get("countries"):
        where.append(f"in {stats['countries']:,} countr{'ies' if stats['countries'] != 1 else 'y'}")
    subject = "they" if lead["detector"] == "forged_token" else "it"
    parts.append(f"{subject} read {people:,} distinct {'person' if people == 1 else 'people'} "
                 f"{' '.join(where)} since {first_seen:%m-%d %H:%M}".replace("  ", " "))
    return "; ".join(parts)


def stats_line(stats: dict[str, int], fields: list[str]) -> str:
    return (f"so far: {stats.get('events', 0):,} requests, {stats.get('subjects', 0):,} people, "
            f"{stats.get('principals', 0):,} principals, {stats.get('tokens', 0):,} tokens, {stats.get('ips', 0):,} IPs, "
            f"{stats.get('countries', 0):,} countries; fields: {', '.join(fields) or 'none recorded'}")


def iso(t: datetime | None) -> str | None:
    return t.isoformat() + "Z" if t is not None else None
