"""The data map in the store: scan runs, per-table progress and findings.

Each table's findings replace that table's previous findings in one
transaction together with its progress row, so an interrupted scan loses at
most the table it was on and a resumed scan knows exactly where to go on.
"""
from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from typing import Any, Sequence

import duckdb

from breachwatch.discover.classify import ColumnFinding


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)


@dataclass
class Run:
    run_id: str
    source: str
    resumed: bool
    done_tables: frozenset[str]


def start_run(con: duckdb.DuckDBPyConnection, source: str, sample_size: int, *, fresh: bool = False) -> Run:
    """Resume the source's unfinished run (unless `fresh`), or start a new one."""
    if not fresh:
        row = con.execute("SELECT run_id FROM discover_runs WHERE source = ? AND status IN ('running', 'incomplete') "
                          "ORDER BY started_at DESC LIMIT 1", [source]).fetchone()
        if row:
            done = {r[0] for r in con.execute("SELECT table_name FROM discover_progress WHERE run_id = ? AND "
                                              "status = 'done'", [row[0]]).fetchall()}
            con.execute("UPDATE discover_runs SET status = 'running', finished_at = NULL WHERE run_id = ?", [row[0]])
            return Run(row[0], source, True, frozenset(done))
    # A fresh run supersedes any unfinished one of the same source.
    con.execute("UPDATE discover_runs SET status = 'abandoned', finished_at = ? WHERE source = ? AND "
                "status IN ('running', 'incomplete')", [_now(), source])
    run_id = uuid.uuid4().hex[:12]
    con.execute("INSERT INTO discover_runs (run_id, source, started_at, status, sample_size) VALUES (?, ?, ?, ?, ?)",
                [run_id, source, _now(), "running", sample_size])
    return Run(run_id, source, False, frozenset())


def record_table(con: duckdb.DuckDBPyConnection, run: Run, table: str, *, status: str, reason: str | None = None,
                 estimated_rows: int | None = None, sampled_rows: int = 0, sample_method: str | None = None,
                 columns_scanned: int = 0, findings: Sequence[ColumnFinding] = ()) -> None:
    now = _now()
    con.execute("BEGIN")
    try:
        if status == "done":
            con.execute("DELETE FROM datamap WHERE source = ? AND table_name = ?", [run.source, table])
            if findings:
                con.executemany(
                    "INSERT INTO datamap VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    [[run.source, table, f.column, f.entity, f.field, f.category, f.confidence, f.hits, f.sampled,
                      f.estimated_rows, f.signals, run.run_id, now] for f in findings])
        con.execute("DELETE FROM discover_progress WHERE run_id = ? AND table_name = ?", [run.run_id, table])
        con.execute("INSERT INTO discover_progress VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    [run.run_id, run.source, table, status, reason, estimated_rows, sampled_rows, sample_method,
                     columns_scanned, len(findings), now])
        con.execute("COMMIT")
    except Exception:
        con.execute("ROLLBACK")
        raise


def finish_run(con: duckdb.DuckDBPyConnection, run: Run, status: str, *, tables_total: int,
               message: str | None = None) -> None:
    counts = con.execute("SELECT count(*) FILTER (status = 'done'), count(*) FILTER (status = 'skipped'), "
                         "coalesce(sum(sampled_rows), 0) FROM discover_progress WHERE run_id = ?",
                         [run.run_id]).fetchone()
    con.execute("UPDATE discover_runs SET status = ?, finished_at = ?, tables_total = ?, tables_done = ?, "
                "tables_skipped = ?, rows_sampled = ?, message = ? WHERE run_id = ?",
                [status, _now(), tables_total, counts[0], counts[1], counts[2], message, run.run_id])


def record_failed_source(con: duckdb.DuckDBPyConnection, source: str, message: str) -> str:
    run_id = uuid.uuid4().hex[:12]
    now = _now()
    con.execute("INSERT INTO discover_runs (run_id, source, started_at, finished_at, status, message) "
                "VALUES (?, ?, ?, ?, 'failed', ?)", [run_id, source, now, now, message])
    return run_id


_COLUMNS = ("source", "table_name", "column_name", "entity", "field", "category", "confidence", "hits", "sampled",
            "estimated_rows", "signals", "run_id", "scanned_at")


def list_datamap(con: duckdb.DuckDBPyConnection, *, source: str | None = None,
                 min_confidence: float = 0.0) -> list[dict[str, Any]]:
    """The data map, most certain first within each table."""
    where, args = ["confidence >= ?"], [min_confidence]
    if source:
        where.append("source = ?")
        args.append(source)
    rows = con.execute(f"SELECT {', '.join(_COLUMNS)} FROM datamap WHERE {' AND '.join(where)} "
                       "ORDER BY source, table_name, column_name, confidence DESC", args).fetchall()
    return [dict(zip(_COLUMNS, r)) for r in rows]


def list_runs(con: duckdb.DuckDBPyConnection, limit: int = 20) -> list[dict[str, Any]]:
    cols = ("run_id", "source", "started_at", "finished_at", "status", "tables_total", "tables_done",
            "tables_skipped", "rows_sampled", "message")
    rows = con.execute(f"SELECT {', '.join(cols)} FROM discover_runs ORDER BY started_at DESC LIMIT ?",
                       [limit]).fetchall()
    return [dict(zip(cols, r)) for r in rows]


def skipped_tables(con: duckdb.DuckDBPyConnection, run_id: str) -> list[dict[str, Any]]:
    rows = con.execute("SELECT table_name, reason FROM discover_progress WHERE run_id = ? AND status = 'skipped' "
                       "ORDER BY table_name", [run_id]).fetchall()
    return [{"table": t, "reason": r} for t, r in rows]


# A scan made elsewhere (`discover --server`: on the machine that reaches the databases, into a working store
# of its own) is handed to the store's one writer as one document per run: the run, its progress rows and
# the findings of the tables it finished.
_RUN_COLS = ("run_id", "source", "started_at", "finished_at", "status", "sample_size", "tables_total",
             "tables_done", "tables_skipped", "rows_sampled", "message")
_PROGRESS_COLS = ("run_id", "source", "table_name", "status", "reason", "estimated_rows", "sampled_rows",
                  "sample_method", "columns_scanned", "findings", "finished_at")


def _rows(con: duckdb.DuckDBPyConnection, cols: tuple[str, ...], table: str, where: str,
          args: list[Any]) -> list[dict[str, Any]]:
    out = con.execute(f"SELECT {', '.join(cols)} FROM {table} WHERE {where}", args).fetchall()
    return [{k: (v.isoformat() if isinstance(v, dt.datetime) else v) for k, v in zip(cols, r)} for r in out]


def export_run(con: duckdb.DuckDBPyConnection, run_id: str) -> dict[str, Any]:
    """One run of this store's data map as a document `import_run` applies to another store."""
    runs = _rows(con, _RUN_COLS, "discover_runs", "run_id = ?", [run_id])
    if not runs:
        raise ValueError(f"scan run '{run_id}' is not in this store.")
    return {"run": runs[0], "progress": _rows(con, _PROGRESS_COLS, "discover_progress", "run_id = ?", [run_id]),
            "findings": _rows(con, _COLUMNS, "datamap", "run_id = ?", [run_id])}


def import_run(con: duckdb.DuckDBPyConnection, doc: dict[str, Any]) -> dict[str, int]:
    """Apply an `export_run` document: the run and its progress replace earlier copies of the same run, and
    each table it finished has its findings replaced, as `record_table` replaces them; one transaction."""
    run = doc["run"]
    rid, source = run["run_id"], run["source"]
    if any(r["run_id"] != rid or r["source"] != source for r in [*doc["progress"], *doc["findings"]]):
        raise ValueError(f"scan run '{rid}': its progress or findings name another run or source. Fix: send the "
                         "document as export_run wrote it.")
    done = sorted({p["table_name"] for p in doc["progress"] if p["status"] == "done"})
    if any(f["table_name"] not in done for f in doc["findings"]):
        raise ValueError(f"scan run '{rid}': findings for a table it did not finish. Fix: send the document as "
                         "export_run wrote it.")
    def value(col: str, v: Any) -> Any:  # times arrive as RFC 3339 text; the store keeps naive UTC
        if v is not None and col in ("started_at", "finished_at", "scanned_at"):
            try:
                t = dt.datetime.fromisoformat(str(v).replace("Z", "+00:00"))
                return t.astimezone(dt.timezone.utc).replace(tzinfo=None) if t.tzinfo else t
            except (ValueError, OverflowError):
                raise ValueError(f"scan run '{rid}': {col} {v!r} is not a time the store keeps. Fix: send "
                                 "RFC 3339 times, as export_run writes them.") from None
        return v
    con.execute("BEGIN")
    try:
        con.execute("DELETE FROM discover_runs WHERE run_id = ?", [rid])
        con.execute("DELETE FROM discover_progress WHERE run_id = ?", [rid])
        if done:
            con.execute("DELETE FROM datamap WHERE source = ? AND list_contains(?, table_name)", [source, done])
        for table, cols, rows in (("discover_runs", _RUN_COLS, [run]), ("discover_progress", _PROGRESS_COLS,
                                                                         doc["progress"]),
                                  ("datamap", _COLUMNS, doc["findings"])):
            if rows:
                con.executemany(f"INSERT INTO {table} ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})",
                                [[value(c, r.get(c)) for c in cols] for r in rows])
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    return {"tables": len(done), "findings": len(doc["findings"])}
