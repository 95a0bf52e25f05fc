"""`breachwatch demo`: the whole story on the built-in retail simulator, end to end."""
from __future__ import annotations

import time
from pathlib import Path

import typer
from rich.markup import escape
from rich.table import Table

from breachwatch.cli.common import JsonOption, err_console, handle_errors, out_console, print_json
from breachwatch.cli.main import app
from breachwatch.contract.catalog import load_catalog
from breachwatch.drill import DrillOptions, run_drill
from breachwatch.incidents.store import SEVERITIES, list_incidents
from breachwatch.ingest.pipeline import ingest_paths
from breachwatch.simulate import SimConfig, simulate
from breachwatch.store.db import connect
from breachwatch.store.summary import store_summary


SHOWN_INCIDENTS = 12


@app.command()
@handle_errors
def demo(
    out: str = typer.Option("demo-out", "--out", help="Directory for the simulated logs and the demo store."),
    customers: int = typer.Option(20_000, "--customers", min=100, help="Simulated members."),
    days: float = typer.Option(1.0, "--days", help="Simulated days after the warm-up."),
    seed: int = typer.Option(7, "--seed"),
    drill_customers: int = typer.Option(3_000, "--drill-customers", min=0, help="Members in the short drill "
                                        "that follows the ingest (0 skips it)."),
    as_json: bool = JsonOption,
) -> None:
    """Simulate a retailer with breaches, ingest its logs, summarise the store, then run a short drill
    and tell its incidents in plain words.

    Writes DIR/events.ndjson.gz, DIR/truth.json, a fresh store DIR/breachwatch.duckdb and the drill's
    store DIR/drill.duckdb (open it with `breachwatch incidents --db DIR/drill.duckdb`).
    """
    outdir = Path(out)
    db = outdir / "breachwatch.duckdb"
    drill_db = outdir / "drill.duckdb"
    for d in (db, drill_db):
        for p in (d, Path(f"{d}.wal"), Path(f"{d}.anchor")):
            p.unlink(missing_ok=True)  # the demo always starts from empty stores of its own
    say = (lambda msg: None) if as_json else (lambda msg: err_console.print(msg, highlight=False))
    t0 = time.perf_counter()
    say(f"1/3 simulating {customers:,} customers for {days:g} day(s) after a 1-day warm-up ...")
    sim = simulate(SimConfig(customers=customers, days=days, warmup_days=1.0, seed=seed))
    written = sim.write(outdir, "ndjson.gz", overwrite=True)
    t1 = time.perf_counter()
    say(f"    {written['events']:,} events in {t1 - t0:.1f} s -> {outdir}")
    say("2/3 ingesting them into a new store (validated, deduplicated, hash-chained) ...")
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
    if drill_customers:
        say(f"3/3 a short drill: {drill_customers:,} customers, a day of history learned with a backfill, then "
            "half a day replayed in time order with detection, scored against the ground truth ...")
        result["drill"] = _drill(drill_customers, seed, drill_db)
        result["seconds"]["drill"] = round(time.perf_counter() - t2, 1)
    if as_json:
        print_json(result)
        return
    _print(result)


def _drill(customers: int, seed: int, db: Path) -> dict:
    """A small drill into its own store, and its incidents as Contract 5 objects."""
    # A full day of warm-up: baselines learned from less than a daily cycle raise false positives.
    opts = DrillOptions(customers=customers, days=1.5, warmup_days=1.0, seed=seed, db=str(db))
    result = run_drill(opts)
    con = connect(db)
    try:
        result["incident_list"] = list_incidents(con)
    finally:
        con.close()
    result["store"] = str(db)
    return result


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
    if "drill" in r:
        _print_drill(r["drill"])
    out_console.print(f"\nNext: breachwatch verify --db {r['store']}", highlight=False)


def _print_drill(d: dict) -> None:
    out_console.print(f"\n[bold]Drill[/]: {d['events']:,} events replayed, {d['benign_days']:g} day(s) after the "
                      f"warm-up", highlight=False)
    for s in d["scenarios"]:
        if s["detected"]:
            out_console.print(f"  {s['name']}: caught {s['time_to_detect_s']:,.0f} s after its first malicious "
                              f"request, when it had exposed {s['subjects_exposed_before_detection']:,} of the "
                              f"{s['subjects_exposed_total']:,} people it reached", highlight=False)
        else:
            out_console.print(f"  {s['name']}: [red]missed[/] ({s['subjects_exposed_total']:,} people exposed)",
                              highlight=False)
    malicious = {i for s in d["scenarios"] for i in s["incidents"]}
    incs = d["incident_list"]
    out_console.print(f"\n[bold]Incidents[/] ({len(incs)}, {d['false_positive_incidents']} of them false "
                      f"positives), most severe first, in plain words:", highlight=False)
    ordered = sorted(incs, key=lambda i: (-SEVERITIES.index(i["severity"]), i["detected_at"]))
    for inc in ordered[:SHOWN_INCIDENTS]:
        tag = "" if inc["id"] in malicious else " (false positive)"
        out_console.print(f"  {inc['id']} {inc['severity']}, detected {inc['detected_at']}{tag}: "
                          f"{escape(inc['summary'])}", highlight=False)
    if len(ordered) > SHOWN_INCIDENTS:
        out_console.print(f"  ... and {len(ordered) - SHOWN_INCIDENTS} more", highlight=False)
    out_console.print(f"  (all of them: breachwatch incidents --db {d['store']})", highlight=False)
