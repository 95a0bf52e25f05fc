"""What a detector hands the engine: alert candidates, and the events behind them.

A candidate names its pattern with a `dedup_key` (e.g. "subj:ip:customer:203.0.113.7"):
while an alert for that key is live, a new candidate updates it instead of
raising another, which is what makes re-running detection idempotent and keeps
one campaign one alert. The events behind a candidate go to the temp table
`_cand_events` (detector, dedup_key, event_id, time), written by SQL.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Union

import duckdb

CAND_EVENTS = "_cand_events"


@dataclass
class AlertCandidate:
    detector: str
    rule: str
    dedup_key: str
    severity: str
    first_seen: datetime
    detected_at: datetime
    last_seen: datetime
    evidence: Union[str, Callable[[], str]]          # text, or how to write it (only needed for new alerts)
    etype: str | None = None
    ptype: str | None = None
    entity: str | None = None
    metrics: dict[str, Any] = field(default_factory=dict)
    entities: Union[dict[str, list[str]], Callable[[], dict[str, list[str]]]] = field(default_factory=dict)
    track_eks: list[int] = field(default_factory=list)
    held_reason: str | None = None
    finding: bool = False   # a hygiene finding: recorded, never opens an incident
    links: bool = True      # its principals, tokens and IPs may link it to other incidents (see counting.focused)
    attach_on_update: bool = True   # later crossings add their events (one actor); a crowd's alert is a snapshot

    def evidence_text(self) -> str:
        return self.evidence() if callable(self.evidence) else self.evidence

    def entity_lists(self) -> dict[str, list[str]]:
        return self.entities() if callable(self.entities) else self.entities


def reset_candidate_events(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(f"CREATE OR REPLACE TEMP TABLE {CAND_EVENTS} (detector VARCHAR, dedup_key VARCHAR, "
                "event_id VARCHAR, time TIMESTAMP)")


def add_candidate_events(con: duckdb.DuckDBPyConnection, detector: str, select_sql: str,
                         params: list[Any] | None = None) -> None:
    """Append (dedup_key, event_id, time) rows produced by `select_sql` for `detector`."""
    con.execute(f"INSERT INTO {CAND_EVENTS} SELECT '{detector}', k, e, t FROM ({select_sql}) x(k, e, t)",
                params or [])


_TOP_COLUMNS = {"principals": "principal_id", "tokens": "token_id", "keys": "key_id", "ips": "src_ip",
                "asns": "src_asn", "countries": "src_country", "fingerprints": "client_fingerprint",
                "user_agents": "user_agent"}


def _top_lists(limit: int) -> str:
    return ", ".join(f"list(DISTINCT {c}) FILTER (WHERE {c} IS NOT NULL)[1:{limit}]" for c in _TOP_COLUMNS.values())


def _as_lists(row: tuple) -> dict[str, list[str]]:
    return {k: sorted(v or []) for k, v in zip(_TOP_COLUMNS, row)}


def top_values(con: duckdb.DuckDBPyConnection, table: str, where: str, limit: int = 50,
               params: list[Any] | None = None) -> dict[str, list[str]]:
    """The most frequent principals, tokens, keys, IPs, ASNs, countries, fingerprints, user agents of some events."""
    row = con.execute(f"SELECT {_top_lists(limit)} FROM {table} WHERE {where}", params or []).fetchall()[0]
    return _as_lists(row)


def top_values_by(con: duckdb.DuckDBPyConnection, table: str, key: str, limit: int = 50) -> dict[Any, dict[str, list[str]]]:
    """`top_values` for every value of `key` in `table`, in one grouped query (many candidates at once)."""
    rows = con.execute(f"SELECT {key}, {_top_lists(limit)} FROM {table} GROUP BY {key}").fetchall()
    return {r[0]: _as_lists(r[1:]) for r in rows}
