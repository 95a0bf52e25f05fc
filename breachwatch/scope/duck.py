"""Small DuckDB helpers shared by the scope modules."""
from __future__ import annotations

from datetime import datetime

import duckdb
import pyarrow as pa


def temp_table_from_arrow(con: duckdb.DuckDBPyConnection, name: str, table: pa.Table) -> None:
    """Create (or replace) temp table `name` holding `table`."""
    # DuckDB refuses register() while an earlier fetchone() result is still open;
    # a completed statement closes it.
    con.execute("SELECT 1").fetchall()
    view = f"_{name}_arrow_in"
    con.register(view, table)
    try:
        con.execute(f"CREATE OR REPLACE TEMP TABLE {name} AS SELECT * FROM {view}")
    finally:
        con.unregister(view)


def time_between(lo: datetime, hi: datetime) -> str:
    """`e.time BETWEEN lo AND hi` with the bounds as constants: DuckDB skips the row groups outside
    them by their min/max, which it cannot do for a bound that comes from a subquery."""
    return f"e.time BETWEEN TIMESTAMP '{lo.isoformat(sep=' ')}' AND TIMESTAMP '{hi.isoformat(sep=' ')}'"
