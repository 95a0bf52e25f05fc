"""Incident lifecycle: open -> acknowledged -> resolved or false_positive, every step audited.

Marking an incident a false positive requires a suppression scope, an expiry
and a reason, and records who decided; the suppression it creates is listed
and can be lifted (`unsuppress`), which is audited too.
"""
from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from typing import Any

import duckdb

from breachwatch.incidents import suppression
from breachwatch.incidents.store import get_incident
from breachwatch.incidents.suppression import now_utc

TRANSITIONS = {
    "acknowledged": ("open",),
    "resolved": ("open", "acknowledged"),
    "false_positive": ("open", "acknowledged"),
}


def parse_expiry(text: str, now: datetime | None = None) -> datetime:
    """'30d', '12h', '2w' from now, or an ISO date/time (UTC)."""
    now = now or now_utc()
    m = re.fullmatch(r"\s*(\d+)\s*([hdw])\s*", text or "")
    if m:
        n, unit = int(m.group(1)), m.group(2)
        return now + timedelta(hours=n) * {"h": 1, "d": 24, "w": 168}[unit]
    try:
        dt = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except (ValueError, AttributeError) as e:
        raise ValueError(f"--expires {text!r}: not a duration or date. Fix: write e.g. 30d, 12h, 2w or "
                         "2025-12-31.") from e
    if dt.tzinfo is not None:
        dt = dt.astimezone(timezone.utc).replace(tzinfo=None)
    return dt


def _require(con: duckdb.DuckDBPyConnection, incident_id: str, target: str) -> dict[str, Any]:
    inc = get_incident(con, incident_id)
    if inc is None:
        raise ValueError(f"incident '{incident_id}' does not exist. Fix: list incidents with 'breachwatch incidents'.")
    if inc["status"] not in TRANSITIONS[target]:
        raise ValueError(f"incident {incident_id} is {inc['status']}; it cannot become {target}. "
                         f"Fix: only {' or '.join(TRANSITIONS[target])} incidents can.")
    return inc


def _log(con: duckdb.DuckDBPyConnection, incident_id: str, action: str, actor: str, detail: str) -> None:
    con.execute("INSERT INTO incident_log VALUES (?, ?, ?, ?, ?)", [incident_id, now_utc(), action, actor, detail])


def _actor(by: str | None) -> str:
    if not by or not by.strip():
        raise ValueError("--by: every lifecycle change names who made it. Fix: pass --by YOUR-ID.")
    return by.strip()


def acknowledge(con: duckdb.DuckDBPyConnection, incident_id: str, *, by: str, note: str = "") -> dict[str, Any]:
    return _move(con, incident_id, "acknowledged", by, note)


def resolve(con: duckdb.DuckDBPyConnection, incident_id: str, *, by: str, note: str = "") -> dict[str, Any]:
    return _move(con, incident_id, "resolved", by, note)


def _move(con: duckdb.DuckDBPyConnection, incident_id: str, status: str, by: str, note: str) -> dict[str, Any]:
    """One checked, logged status change: the only way an incident's status moves."""
    _require(con, incident_id, status)
    actor = _actor(by)
    _set_status(con, incident_id, status)
    _log(con, incident_id, status, actor, note)
    return get_incident(con, incident_id)  # type: ignore[return-value]


def _set_status(con: duckdb.DuckDBPyConnection, incident_id: str, status: str) -> None:
    con.execute("UPDATE incidents SET status = ?, updated_at = ? WHERE incident_id = ?",
                [status, now_utc(), incident_id])


def false_positive(con: duckdb.DuckDBPyConnection, incident_id: str, *, scope: str, expires: str, reason: str,
                   by: str) -> dict[str, Any]:
    """Close as false positive and suppress its patterns; refused to anyone the incident involves."""
    _require(con, incident_id, "false_positive")
    actor = _actor(by)
    patterns = [(d, e, v) for d, e, v in con.execute(
        "SELECT DISTINCT detector, etype, entity FROM alerts WHERE incident_id = ? AND etype IS NOT NULL "
        "AND entity IS NOT NULL", [incident_id]).fetchall()]
    if not patterns:
        raise ValueError(f"incident {incident_id} has no entity-bound alert to suppress. Fix: resolve it instead.")
    ids = suppression.create(con, incident_id=incident_id, patterns=patterns, scope=scope,
                             expires_at=parse_expiry(expires), reason=reason, by=actor)
    _set_status(con, incident_id, "false_positive")
    _log(con, incident_id, "false_positive", actor, f"{reason} (suppressions {', '.join(ids)}, scope {scope}, "
                                                    f"until {expires})")
    out = get_incident(con, incident_id) or {}
    out["suppressions"] = ids
    return out


def unsuppress(con: duckdb.DuckDBPyConnection, suppression_id: str, *, by: str, reason: str = "") -> dict[str, Any]:
    actor = _actor(by)
    res = suppression.revoke(con, suppression_id, by=actor, reason=reason)
    if res["incident_id"]:
        _log(con, res["incident_id"], "unsuppressed", actor, f"{suppression_id} lifted: {reason}")
    return res
