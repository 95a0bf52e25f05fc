"""Notifications on new and escalated incidents, through an outbox.

Detection only appends to `notify_outbox` inside its own transaction, so a
slow or dead receiver never delays or breaks detection. `deliver` sends what
is due, and on failure schedules a retry with exponential backoff until the
target's max_attempts; `Deliverer` does that in a background thread for
`detect --follow`.
"""
from __future__ import annotations

import hashlib
import threading
from datetime import datetime, timedelta, timezone
from typing import Any

import duckdb
import orjson

from breachwatch.incidents.notify.channels import SENDERS
from breachwatch.incidents.notify.config import CHANNELS, validate_notify
from breachwatch.incidents.notify.payload import build

_RANK = {"low": 0, "medium": 1, "high": 2, "critical": 3}


def _now() -> datetime:
    return datetime.now(timezone.utc).replace(tzinfo=None)


def enqueue(con: duckdb.DuckDBPyConnection, cfg: dict[str, Any] | None, incident_id: str, trigger: str) -> int:
    """Queue one message per configured target for this incident; returns how many."""
    if not cfg or not any(cfg.get(ch) for ch in CHANNELS):
        return 0
    p = build(con, incident_id, trigger, cfg)
    if p is None or _RANK[p["severity"]] < _RANK[cfg["min_severity"]]:
        return 0
    now = _now()
    n = 0
    for ch in CHANNELS:
        for i, _ in enumerate(cfg.get(ch) or []):
            nid = "n-" + hashlib.sha256(f"{incident_id}|{trigger}|{ch}|{i}|{now.isoformat()}".encode()).hexdigest()[:16]
            con.execute("INSERT INTO notify_outbox VALUES (?, ?, ?, ?, ?, 'pending', 0, ?, NULL, ?, NULL)",
                        [nid, incident_id, trigger, f"{ch}[{i}]", orjson.dumps(p).decode(), now, now])
            n += 1
    return n


def _target(cfg: dict[str, Any], channel: str) -> tuple[str, dict[str, Any]] | None:
    ch, _, rest = channel.partition("[")
    i = int(rest.rstrip("]") or 0)
    targets = cfg.get(ch) or []
    return (ch, targets[i]) if i < len(targets) else None


def deliver(con: duckdb.DuckDBPyConnection, cfg: dict[str, Any] | None, *, now: datetime | None = None) -> dict[str, int]:
    """Send every due message once; failures are rescheduled with backoff or given up."""
    counts = {"sent": 0, "retry": 0, "failed": 0}
    if not cfg:
        return counts
    now = now or _now()
    due = con.execute("SELECT notification_id, channel, payload, attempts FROM notify_outbox "
                      "WHERE status = 'pending' AND next_attempt_at <= ? ORDER BY created_at", [now]).fetchall()
    for nid, channel, payload, attempts in due:
        hit = _target(cfg, channel)
        if hit is None:
            con.execute("UPDATE notify_outbox SET status = 'failed', last_error = ? WHERE notification_id = ?",
                        [f"target {channel} is no longer configured", nid])
            counts["failed"] += 1
            continue
        ch, t = hit
        try:
            SENDERS[ch](orjson.loads(payload), t)
        except Exception as e:  # any failure of a receiver is retried, never raised into detection
            attempts += 1
            if attempts >= t["max_attempts"]:
                con.execute("UPDATE notify_outbox SET status = 'failed', attempts = ?, last_error = ? "
                            "WHERE notification_id = ?", [attempts, f"{type(e).__name__}: {e}"[:500], nid])
                counts["failed"] += 1
            else:
                wait = t["backoff"] * (2 ** (attempts - 1))
                con.execute("UPDATE notify_outbox SET attempts = ?, last_error = ?, next_attempt_at = ? "
                            "WHERE notification_id = ?",
                            [attempts, f"{type(e).__name__}: {e}"[:500], _now() + timedelta(seconds=wait), nid])
                counts["retry"] += 1
            continue
        con.execute("UPDATE notify_outbox SET status = 'sent', attempts = ?, sent_at = ? WHERE notification_id = ?",
                    [attempts + 1, _now(), nid])
        counts["sent"] += 1
    return counts


class Deliverer:
    """Delivers the outbox in a background thread on its own cursor, every `interval` seconds."""

    def __init__(self, con: duckdb.DuckDBPyConnection, cfg: dict[str, Any] | None, interval: float = 1.0) -> None:
        self.cfg = cfg
        self.interval = interval
        self._cursor = con.cursor()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="breachwatch-notify", daemon=True)
        self.errors: list[str] = []

    def start(self) -> "Deliverer":
        if self.cfg and any(self.cfg.get(ch) for ch in CHANNELS):
            self._thread.start()
        return self

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                deliver(self._cursor, self.cfg)
            except duckdb.Error as e:  # e.g. a write conflict with detection: try again next tick
                self.errors.append(str(e))

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=10)
        self._cursor.close()


__all__ = ["Deliverer", "deliver", "enqueue", "validate_notify"]
