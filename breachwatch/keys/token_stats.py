"""What the store says each signing key did: tokens issued, tokens used that no
issuance recorded, token lifetimes, and use after retirement.

A token counts as *unissued* (forgery evidence) only where the issuance log
could have recorded it: its claimed `iat` is inside the log's coverage, or it
was first used more than the policy lifetime after the log began (any
genuinely issued token would have been logged by then). Without any
`token_issued` event the question cannot be asked, and the audit says so
instead of calling every token forged.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any


@dataclass
class UnissuedUse:
    key_id: str
    tokens: int
    principals: int
    subjects: int
    access_events: int
    src_ips: int
    countries: list[str]
    first_seen: datetime
    last_seen: datetime
    sample_tokens: list[str]
    sample_principals: list[str]


@dataclass
class LifetimeExcess:
    key_id: str
    tokens: int
    max_lifetime_s: float
    sample_tokens: list[str]


@dataclass
class KeyUsage:
    key_id: str
    issued: int = 0
    used_tokens: int = 0
    first_used: datetime | None = None
    last_used: datetime | None = None


@dataclass
class TokenStats:
    issuance_log_start: datetime | None
    usage: dict[str, KeyUsage] = field(default_factory=dict)
    unissued: list[UnissuedUse] = field(default_factory=list)
    long_lived: list[LifetimeExcess] = field(default_factory=list)
    access_with_tokens: int = 0


# Tokens seen on access events that no token_issued event recorded, where the log could have.
_UNISSUED = """
    WITH issued AS (SELECT DISTINCT token_id FROM events WHERE kind = 'token_issued' AND token_id IS NOT NULL),
    used AS (
        SELECT token_id, any_value(key_id) AS key_id, min(time) AS first_seen, min(token_issued_at) AS iat
        FROM events WHERE kind = 'access' AND token_id IS NOT NULL AND key_id IS NOT NULL
        GROUP BY token_id),
    unissued AS (
        SELECT u.* FROM used u ANTI JOIN issued i ON u.token_id = i.token_id
        WHERE (u.iat IS NOT NULL AND u.iat >= $start) OR u.first_seen >= $start + to_seconds($lifetime))
"""


def _utc(dt: datetime | None) -> datetime | None:
    return dt.replace(tzinfo=timezone.utc) if dt is not None else None


def collect(con: Any, max_token_lifetime_s: int, sample: int = 5) -> TokenStats:
    """Run the per-key queries on an open (read-only) store."""
    start = con.execute("SELECT min(time) FROM events WHERE kind = 'token_issued'").fetchone()[0]
    stats = TokenStats(_utc(start))
    stats.access_with_tokens = con.execute(
        "SELECT count(*) FROM events WHERE kind = 'access' AND token_id IS NOT NULL").fetchone()[0]

    for kid, issued in con.execute(
            "SELECT key_id, count(DISTINCT token_id) FROM events WHERE kind = 'token_issued' "
            "AND key_id IS NOT NULL GROUP BY key_id").fetchall():
        stats.usage.setdefault(kid, KeyUsage(kid)).issued = issued
    for kid, used, first, last in con.execute(
            "SELECT key_id, count(DISTINCT token_id), min(time), max(time) FROM events WHERE kind = 'access' "
            "AND key_id IS NOT NULL GROUP BY key_id").fetchall():
        u = stats.usage.setdefault(kid, KeyUsage(kid))
        u.used_tokens, u.first_used, u.last_used = used, _utc(first), _utc(last)

    if start is not None:
        params = {"start": start, "lifetime": max_token_lifetime_s}
        per_key = con.execute(f"""{_UNISSUED}
            SELECT n.key_id, count(DISTINCT n.token_id), count(DISTINCT e.principal_id), count(*),
                   count(DISTINCT e.src_ip), list(DISTINCT e.src_country) FILTER (WHERE e.src_country IS NOT NULL),
                   min(e.time), max(e.time), (list(DISTINCT n.token_id ORDER BY n.token_id))[1:{sample}],
                   (list(DISTINCT e.principal_id ORDER BY e.principal_id)
                        FILTER (WHERE e.principal_id IS NOT NULL))[1:{sample}]
            FROM unissued n JOIN events e ON e.kind = 'access' AND e.token_id = n.token_id
            GROUP BY n.key_id ORDER BY n.key_id""", params).fetchall()
        subjects = dict(con.execute(f"""{_UNISSUED}
            SELECT n.key_id, count(DISTINCT t.subject)
            FROM unissued n JOIN events e ON e.kind = 'access' AND e.token_id = n.token_id,
                 unnest(e.subject_ids) AS t(subject)
            GROUP BY n.key_id""", params).fetchall())
        for kid, toks, princ, evs, ips, countries, first, last, st, sp in per_key:
            stats.unissued.append(UnissuedUse(kid, toks, princ, subjects.get(kid, 0), evs, ips,
                                              sorted(countries or []), _utc(first), _utc(last), list(st), list(sp)))

    rows = con.execute(f"""
        WITH claims AS (
            SELECT key_id, token_id, max(epoch(token_expires_at) - epoch(token_issued_at)) AS life
            FROM events WHERE kind IN ('token_issued', 'access') AND key_id IS NOT NULL
              AND token_issued_at IS NOT NULL AND token_expires_at IS NOT NULL
            GROUP BY key_id, token_id)
        SELECT key_id, count(*), max(life), (list(token_id ORDER BY life DESC, token_id))[1:{sample}]
        FROM claims WHERE life > $lifetime GROUP BY key_id ORDER BY key_id
    """, {"lifetime": max_token_lifetime_s}).fetchall()
    stats.long_lived = [LifetimeExcess(k, n, float(m), list(s)) for k, n, m, s in rows]
    return stats


def used_after(con: Any, key_id: str, when: datetime) -> tuple[int, datetime | None]:
    """Access events signed by a key after a time (e.g. its retirement): count and last time."""
    n, last = con.execute("SELECT count(*), max(time) FROM events WHERE kind = 'access' AND key_id = ? AND time > ?",
                          [key_id, when.astimezone(timezone.utc).replace(tzinfo=None)]).fetchone()
    return n, _utc(last)
