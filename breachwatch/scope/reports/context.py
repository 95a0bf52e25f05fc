"""What every report and notice is written from: the manifest's counts, the incident, the company, the clocks."""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from breachwatch.contract.catalog import Catalog
from breachwatch.scope.deadlines import Awareness, DutyStatus


def _dt(v: Any) -> datetime | None:
    if v is None or v == "":
        return None
    if isinstance(v, datetime):
        return v.astimezone(timezone.utc) if v.tzinfo else v.replace(tzinfo=timezone.utc)
    t = datetime.fromisoformat(str(v).replace("Z", "+00:00"))
    return t.astimezone(timezone.utc) if t.tzinfo else t.replace(tzinfo=timezone.utc)


def _list(v: Any) -> list[str]:
    if v is None:
        return []
    return [str(x) for x in v] if isinstance(v, list) else [str(v)]


def report_context(summary: dict[str, Any], incident: dict[str, Any], catalog: Catalog, aware: Awareness,
                   statuses: list[DutyStatus], *, version: int = 1, previous: dict[str, Any] | None = None,
                   now: datetime | None = None) -> dict[str, Any]:
    """The template context. `previous` is the prior run's summary (for a staged update notice)."""
    company = dict(catalog.company)
    company.setdefault("name", "(company name: set company.name in breachwatch.yaml)")
    company.setdefault("name_ko", company["name"])
    company.setdefault("contact", "(contact: set company.contact in breachwatch.yaml)")
    company.setdefault("privacy_officer", "(privacy officer: set company.privacy_officer in breachwatch.yaml)")
    company.setdefault("privacy_officer_ko", company["privacy_officer"])
    for optional in ("phone", "remedy", "remedy_ko"):
        company.setdefault(optional, None)
    groups = [r for r in summary["by_category"] if r["kind"] == "group"]
    legal = [r for r in summary["by_category"] if r["kind"] == "legal"]
    steps = summary.get("steps", [])
    ent = incident.get("entities") or {}
    duty_rows = [s.as_dict() for s in statuses]
    for d, s in zip(duty_rows, statuses):
        d["deadline_dt"], d["done_dt"] = _dt(s.deadline), _dt(s.done_at)
    prev_subjects = previous.get("subjects") if previous else None
    return {
        "company": company,
        "lookup_url": (catalog.policy.get("lookup") or {}).get("url"),
        "incident": {
            "id": incident.get("id"), "severity": incident.get("severity"), "summary": incident.get("summary"),
            "detectors": _list(incident.get("detectors")), "evidence": _list(incident.get("evidence")),
            "first_seen": _dt(incident.get("first_seen")), "detected_at": _dt(incident.get("detected_at")),
            "entities": {k: _list(v) for k, v in ent.items()},
        },
        "counts": {k: summary[k] for k in ("subjects", "members", "non_members", "pairs", "reads")},
        "by_field": summary["by_field"], "groups": groups, "legal": legal,
        "group_names": [g["category"] for g in groups],
        "unique_identifiers": summary["unique_identifiers"], "sensitive": summary["sensitive"],
        "access": summary["access"], "external": summary["external"],
        "first_exposure": _dt(summary["first_exposure"]), "last_exposure": _dt(summary["last_exposure"]),
        "aware_at": _dt(aware.aware_at), "aware_source": aware.source,
        "aware_history": [{**h, "aware_dt": _dt(h["aware_at"]), "previous_dt": _dt(h["previous"]),
                           "changed_dt": _dt(h["changed_at"])} for h in aware.history],
        "duties": duty_rows, "missed": [d for d in duty_rows if d["missed"]],
        "accepted_steps": [s for s in steps if s.get("decision") == "accepted"],
        "rejected_steps": [s for s in steps if s.get("decision") == "rejected"],
        "version": version, "is_update": version > 1, "previous_subjects": prev_subjects,
        "added_subjects": (summary["subjects"] - prev_subjects) if prev_subjects is not None else None,
        "measures": _list(company.get("countermeasures")),
        "measures_ko": _list(company.get("countermeasures_ko") or company.get("countermeasures")),
        "generated_at": _dt(now or datetime.now(timezone.utc)),
    }
