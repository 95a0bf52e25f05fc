"""`breachwatch demo`: the whole story on the built-in retail simulator, end to end."""
from __future__ import annotations

import time
from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from breachwatch.cli.common import JsonOption, err_console, handle_errors, out_console, print_json
from breachwatch.cli.main import app
from breachwatch.contract.catalog import load_catalog
from breachwatch.ingest.pipeline import ingest_paths
from breachwatch.simulate import SimConfig, simulate
from breachwatch.store.db import connect
from breachwatch.store.summary import store_summary


@app.command()
@handle_errors
def demo(
    out: str = typer.Option("demo-out", "--out", help="Directory for the simulated logs and the demo store."),
    customers: int = typer.Option(20_000, "--customers", min=100, help="Simulated members."),
    days: float = typer.Option(1.0, "--days", help="Simulated days after the warm-up."),
    seed: int = typer.Option(7, "--seed"),
    as_json: bool = JsonOption,
) -> None:
    """Simulate a retailer with breaches, ingest its logs, and summarise what the store now holds.

    Writes DIR/events.ndjson.gz, DIR/truth.json and a fresh store DIR/breachwatch.duckdb.
    """
    outdir = Path(out)
    db = outdir / "breachwatch.duckdb"
    for p in (db, Path(f"{db}.wal"), Path(f"{db}.anchor")):
        p.unlink(missing_ok=True)  # the demo always starts from an empty store of its own
    say = (lambda msg: None) if as_json else (lambda msg: err_console.print(msg, highlight=False))
    t0 = time.perf_counter()
    say(f"1/2 simulating {customers:,} customers for {days:g} day(s) after a 1-day warm-up ...")
    sim = simulate(SimConfig(customers=customers, days=days, warmup_days=1.0, seed=seed))
    written = sim.write(outdir, "ndjson.gz", overwrite=True)
    t1 = time.perf_counter()
    say(f"    {written['events']:,} events in {t1 - t0:.1f} s -> {outdir}")
    say("2/2 ingesting them into a new store (validated, deduplicated, hash-chained) ...")
    con = connect(db)
    try:
        events_file = next(f for f in written["files"] if "events" in Path(f).name)
        ingested = ingest_paths(con, str(db), [str(outdir / Path(events_file).name)], catalog=load_catalog())
        summary = store_summary(con)
    finally:
        con.close()
    t2 = time.perf_counter()
    result = {"store": str(db), "simulated": {"events": written["events"], "scenarios": written["scenarios"]},
              "ingest": ingested.as_dict(), "store_summary": summary,
              "seconds": {"simulate": round(t1 - t0, 1), "ingest": round(t2 - t1, 1)}}
    if as_json:
        print_json(result)
        return
    _print(result)


def _table(title: str, rows: list[list], headers: tuple[str, str]) -> Table:
    t = Table(title=title, title_justify="left")
    t.add_column(headers[0])
    t.add_column(headers[1], justify="right")
    for name, n in rows:
        t.add_row(str(name), f"{n:,}")
    return t


def _print(r: dict) -> None:
    s, ing = r["store_summary"], r["ingest"]
    out_console.print(f"\n[bold]Store[/] {r['store']}: {s['events']:,} events from {s['first_event']} to "
                      f"{s['last_event']} UTC, {s['chain_links']} hash-chained batches", highlight=False)
    out_console.print(f"ingest: {ing['loaded']:,} loaded, {ing['duplicates']:,} duplicates, "
                      f"{ing['quarantined']:,} quarantined in {r['seconds']['ingest']} s", highlight=False)
    out_console.print(f"{s['personal_data_reads']:,} reads of personal data touched "
                      f"{s['distinct_subjects_read']:,} distinct people\n", highlight=False)
    out_console.print(_table("events by kind", s["by_kind"], ("kind", "events")))
    out_console.print(_table("events by principal type", s["by_principal_type"], ("principal type", "events")))
    out_console.print(_table("events by source country", s["by_country"], ("country", "events")))
    out_console.print(_table("top endpoints", s["top_endpoints"], ("endpoint", "reads")))
    if s["quarantined"]:
        out_console.print(_table("quarantined", s["quarantined"], ("reason", "records")))
    else:
        out_console.print("quarantine: empty")
    sc = r["simulated"]["scenarios"]
    if sc:
        t = Table(title="breach scenarios injected by the simulator (ground truth in truth.json)",
                  title_justify="left")
        for col in ("scenario", "malicious events", "people exposed"):
            t.add_column(col, justify="right" if col != "scenario" else "left")
        for x in sc:
            t.add_row(x["name"], f"{x['malicious_events']:,}", f"{x['subjects_exposed']:,}")
        out_console.print(t)
    out_console.print(f"\nNext: breachwatch verify --db {r['store']}", highlight=False)
