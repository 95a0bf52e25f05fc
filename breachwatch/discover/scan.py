"""Running a scan: sources, tables, columns, budgets, resumption and the report.

A scan is bounded three ways: `sample` rows per table, `max_rows` rows in
all, `max_seconds` of wall-clock time (each query is also given only the time
that is left). When a budget runs out the run is marked incomplete and the
next scan of the same source resumes after the last finished table. A source
that cannot be reached, or a table that cannot be read, is reported and
skipped, and the scan goes on.
"""
from __future__ import annotations

import fnmatch
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

import duckdb

from breachwatch.discover import datamap
from breachwatch.discover.classify import ColumnFinding, classify_column
from breachwatch.discover.engine import Analyzer
from breachwatch.discover.scanners import Source, SourceError, Table, TableError, open_source

DEFAULT_SAMPLE = 10_000
TABLE_TIMEOUT_CAP_S = 120.0

ProgressFn = Callable[[str, str, int, int], None]   # (source, table, index, total)


@dataclass
class Budget:
    sample: int = DEFAULT_SAMPLE
    max_rows: int | None = None
    max_seconds: float | None = None
    started: float = field(default_factory=time.monotonic)
    rows_used: int = 0

    def seconds_left(self) -> float:
        if self.max_seconds is None:
            return TABLE_TIMEOUT_CAP_S
        return self.max_seconds - (time.monotonic() - self.started)

    def rows_for_next_table(self) -> int:
        if self.max_rows is None:
            return self.sample
        return max(0, min(self.sample, self.max_rows - self.rows_used))

    def exhausted(self) -> str | None:
        if self.max_seconds is not None and self.seconds_left() <= 0:
            return f"time budget of {self.max_seconds:g}s reached"
        if self.max_rows is not None and self.rows_used >= self.max_rows:
            return f"row budget of {self.max_rows} reached"
        return None


@dataclass
class TableResult:
    table: str
    status: str                     # done, skipped, resumed (done in an earlier invocation of this run)
    reason: str | None = None
    estimated_rows: int | None = None
    sampled_rows: int = 0
    sample_method: str | None = None
    findings: list[ColumnFinding] = field(default_factory=list)


@dataclass
class SourceReport:
    source: str
    status: str                     # complete, incomplete, failed
    run_id: str | None = None
    resumed: bool = False
    message: str | None = None
    tables: list[TableResult] = field(default_factory=list)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "SourceReport":
        """The report `to_dict` made (a server's answer to `discover --store --server`)."""
        tables = [TableResult(**{**t, "findings": [ColumnFinding(**f) for f in t["findings"]]}) for t in d["tables"]]
        return cls(source=d["source"], status=d["status"], run_id=d.get("run_id"), resumed=d.get("resumed", False),
                   message=d.get("message"), tables=tables)

    def to_dict(self) -> dict[str, object]:
        return {
            "source": self.source, "status": self.status, "run_id": self.run_id, "resumed": self.resumed,
            "message": self.message,
            "tables": [{"table": t.table, "status": t.status, "reason": t.reason,
                        "estimated_rows": t.estimated_rows, "sampled_rows": t.sampled_rows,
                        "sample_method": t.sample_method, "findings": [f.to_dict() for f in t.findings]}
                       for t in self.tables],
        }


def scan_sources(store: duckdb.DuckDBPyConnection, specs: Iterable[str], *, budget: Budget | None = None,
                 analyzer: Analyzer | None = None, tables: Iterable[str] = (), fresh: bool = False,
                 progress: ProgressFn | None = None, threshold: float | None = None,
                 opener: Callable[[str], Source] = open_source) -> list[SourceReport]:
    """Scan each source in turn into the store's data map; never stops at a bad source."""
    budget = budget or Budget()
    analyzer = analyzer or Analyzer()
    patterns = tuple(tables)
    reports = []
    for spec in specs:
        if budget.exhausted():
            reports.append(SourceReport(source=spec, status="incomplete", message=f"not started: {budget.exhausted()}"))
            continue
        try:
            source = opener(spec)
        except SourceError as e:
            label = str(e).split(": ", 1)[0]
            datamap.record_failed_source(store, label, str(e))
            reports.append(SourceReport(source=label, status="failed", message=str(e)))
            continue
        try:
            reports.append(scan_source(store, source, budget=budget, analyzer=analyzer, tables=patterns,
                                       fresh=fresh, progress=progress, threshold=threshold))
        finally:
            source.close()
    return reports


def scan_event_store(store: duckdb.DuckDBPyConnection, path: str, *, budget: Budget, analyzer: Analyzer,
                     fresh: bool = False, progress: ProgressFn | None = None,
                     threshold: float | None = None) -> SourceReport:
    """Scan the store's own events (`discover --store`, locally or in the server that holds it) into its data
    map, as the source `store:<absolute path>` so both ways resume and replace the same run."""
    from breachwatch.discover.scanners.eventstore import EventStoreSource
    label = f"store:{Path(path).resolve()}"
    return scan_source(store, EventStoreSource(store, label), budget=budget, analyzer=analyzer, fresh=fresh,
                       progress=progress, threshold=threshold)


def scan_source(store: duckdb.DuckDBPyConnection, source: Source, *, budget: Budget, analyzer: Analyzer,
                tables: tuple[str, ...] = (), fresh: bool = False, progress: ProgressFn | None = None,
                threshold: float | None = None) -> SourceReport:
    report = SourceReport(source=source.label, status="running")
    try:
        listed = source.tables()
    except SourceError as e:
        report.status, report.message = "failed", str(e)
        datamap.record_failed_source(store, source.label, str(e))
        return report
    if tables:
        listed = [t for t in listed if any(fnmatch.fnmatchcase(t.name, p) or
                                           fnmatch.fnmatchcase(t.name.split(".")[-1], p) for p in tables)]
    run = datamap.start_run(store, source.label, budget.sample, fresh=fresh)
    report.run_id, report.resumed = run.run_id, run.resumed
    stopped = None
    try:
        for i, table in enumerate(listed):
            if progress:
                progress(source.label, table.name, i, len(listed))
            if table.name in run.done_tables:
                report.tables.append(TableResult(table.name, "resumed"))
                continue
            stopped = budget.exhausted()
            if stopped:
                break
            report.tables.append(_scan_table(store, source, run, table, budget, analyzer, threshold))
    except KeyboardInterrupt:
        datamap.finish_run(store, run, "incomplete", tables_total=len(listed), message="interrupted")
        raise
    report.status = "incomplete" if stopped else "complete"
    report.message = f"{stopped}; run the same command again to resume" if stopped else None
    datamap.finish_run(store, run, report.status, tables_total=len(listed), message=report.message)
    return report


def _scan_table(store: duckdb.DuckDBPyConnection, source: Source, run: datamap.Run, table: Table, budget: Budget,
                analyzer: Analyzer, threshold: float | None) -> TableResult:
    if table.note:
        datamap.record_table(store, run, table.name, status="skipped", reason=table.note,
                             estimated_rows=table.estimated_rows)
        return TableResult(table.name, "skipped", table.note, table.estimated_rows)
    rows = budget.rows_for_next_table()
    try:
        sample = source.sample(table, rows, max(0.5, min(budget.seconds_left(), TABLE_TIMEOUT_CAP_S)))
    except TableError as e:
        datamap.record_table(store, run, table.name, status="skipped", reason=str(e),
                             estimated_rows=table.estimated_rows)
        return TableResult(table.name, "skipped", str(e), table.estimated_rows)
    budget.rows_used += len(sample.rows)
    est = len(sample.rows) if sample.method == "all rows" or table.estimated_rows is None else table.estimated_rows
    findings: list[ColumnFinding] = []
    kwargs = {} if threshold is None else {"threshold": threshold}
    for index, column in enumerate(sample.columns):
        findings.extend(classify_column(analyzer, column, sample.values(index), table_rows=est, **kwargs))
    for column in table.columns:
        if not column.scannable:  # binary or numeric: only its name can speak (an encrypted jumin_no)
            findings.extend(classify_column(analyzer, column.name, [], table_rows=est, **kwargs))
    datamap.record_table(store, run, table.name, status="done", estimated_rows=est, sampled_rows=len(sample.rows),
                         sample_method=sample.method, columns_scanned=len(sample.columns), findings=findings)
    return TableResult(table.name, "done", None, est, len(sample.rows), sample.method, findings)
