"""Filling the ledger from events: `token_issued` from every issuance path, plus
`token_revoked`, `key_retired` and `key_revoked`, read from NDJSON/CSV/Parquet
files or from the store (read-only; the store has one writer and it is not us).

Issuers that cannot call the guard's API log `token_issued` events instead;
loading them is how their tokens become known. Tokens that have already
expired are skipped, since the ledger would drop them at once anyway.
"""
from __future__ import annotations

import tempfile
from collections import Counter
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Iterator

import orjson

from breachwatch.guard.ledger import IssuanceLedger, LedgerEntry

KINDS = ("token_issued", "token_revoked", "key_retired", "key_revoked")
_BATCH = 5_000


@dataclass
class LoadSummary:
    read: int = 0
    issued: int = 0
    recorded: int = 0
    expired_skipped: int = 0
    revoked_tokens: int = 0
    revoked_subjects: int = 0
    retired_kids: int = 0
    unusable: Counter[str] = field(default_factory=Counter)

    def as_dict(self) -> dict[str, Any]:
        return {"read": self.read, "issued": self.issued, "recorded": self.recorded,
                "expired_skipped": self.expired_skipped, "revoked_tokens": self.revoked_tokens,
                "revoked_subjects": self.revoked_subjects, "retired_kids": self.retired_kids,
                "unusable": dict(self.unusable)}


@dataclass(frozen=True)
class LedgerEvent:
    kind: str
    time: float
    token_id: str | None
    principal_id: str | None
    key_id: str | None
    issued_at: float | None
    expires_at: float | None
    attributes: dict[str, Any]


def apply_events(ledger: IssuanceLedger, events: Iterable[LedgerEvent], now: float,
                 summary: LoadSummary | None = None) -> LoadSummary:
    s = summary or LoadSummary()
    batch: list[LedgerEntry] = []

    def flush() -> None:
        s.recorded += ledger.record_many(batch, now)
        batch.clear()

    for ev in events:
        s.read += 1
        if ev.kind == "token_issued":
            s.issued += 1
            if not ev.token_id or ev.expires_at is None:
                s.unusable["token_issued without token_id or token_expires_at"] += 1
                continue
            if ev.expires_at + ledger.leeway_s <= now:
                s.expired_skipped += 1
                continue
            source = str(ev.attributes.get("issuance") or ev.attributes.get("source") or "events")
            batch.append(LedgerEntry(ev.token_id, ev.principal_id, ev.key_id, int(ev.expires_at),
                                     int(ev.issued_at) if ev.issued_at is not None else None, source))
            if len(batch) >= _BATCH:
                flush()
        elif ev.kind == "token_revoked":
            flush()  # a revocation must land after the issuance it revokes
            if ev.token_id:
                if ev.expires_at is not None and ev.expires_at + ledger.leeway_s <= now:
                    s.expired_skipped += 1
                    continue
                ledger.revoke(ev.token_id, str(ev.attributes.get("reason") or "token_revoked event"),
                              ev.expires_at, now)
                s.revoked_tokens += 1
            elif ev.principal_id:
                ledger.revoke_subject(ev.principal_id, ev.time)
                s.revoked_subjects += 1
            else:
                s.unusable["token_revoked without token_id or principal_id"] += 1
        elif ev.kind in ("key_retired", "key_revoked"):
            if ev.key_id:
                ledger.retire_kid(ev.key_id)
                s.retired_kids += 1
            else:
                s.unusable[f"{ev.kind} without key_id"] += 1
    flush()
    return s


def _attrs(text: Any) -> dict[str, Any]:
    if not text:
        return {}
    try:
        v = orjson.loads(text) if isinstance(text, (str, bytes)) else text
    except orjson.JSONDecodeError:
        return {}
    return v if isinstance(v, dict) else {}


@contextmanager
def scratch_store_from_files(paths: Iterable[str | Path], summary: LoadSummary) -> Iterator[Any]:
    """Files loaded into a throwaway store by the ingest pipeline itself, so they are validated
    exactly as `breachwatch ingest` validates them (bad records counted by reason, not guessed at)."""
    from breachwatch.ingest.pipeline import ingest_paths
    from breachwatch.store.db import connect

    with tempfile.TemporaryDirectory(prefix="bw-ledger-") as tmp:
        db = str(Path(tmp) / "scratch.duckdb")
        con = connect(db)
        try:
            result = ingest_paths(con, db, [str(p) for p in paths], anchor_path=str(Path(tmp) / "anchor"))
            for reason, n in result.quarantined.items():
                summary.unusable[f"quarantined: {reason}"] += n
            yield con
        finally:
            con.close()


def events_from_store(con: Any, now: float, leeway_s: int = 30,
                      summary: LoadSummary | None = None) -> Iterator[LedgerEvent]:
    """Ledger-relevant events from an open (read-only) store connection, oldest first.

    Expired issuances are counted, not read: on a store with months of logins they are nearly all of them.
    """
    cutoff = int((now - leeway_s) * 1_000_000)
    if summary is not None:
        expired = con.execute("SELECT count(*) FROM events WHERE kind = 'token_issued' "
                              "AND epoch_us(token_expires_at) <= ?", [cutoff]).fetchone()[0]
        summary.read += expired
        summary.issued += expired
        summary.expired_skipped += expired
    cur = con.execute(
        "SELECT kind, epoch_us(time), token_id, principal_id, key_id, epoch_us(token_issued_at), "
        "epoch_us(token_expires_at), attributes FROM events "
        "WHERE kind IN ('token_issued', 'token_revoked', 'key_retired', 'key_revoked') "
        "AND (token_expires_at IS NULL OR epoch_us(token_expires_at) > ?) ORDER BY time",
        [cutoff])
    while True:
        rows = cur.fetchmany(_BATCH)
        if not rows:
            return
        for kind, t, tok, sub, kid, iat, exp, attrs in rows:
            yield LedgerEvent(kind, t / 1e6, tok, sub, kid, None if iat is None else iat / 1e6,
                              None if exp is None else exp / 1e6, _attrs(attrs))
