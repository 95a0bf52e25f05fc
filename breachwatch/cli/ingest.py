"""`breachwatch ingest PATH... | -`: load events into the store."""
from __future__ import annotations

from typing import Optional

import typer
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn, TransferSpeedColumn
from rich.table import Table

from breachwatch.cli.common import (EXIT_FINDING, DbOption, JsonOption, db_path, err_console, handle_errors,
                                    out_console, print_json, show_progress)
from breachwatch.cli.main import app
from breachwatch.contract.catalog import load_catalog
from breachwatch.ingest.normalize import parse_zone
from breachwatch.ingest.pipeline import DEFAULT_BATCH, ROW_GROUP_ROWS, expand_paths, ingest_sources
from breachwatch.ingest.readers import DEFAULT_MAX_LINE, FORMATS
from breachwatch.store.db import connect


@app.command()
@handle_errors
def ingest(
    paths: list[str] = typer.Argument(..., help="Files, globs or directories; '-' reads standard input."),
    db: Optional[str] = DbOption,
    fmt: Optional[str] = typer.Option(None, "--format", help=f"One of {', '.join(FORMATS)}; default: from the "
                                      "file name (stdin: ndjson). Gzip is detected by content."),
    catalog: Optional[str] = typer.Option(None, "--catalog", envvar="BREACHWATCH_CATALOG",
                                          help="Catalog YAML used to complete plain access logs "
                                               "(default: ./breachwatch.yaml if present, else the built-in one)."),
    source_tz: Optional[str] = typer.Option(None, "--source-tz", help="Zone for timestamps written without an "
                                            "offset (e.g. Asia/Seoul); without it such records are quarantined."),
    batch_size: int = typer.Option(DEFAULT_BATCH, "--batch-size", min=1,
                                   help=f"Records per atomic batch (a multiple of {ROW_GROUP_ROWS:,} inserts "
                                        "fastest)."),
    max_line: int = typer.Option(DEFAULT_MAX_LINE, "--max-line-bytes", min=64,
                                 help="Longer lines are quarantined as oversized."),
    anchor: Optional[str] = typer.Option(None, "--anchor", envvar="BREACHWATCH_ANCHOR",
                                         help="Anchor file for chain heads (default: STORE.anchor)."),
    strict: bool = typer.Option(False, "--strict", help="Exit 1 when any record was quarantined."),
    server: Optional[str] = typer.Option(None, "--server", envvar="BREACHWATCH_SERVER",
                                         help="Send the records to a running 'breachwatch serve' (the store's one "
                                              "writer) instead of opening the store; API key from BREACHWATCH_API_KEY."),
    as_json: bool = JsonOption,
) -> None:
    """Load NDJSON, CSV or Parquet events (gzip or not) into the store.

    Bad records go to quarantine with the reason; re-ingesting the same input adds nothing.
    """
    if fmt is not None and fmt not in FORMATS:
        raise ValueError(f"--format {fmt}: unknown format. Fix: use one of {', '.join(FORMATS)}.")
    path = db_path(db)
    cat = load_catalog(_default_catalog(catalog))
    sources, skipped = expand_paths(paths, fmt)
    if server:
        from breachwatch.server.client import ServerClient
        print_json(ServerClient(server).ingest_paths([s.name for s in sources]))
        return
    con = connect(path)
    try:
        if show_progress() and not as_json:
            with Progress(TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TransferSpeedColumn(),
                          TimeRemainingColumn(), console=err_console, transient=True) as bar:
                tasks: dict[str, int] = {}

                def progress(name: str, done: int, total: int | None) -> None:
                    if name not in tasks:
                        tasks[name] = bar.add_task(name[-40:], total=total)
                    bar.update(tasks[name], completed=done)

                summary = ingest_sources(con, path, sources, catalog=cat, source_tz=parse_zone(source_tz),
                                         batch_size=batch_size, max_line=max_line, anchor_path=anchor,
                                         progress=progress)
        else:
            summary = ingest_sources(con, path, sources, catalog=cat, source_tz=parse_zone(source_tz),
                                     batch_size=batch_size, max_line=max_line, anchor_path=anchor)
    finally:
        con.close()
    summary.skipped_files = skipped
    result = {"store": path, **summary.as_dict()}
    if as_json:
        print_json(result)
    else:
        _print_summary(result)
    if strict and summary.quarantined_total:
        raise typer.Exit(EXIT_FINDING)


def _default_catalog(explicit: str | None) -> str | None:
    import os
    if explicit:
        return explicit
    return "breachwatch.yaml" if os.path.exists("breachwatch.yaml") else None


def _print_summary(r: dict) -> None:
    t = Table(title=f"ingest into {r['store']}", show_header=False)
    t.add_row("sources", f"{r['sources']:,}")
    t.add_row("records read", f"{r['records']:,}")
    t.add_row("loaded", f"{r['loaded']:,}")
    t.add_row("duplicates (already stored)", f"{r['duplicates']:,}")
    t.add_row("quarantined", f"{r['quarantined']:,}")
    for reason, n in r["quarantined_by_reason"].items():
        t.add_row(f"  {reason}", f"{n:,}")
    t.add_row("chain links added", f"{r['batches']:,}")
    if r["uncatalogued_access_events"]:
        t.add_row("access events on routes missing from the catalog", f"{r['uncatalogued_access_events']:,}")
    if r["skipped_files"]:
        t.add_row("files skipped (unknown format)", f"{len(r['skipped_files']):,}")
    out_console.print(t)
