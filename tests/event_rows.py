"""Event records for tests, shared by every stage's tests (tests/conftest.py hands them out as fixtures;
a test module's own helpers import them from here, since `conftest` names several modules)."""
from __future__ import annotations

import sys
from pathlib import Path

import pyarrow as pa

from breachwatch.contract.event import ARROW_SCHEMA

BIN = Path(sys.executable).parent / "breachwatch"


def event(i: int, **over) -> dict:
    """A valid Contract 1 access event numbered i."""
    e = {"event_id": f"e{i}", "time": f"2025-04-14T02:{i // 60 % 60:02d}:{i % 60:02d}+09:00", "kind": "access",
         "principal_id": str(100000 + i), "principal_type": "customer", "token_id": f"t{i}", "key_id": "k-2019-07",
         "src_ip": f"203.0.113.{i % 250}", "src_country": "KR", "endpoint": "GET /api/me/profile",
         "status": 200, "bytes_out": 512, "subject_ids": [str(100000 + i)], "fields": ["name", "email"]}
    e.update(over)
    return e


def typed_table(rows: list[dict]) -> pa.Table:
    """`event` records as typed Contract 1 columns, as a Parquet file gives them (the time as its text)."""
    return pa.Table.from_pylist(rows, pa.schema([pa.field(k, pa.string()) if k == "time" else ARROW_SCHEMA.field(k)
                                                 for k in rows[0]]))
