"""Fixtures shared by every stage's tests."""
from __future__ import annotations

from pathlib import Path

import pytest

from breachwatch.store.db import connect
from event_rows import event, typed_table


@pytest.fixture
def store(tmp_path: Path):
    """A fresh store file, opened for writing; yields (connection, path)."""
    path = str(tmp_path / "store.duckdb")
    con = connect(path)
    yield con, path
    con.close()


@pytest.fixture
def make_event():
    return event


@pytest.fixture
def make_typed_table():
    return typed_table
