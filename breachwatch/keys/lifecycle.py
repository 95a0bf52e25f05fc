"""Who left, and when: `principal_offboarded` events from the store, or an HR export.

HR CSV columns: a person id (`principal_id`, `employee_id` or `id`) and a
leaving date (`left_at`, `left_on`, `termination_date` or `end_date`); rows
without a leaving date are people still employed and are ignored.
"""
from __future__ import annotations

import csv
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from breachwatch.keys.inventory import InventoryError, parse_when

_ID_COLUMNS = ("principal_id", "employee_id", "id")
_LEFT_COLUMNS = ("left_at", "left_on", "termination_date", "end_date")


@dataclass(frozen=True)
class Departure:
    principal_id: str
    left_at: datetime
    source: str


def departures_from_hr_csv(path: str | Path) -> list[Departure]:
    p = Path(path)
    if not p.exists():
        raise InventoryError(f"{p}: HR file not found. Fix: pass the HR export with --hr.")
    with p.open(newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        cols = reader.fieldnames or []
        id_col = next((c for c in _ID_COLUMNS if c in cols), None)
        left_col = next((c for c in _LEFT_COLUMNS if c in cols), None)
        if id_col is None or left_col is None:
            raise InventoryError(f"{p}: needs a person id column ({' or '.join(_ID_COLUMNS)}) and a leaving date "
                                 f"column ({' or '.join(_LEFT_COLUMNS)}); found {cols}. Fix: rename the columns.")
        out = []
        for n, row in enumerate(reader, 2):
            when = parse_when(row.get(left_col), f"{p}: line {n} {left_col}")
            if when is not None and row.get(id_col):
                out.append(Departure(row[id_col].strip(), when, f"hr:{p.name}"))
    return out


def departures_from_store(con: Any) -> list[Departure]:
    rows = con.execute("SELECT principal_id, min(time) FROM events WHERE kind = 'principal_offboarded' "
                       "AND principal_id IS NOT NULL GROUP BY principal_id").fetchall()
    return [Departure(pid, t.replace(tzinfo=timezone.utc), "store") for pid, t in rows]


def earliest(departures: list[Departure]) -> dict[str, Departure]:
    """One departure per person: the earliest, since access should have ended then."""
    out: dict[str, Departure] = {}
    for d in departures:
        if d.principal_id not in out or d.left_at < out[d.principal_id].left_at:
            out[d.principal_id] = d
    return out
