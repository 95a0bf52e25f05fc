"""`breachwatch discover SOURCE...` and `breachwatch deidentify INPUT --out OUTPUT`.

discover: scan databases (postgresql://, mysql://, mariadb://, sqlite:///),
files and folders (CSV, Parquet, NDJSON) and, with --store, breachwatch's own
event store for personal data, into the store's data map. --list shows the
data map, --suggest-catalog proposes catalog fields for endpoints.
Exit codes: 0 done (findings are results, not failures; unreachable sources
and unreadable tables are reported and skipped), 2 bad usage, or no source
could be scanned at all.

deidentify: mask, redact, pseudonymise (HMAC) or tokenise (format-preserving)
personal data in CSV, NDJSON, Parquet or text files, or from stdin to stdout.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Optional

import duckdb
import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from breachwatch.cli.common import (EXIT_USAGE, DbOption, JsonOption, ServerOption, db_path, err_console, fail,
                                    handle_errors, out_console, print_json, remote, show_progress)
from breachwatch.cli.main import app
from breachwatch.contract.catalog import load_catalog
from breachwatch.discover import datamap
from breachwatch.discover.classify import REPORT_CONFIDENCE
from breachwatch.discover.deidentify import Deidentifier, detect_format, load_key, run_file, transformer
from breachwatch.discover.deidentify.keys import DEFAULT_KEY_ENV
from breachwatch.discover.engine import Analyzer
from breachwatch.discover.recognizers.registry import load_recognizers
from breachwatch.discover.scan import DEFAULT_SAMPLE, Budget, ProgressFn, SourceReport, scan_event_store, scan_sources
from breachwatch.discover.suggest import as_catalog_yaml, suggest_catalog
from breachwatch.store.db import connect


WORK_STORE = "breachwatch-discover.duckdb"  # a scan sent to a server is recorded here first (it resumes here)


@app.command()
@handle_errors
def discover(
    sources: list[str] = typer.Argument(None, help="postgresql://…, mysql://… (MariaDB too), sqlite:///…, "
                                                   "or CSV/Parquet/NDJSON files and folders."),
    db: Optional[str] = DbOption,
    store: bool = typer.Option(False, "--store", help="Also scan the store's own events (URLs, user agents, "
                                                      "attributes) for personal data that leaked into logs."),
    sample: int = typer.Option(DEFAULT_SAMPLE, "--sample", min=1, help="Rows sampled per table."),
    max_seconds: Optional[float] = typer.Option(None, "--max-seconds", min=0.1,
                                                help="Stop after this long; the next run resumes."),
    max_rows: Optional[int] = typer.Option(None, "--max-rows", min=1,
                                           help="Stop after sampling this many rows in all; the next run resumes."),
    tables: list[str] = typer.Option([], "--table", help="Only tables matching this glob (schema.table or "
                                                         "table); repeatable."),
    fresh: bool = typer.Option(False, "--fresh", help="Start over instead of resuming an unfinished scan."),
    min_confidence: float = typer.Option(REPORT_CONFIDENCE, "--min-confidence", min=0.0, max=1.0,
                                         help="Report findings at least this certain."),
    recognizers: Optional[str] = typer.Option(None, "--recognizers", help="YAML file that disables built-in "
                                                                          "recognizers or adds your own."),
    list_map: bool = typer.Option(False, "--list", help="Show the data map kept in the store."),
    suggest: bool = typer.Option(False, "--suggest-catalog", help="Propose catalog fields for endpoints whose "
                                                                  "responses or tables were scanned."),
    catalog: Optional[str] = typer.Option(None, "--catalog", envvar="BREACHWATCH_CATALOG",
                                          help="Catalog to compare with (default: ./breachwatch.yaml if present, "
                                               "else the built-in one)."),
    server: Optional[str] = ServerOption,
    as_json: bool = JsonOption,
) -> None:
    """Find personal data in databases, files and the event store; keep the data map.

    With --server, the scan is recorded in --db (default ./breachwatch-discover.duckdb, where an unfinished
    scan resumes) and each run is then sent to the running server, which keeps the data map; --store is
    then scanned by the server itself, the only process that may read its events."""
    sources = sources or []
    if not sources and not store and not list_map and not suggest:
        fail("nothing to do. Fix: give a source (database URL, file or folder), --store, --list or "
             "--suggest-catalog.")
    path = db or WORK_STORE if server else db_path(db)
    con = connect(path)
    try:
        reports: list[SourceReport] = []
        local_store = store and not server
        if sources or local_store:
            reports = _scan(con, path, sources, local_store, Budget(sample, max_rows, max_seconds),
                            Analyzer(load_recognizers(recognizers)), tables, fresh, min_confidence, as_json)
        uploads = [remote(server, "POST", "/v1/datamap/runs", json=datamap.export_run(con, r.run_id))
                   for r in reports if r.run_id] if server else []
        if server and store:
            # Only the server may read the events it holds: it scans them itself, into its data map.
            reports.append(SourceReport.from_dict(remote(server, "POST", "/v1/datamap/store-scan", json={
                "sample": sample, "max_rows": max_rows, "max_seconds": max_seconds, "fresh": fresh,
                "min_confidence": min_confidence})))
        if not (list_map or suggest):
            rows = []
        elif server:
            rows = [r for r in remote(server, "GET", "/v1/datamap") if r["confidence"] >= min_confidence]
        else:
            rows = datamap.list_datamap(con, min_confidence=min_confidence)
    finally:
        con.close()
    result: dict[str, object] = {"store": server or path}
    if server:
        result["scan_store"] = path
        result["sent"] = uploads
    if reports:
        result["scans"] = [r.to_dict() for r in reports]
    if list_map:
        result["datamap"] = rows
    suggestion = None
    if suggest:
        suggestion = suggest_catalog(rows, load_catalog(_catalog_path(catalog)), min_confidence=min_confidence)
        result["suggestion"] = suggestion
    if as_json:
        print_json(result)
    else:
        for r in reports:
            _print_report(r)
        if list_map:
            _print_datamap(rows)
        if suggestion is not None:
            out_console.print(as_catalog_yaml(suggestion), highlight=False, markup=False)
    if reports and all(r.status == "failed" for r in reports):
        raise typer.Exit(EXIT_USAGE)


def _catalog_path(explicit: str | None) -> str | None:
    if explicit:
        return explicit
    return "breachwatch.yaml" if os.path.exists("breachwatch.yaml") else None


def _scan(con: duckdb.DuckDBPyConnection, path: str, sources: list[str], store: bool, budget: Budget,
          analyzer: Analyzer, tables: list[str], fresh: bool, threshold: float, quiet: bool) -> list[SourceReport]:
    def run(progress: ProgressFn | None = None) -> list[SourceReport]:
        reports = scan_sources(con, sources, budget=budget, analyzer=analyzer, tables=tables, fresh=fresh,
                               progress=progress, threshold=threshold)
        if store:
            reports.append(scan_event_store(con, path, budget=budget, analyzer=analyzer, fresh=fresh,
                                            progress=progress, threshold=threshold))
        return reports

    if not show_progress() or quiet:
        return run()
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=err_console, transient=True) as bar:
        tasks: dict[str, int] = {}

        def progress(source: str, table: str, index: int, total: int) -> None:
            if source not in tasks:
                tasks[source] = bar.add_task(source[-50:], total=total)
            bar.update(tasks[source], completed=index, description=f"{source[-30:]} {table[-30:]}")

        return run(progress)


def _print_report(r: SourceReport) -> None:
    title = f"{r.source}: {r.status}" + (" (resumed)" if r.resumed else "")
    if r.status == "failed":
        err_console.print(f"[bold red]failed:[/] {r.message}", highlight=False)
        return
    t = Table(title=title, title_justify="left")
    for col in ("table", "column", "personal data", "confidence", "hits / sampled", "est. rows", "evidence"):
        t.add_column(col)
    skipped = []
    for tr in r.tables:
        if tr.status == "skipped":
            skipped.append(tr)
        for f in tr.findings:
            t.add_row(tr.table, f.column, f"{f.entity} → {f.field}", f"{f.confidence:.2f}", f"{f.hits}/{f.sampled}",
                      f"{f.estimated_rows:,}", "; ".join(f.signals))
    out_console.print(t)
    done = sum(1 for tr in r.tables if tr.status in ("done", "resumed"))
    out_console.print(f"{done} table(s) scanned, {len(skipped)} skipped", highlight=False)
    for tr in skipped:
        err_console.print(f"  [yellow]skipped[/] {tr.table}: {tr.reason}", highlight=False)
    if r.message:
        err_console.print(f"  {r.message}", highlight=False)


def _print_datamap(rows: list[dict]) -> None:
    t = Table(title="data map", title_justify="left")
    for col in ("source", "table", "column", "entity", "field", "category", "confidence", "hits/sampled",
                "est. rows", "scanned"):
        t.add_column(col)
    for r in rows:
        t.add_row(r["source"], r["table_name"], r["column_name"], r["entity"], r["field"], r["category"],
                  f"{r['confidence']:.2f}", f"{r['hits']}/{r['sampled']}", f"{r['estimated_rows'] or 0:,}",
                  str(r["scanned_at"])[:19])
    out_console.print(t)
    if not rows:
        out_console.print("The data map is empty. Run 'breachwatch discover SOURCE' first.")


@app.command()
@handle_errors
def deidentify(
    input_path: str = typer.Argument(..., metavar="INPUT", help="CSV, NDJSON, Parquet or text file; '-' for stdin."),
    out: str = typer.Option(..., "--out", help="Output file; '-' for stdout."),
    method: str = typer.Option("mask", "--method", help="mask, redact, pseudonymize (HMAC) or fpe "
                                                        "(format-preserving, reversible with the key)."),
    key_env: Optional[str] = typer.Option(None, "--key-env", help=f"Environment variable holding the key "
                                                                  f"(default {DEFAULT_KEY_ENV})."),
    key_file: Optional[str] = typer.Option(None, "--key-file", help="File holding the key."),
    columns: Optional[str] = typer.Option(None, "--columns", help="Comma-separated columns to replace whole; "
                                                                  "default: find personal data in every value."),
    fmt: Optional[str] = typer.Option(None, "--format", help="text, ndjson, csv or parquet (default: from the "
                                                             "file name; stdin: text)."),
    reverse: bool = typer.Option(False, "--reverse", help="Undo --method fpe with the same key."),
    min_score: float = typer.Option(0.5, "--min-score", min=0.0, max=1.0, help="Replace spans at least this "
                                                                               "certain."),
    recognizers: Optional[str] = typer.Option(None, "--recognizers", help="Recognizer YAML (see discover)."),
    as_json: bool = JsonOption,
) -> None:
    """Mask, redact, pseudonymise or tokenise personal data in files and streams."""
    if input_path != "-" and out != "-" and Path(input_path).resolve() == Path(out).resolve():
        fail(f"--out {out} is the input file. Fix: write to another file.")
    key = load_key(env=key_env, file=key_file)
    deid = Deidentifier(transformer(method, key, reverse=reverse),
                        analyzer=Analyzer(load_recognizers(recognizers), min_score=min_score),
                        columns=[c.strip() for c in (columns or "").split(",") if c.strip()])
    fmt_used = detect_format(input_path, fmt)
    replaced = run_file(deid, input_path, out, fmt_used)
    summary = {"input": input_path, "output": out, "format": fmt_used, "method": method, "reverse": reverse,
               "values_replaced": replaced}
    if as_json and out != "-":
        print_json(summary)
    else:
        err_console.print(f"{replaced:,} value(s) {'restored' if reverse else 'replaced'} ({method}) → {out}",
                          highlight=False)
