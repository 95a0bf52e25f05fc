"""Suppressions: a false positive silences its pattern for its entity, visibly and reversibly.

A suppression has a scope (this detector on this entity, or any detector on
it), an expiry, a reason and the person who set it. Nobody may suppress an
incident whose own principals include them, so an insider cannot silence the
alert about themselves; every suppression is listed, counted when it hides an
alert, and can be lifted.
"""
from __future__ import annotations

import hashlib
from datetime import datetime, timezone
from typing import Any

import duckdb

SCOPES = ("pattern", "entity")


class SuppressionRefused(ValueError):
    """The person asking may not suppress this incident (they appear in it)."""


def now_utc() -> datetime:
    return datetime.now(timezone.utc).replace(tzinfo=None)


class LiveSuppressions:
    """The suppressions live now, read once per detection run and matched in memory (most stores have
    none, and a run may match thousands of candidates); `save_hits` writes what they matched."""

    def __init__(self, con: duckdb.DuckDBPyConnection) -> None:
        self._by_entity: dict[tuple[str, str], list[tuple[str, str, str]]] = {}
        for sid, detector, etype, entity, scope in con.execute(
                "SELECT suppression_id, detector, etype, entity, scope FROM suppressions "
                "WHERE revoked_at IS NULL AND expires_at > ? ORDER BY created_at", [now_utc()]).fetchall():
            self._by_entity.setdefault((etype, entity), []).append((sid, detector, scope))
        self._hits: dict[str, int] = {}

    def match(self, detector: str, etype: str | None, entity: str | None) -> str | None:
        """The id of the oldest live suppression covering this detector on this entity, if any."""
        for sid, det, scope in self._by_entity.get((etype, entity), ()):  # type: ignore[arg-type]
            if det == detector or scope == "entity":
                self._hits[sid] = self._hits.get(sid, 0) + 1
                return sid
        return None

    def save_hits(self, con: duckdb.DuckDBPyConnection) -> None:
        for sid, n in self._hits.items():
            con.execute("UPDATE suppressions SET hits = hits + ? WHERE suppression_id = ?", [n, sid])
        self._hits.clear()


def create(con: duckdb.DuckDBPyConnection, *, incident_id: str, patterns: list[tuple[str, str, str]], scope: str,
           expires_at: datetime, reason: str, by: str) -> list[str]:
    """One suppression per (detector, etype, entity) of the incident; returns their ids."""
    if scope not in SCOPES:
        raise ValueError(f"--scope {scope}: unknown scope. Fix: use 'pattern' (this detector on this entity) "
                         "or 'entity' (any detector on this entity).")
    if not reason or len(reason.strip()) < 8:
        raise ValueError("--reason: a suppression needs a reason a reviewer can check (at least 8 characters). "
                         "Fix: say why this is not a breach, e.g. --reason 'quarterly audit export, ticket SEC-42'.")
    if not by or not by.strip():
        raise ValueError("--by: a suppression must name who set it. Fix: pass --by YOUR-ID.")
    now = now_utc()
    if expires_at <= now:
        raise ValueError(f"--expires {expires_at:%Y-%m-%d %H:%M}: already past. Fix: give a future date or a "
                         "duration such as 30d.")
    involved = {r[0] for r in con.execute("SELECT value FROM incident_entities WHERE incident_id = ? "
                                          "AND etype = 'principal'", [incident_id]).fetchall()}
    if by.strip() in involved:
        raise SuppressionRefused(f"{by} appears in incident {incident_id} and cannot suppress it. Fix: ask another "
                              "analyst to review and mark it.")
    ids = []
    seen = set()
    for detector, etype, entity in patterns:
        key = (detector if scope == "pattern" else "*", etype, entity)
        if key in seen:
            continue
        seen.add(key)
        sid = "sup-" + hashlib.sha256(f"{incident_id}|{key}|{now.isoformat()}".encode()).hexdigest()[:12]
        con.execute("INSERT INTO suppressions VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0, NULL, NULL, NULL)",
                    [sid, key[0], etype, entity, scope, reason.strip(), by.strip(), now, expires_at, incident_id])
        ids.append(sid)
    return ids


def revoke(con: duckdb.DuckDBPyConnection, suppression_id: str, *, by: str, reason: str) -> dict[str, Any]:
    row = con.execute("SELECT incident_id, revoked_at FROM suppressions WHERE suppression_id = ?",
                      [suppression_id]).fetchall()
    row = row[0] if row else None
    if row is None:
        raise ValueError(f"suppression '{suppression_id}' does not exist. Fix: list them with "
                         "'breachwatch incidents suppressions'.")
    if row[1] is not None:
        raise ValueError(f"suppression '{suppression_id}' was already lifted on {row[1]:%Y-%m-%d %H:%M}.")
    if not by or not by.strip():
        raise ValueError("--by: lifting a suppression must name who did it. Fix: pass --by YOUR-ID.")
    con.execute("UPDATE suppressions SET revoked_at = ?, revoked_by = ?, revoke_reason = ? WHERE suppression_id = ?",
                [now_utc(), by.strip(), reason, suppression_id])
    return {"suppression_id": suppression_id, "incident_id": row[0]}


def list_suppressions(con: duckdb.DuckDBPyConnection, *, include_inactive: bool = True) -> list[dict[str, Any]]:
    cols = ["suppression_id", "detector", "etype", "entity", "scope", "reason", "created_by", "created_at",
            "expires_at", "incident_id", "hits", "revoked_at", "revoked_by", "revoke_reason"]
    rows = con.execute(f"SELECT {', '.join(cols)} FROM suppressions ORDER BY created_at").fetchall()
    now = now_utc()
    out = []
    for r in rows:
        d = dict(zip(cols, r))
        d["active"] = d["revoked_at"] is None and d["expires_at"] > now
        if include_inactive or d["active"]:
            out.append({k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in d.items()})
    return out
