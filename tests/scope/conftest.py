"""Scope test fixtures: a store holding the small retail history of scope_world.py."""
from __future__ import annotations

import pytest
from scope_world import build

from breachwatch.ingest.pipeline import ingest_records


@pytest.fixture
def world_store(store) -> tuple:
    """(connection, store path, World) with every event of the small history ingested."""
    con, path = store
    w = build()
    summary = ingest_records(con, w.events, "fixture", db_path=path)
    assert summary.loaded == len(w.events), summary.as_dict()
    return con, path, w
