"""The audit trail: who read subject-level data or changed access, when, from where.

Rows are only ever appended. Each carries the hash of the one before it, so
`verify_audit` names the first row that was edited, deleted or reordered;
admins view and export the trail through the API. Writing the row comes
before the data is sent: if the trail cannot be written, the read is refused.
"""
from __future__ import annotations

import hashlib
import threading
import time
from datetime import datetime
from typing import Any, Iterator

import duckdb
import orjson

from breachwatch.server.apikeys import now_utc

GENESIS = "0" * 64
_COLS = ("seq", "recorded_at", "actor", "roles", "action", "resource", "outcome", "client", "detail", "prev_hash", "hash")
_lock = threading.Lock()  # one process writes the store; this orders its writers


def _digest(prev_hash: str, seq: int, at: datetime, actor: str, roles: list[str] | None, action: str,
            resource: str | None, outcome: str, client: str | None, detail: str | None) -> str:
    body = orjson.dumps([seq, at.isoformat(), actor, roles, action, resource, outcome, client, detail])
    return hashlib.sha256(prev_hash.encode() + b"|" + body).hexdigest()


def record(con: duckdb.DuckDBPyConnection, *, actor: str, action: str, roles: list[str] | tuple[str, ...] | None = None,
           resource: str | None = None, outcome: str = "ok", client: str | None = None,
           detail: dict[str, Any] | None = None) -> int:
    """Append one row; return its sequence number."""
    text = orjson.dumps(detail, option=orjson.OPT_SORT_KEYS).decode() if detail else None
    role_list = list(roles) if roles is not None else None
    with _lock:
        last = con.execute("SELECT seq, hash FROM audit_log WHERE seq = (SELECT max(seq) FROM audit_log)").fetchone()
        seq, prev = (last[0] + 1, last[1]) if last else (1, GENESIS)
        at = now_utc()
        h = _digest(prev, seq, at, actor, role_list, action, resource, outcome, client, text)
        con.execute("INSERT INTO audit_log VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    [seq, at, actor, role_list, action, resource, outcome, client, text, prev, h])
    return seq


def verify_audit(con: duckdb.DuckDBPyConnection, *, after: tuple[int, str] | None = None) -> int | None:
    """The first row whose chain breaks, or None when the trail is intact.

    `after` = (seq, hash) of a row an earlier full check found intact: only the rows after it are checked,
    and that row must still be there, unchanged, with no row missing before it.
    """
    prev, expect = GENESIS, 1
    if after is not None:
        seq, h = after
        n = con.execute("SELECT count(*) FROM audit_log WHERE seq <= ?", [seq]).fetchone()[0]
        row = con.execute(f"SELECT {', '.join(_COLS)} FROM audit_log WHERE seq = ?", [seq]).fetchone()
        if n != seq or row is None or row[-1] != h or not _intact(row[-2], row):
            return verify_audit(con)  # the checked part changed: find where, the long way
        prev, expect = h, seq + 1
    for row in con.execute(f"SELECT {', '.join(_COLS)} FROM audit_log WHERE seq >= ? ORDER BY seq",
                           [expect]).fetchall():
        if row[0] != expect or row[-2] != prev or not _intact(prev, row):
            return expect
        prev, expect = row[-1], row[0] + 1
    return None


def _intact(prev: str, row: tuple) -> bool:
    """Whether a row's stored hash is the digest of its values chained to `prev`."""
    seq, at, actor, roles, action, resource, outcome, client, detail, _, h = row
    roles = list(roles) if roles is not None else None
    return h == _digest(prev, seq, at, actor, roles, action, resource, outcome, client, detail)


class VerifiedTrail:
    """What the dashboard's audit page shows about the chain, without reading the whole trail per view.

    The whole trail is checked at most every `full_every_s` seconds; views in between check the rows
    added since the last full check (and that the row it ended on is unchanged). The page says when the
    last full check ran; `GET /v1/admin/audit/verify` always checks everything.
    """

    def __init__(self, full_every_s: float = 600.0) -> None:
        self.full_every_s = full_every_s
        self._lock = threading.Lock()
        self._intact_to: tuple[int, str] | None = None  # (seq, hash) of the last row a full check passed
        self.full_at: float | None = None  # time.time() of the last full check

    def check(self, con: duckdb.DuckDBPyConnection) -> int | None:
        with self._lock:
            if self.full_at is not None and time.time() - self.full_at < self.full_every_s:
                return verify_audit(con, after=self._intact_to)
            # The newest row before the check: rows are appended while it runs, and only these are checked.
            last = con.execute("SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1").fetchone()
            bad = verify_audit(con)
            self.full_at = time.time()
            self._intact_to = (last[0], last[1]) if last and (bad is None or bad > last[0]) else None
            return bad


def _as_dict(r: tuple) -> dict[str, Any]:
    d = dict(zip(_COLS, r))
    d["at"] = d.pop("recorded_at").isoformat() + "Z"
    d["roles"] = list(d["roles"]) if d["roles"] is not None else None
    d["detail"] = orjson.loads(d["detail"]) if d["detail"] else None
    return d


def _where(action: str | None, actor: str | None, since: datetime | None, after_seq: int) -> tuple[str, list[Any]]:
    where, args = ["seq > ?"], [after_seq]
    if action:
        where.append("(action = ? OR starts_with(action, ? || '.'))")
        args += [action, action]
    if actor:
        where.append("actor = ?")
        args.append(actor)
    if since:
        where.append("recorded_at >= ?")
        args.append(since)
    return " AND ".join(where), args


def list_audit(con: duckdb.DuckDBPyConnection, *, action: str | None = None, actor: str | None = None,
               since: datetime | None = None, after_seq: int = 0, limit: int = 100) -> list[dict[str, Any]]:
    """Rows oldest first after `after_seq` (page with the last seq seen)."""
    where, args = _where(action, actor, since, after_seq)
    rows = con.execute(f"SELECT {', '.join(_COLS)} FROM audit_log WHERE {where} ORDER BY seq LIMIT ?",
                       [*args, limit]).fetchall()
    return [_as_dict(r) for r in rows]


def export_ndjson(con: duckdb.DuckDBPyConnection, *, action: str | None = None, actor: str | None = None,
                  since: datetime | None = None, page: int = 5000) -> Iterator[bytes]:
    """The whole trail (or a filtered part) as NDJSON, with the hashes, paged so memory stays flat."""
    after = 0
    while True:
        rows = list_audit(con, action=action, actor=actor, since=since, after_seq=after, limit=page)
        if not rows:
            return
        yield b"".join(orjson.dumps(r) + b"\n" for r in rows)
        after = rows[-1]["seq"]
