"""Shared helpers for the discovery tests (imported by name: pytest puts this folder on sys.path)."""
from __future__ import annotations

import uuid

POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/test"
MARIADB = dict(host="127.0.0.1", port=3306, user="root", password="", database="test")
CLOSED_PORT = 1  # nothing listens on port 1 here: connections are refused at once


def unique(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:10]}"


def findings_by_column(report) -> dict[tuple[str, str], set[str]]:
    """(table, column) -> entities found, from a SourceReport."""
    out: dict[tuple[str, str], set[str]] = {}
    for t in report.tables:
        for f in t.findings:
            out.setdefault((t.table, f.column), set()).add(f.entity)
    return out
