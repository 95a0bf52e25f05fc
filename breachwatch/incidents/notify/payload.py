"""What a notification says: counts, entity types and a link; personal data only when configured.

IP addresses, account ids and token ids identify people, so by default a
message carries how many of each there are, never which.
"""
from __future__ import annotations

from typing import Any

from breachwatch.incidents.store import get_incident


def build(con, incident_id: str, trigger: str, cfg: dict[str, Any]) -> dict[str, Any] | None:
    inc = get_incident(con, incident_id)
    if inc is None:
        return None
    ents = inc.get("entities") or {}
    out = {
        "type": "breachwatch.incident",
        "trigger": trigger,
        "id": inc["id"],
        "severity": inc["severity"],
        "status": inc["status"],
        "detectors": inc["detectors"],
        "first_seen": inc["first_seen"],
        "detected_at": inc["detected_at"],
        "counts": {"people": inc["subjects"], "events": inc.get("events", 0),
                   **{k: len(v) for k, v in ents.items() if v}},
        "entity_types": sorted(k for k, v in ents.items() if v),
        "fields": inc["fields"],
        "link": cfg["link"].format(id=inc["id"]) if cfg.get("link") else None,
    }
    if cfg.get("include_personal_data"):
        out["summary"] = inc["summary"]
        out["evidence"] = inc["evidence"]
        out["entities"] = ents
    return out


def text(p: dict[str, Any]) -> str:
    """One line for chat, mail subjects and syslog."""
    counts = p["counts"]
    what = "new incident" if p["trigger"] == "new" else f"incident {p['trigger']}"
    line = (f"breachwatch {what} {p['id']} [{p['severity']}]: {counts.get('people', 0):,} people, "
            f"{counts.get('events', 0):,} events; detectors {', '.join(p['detectors'])}; "
            f"entities: {', '.join(f'{counts[k]:,} {k}' for k in p['entity_types'] if k in counts)}")
    if p.get("summary"):
        line += f" | {p['summary']}"
    if p.get("link"):
        line += f" | {p['link']}"
    return line
