"""Small DuckDB helpers shared by the scope modules."""
from __future__ import annotations

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
