"""`breachwatch drill`: simulate + ingest + detect + scope + score (Contract 4)."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import orjson
import typer
from rich.table import Table

from breachwatch.cli.common import JsonOption, err_console, handle_errors, out_console, print_json, show_progress
from breachwatch.cli.main import app
from breachwatch.drill import DrillOptions, run_drill
from breachwatch.server.config import default_drill_report


@app.command()
@handle_errors
def drill(
    customers: int = typer.Option(100_000, "--customers", min=100, help="Simulated members."),
    days: float = typer.Option(3.0, "--days", help="Simulated days in all, the warm-up included."),
    warmup_days: float = typer.Option(1.0, "--warmup-days", help="Benign history before any scenario; "
                                      "learned from with a backfill."),
    seed: int = typer.Option(1, "--seed"),
    scenarios: str = typer.Option("all", "--scenarios", help="Comma list of scenarios, or 'all'."),
    rate_scale: float = typer.Option(1.0, "--rate-scale", help="Multiplies every attack rate."),
    batch_s: float = typer.Option(60.0, "--batch-s", help="Replay micro-batch in seconds of event time."),
    every_batch: bool = typer.Option(False, "--every-batch", help="Store and detect every micro-batch on its "
                                     "own instead of catching up once per engine.behaviour_max_lag of event "
                                     "time (slower; detection times are the same)."),
    no_issuance_log: bool = typer.Option(False, "--no-issuance-log", help="Feed no token_issued events, so "
                                         "provenance cannot be checked and behaviour must catch forgery."),
    background: list[str] = typer.Option([], "--background", help="Inject the scenarios into these recorded "
                                         "logs instead of simulated benign traffic (repeatable)."),
    db: Optional[str] = typer.Option(None, "--db", help="Store to replay into (default: a fresh temporary "
                                     "store, never the user's)."),
    catalog: Optional[str] = typer.Option(None, "--catalog", help="Catalog YAML (default: the built-in one)."),
    surprises: str = typer.Option("none", "--surprises", help="Benign surprises in the simulated traffic "
                                  "(comma list of sale_day, app_release, carrier_renumbering, travel, "
                                  "new_batch_job; 'all' or 'none'): incidents they raise count as false positives."),
    report: Optional[str] = typer.Option(None, "--report", help="Also write the JSON result to this file "
                                         "(default with --db: STORE.drill.json, where `serve` finds it "
                                         "for the dashboard's drill page)."),
    as_json: bool = JsonOption,
) -> None:
    """Score detection and scoping on injected breach scenarios against their ground truth."""
    opts = DrillOptions(customers=customers, days=days, warmup_days=warmup_days, seed=seed, scenarios=scenarios,
                        rate_scale=rate_scale, batch_s=batch_s, every_batch=every_batch,
                        issuance_log=not no_issuance_log,
                        background=tuple(background), db=db, catalog=catalog, surprises=surprises)
    say = (lambda m: err_console.print(m, highlight=False)) if show_progress() and not as_json else None
    result = run_drill(opts, progress=say)
    target = report or (default_drill_report(db) if db else None)
    if target:
        Path(target).write_bytes(orjson.dumps(result, option=orjson.OPT_INDENT_2))
    if as_json:
        print_json(result)
        return
    t = Table("scenario", "detected", "time to detect", "exposed before", "exposed total", "scope recall",
              "scope precision", title="drill", title_justify="left")
    for s in result["scenarios"]:
        ttd = "-" if s["time_to_detect_s"] is None else f"{s['time_to_detect_s']:,.0f} s"
        rec = "-" if s["scope_recall"] is None else f"{s['scope_recall']:.3f}"
        pre = "-" if s["scope_precision"] is None else f"{s['scope_precision']:.3f}"
        t.add_row(s["name"], "yes" if s["detected"] else "[red]NO[/]", ttd,
                  f"{s['subjects_exposed_before_detection']:,}", f"{s['subjects_exposed_total']:,}", rec, pre)
    out_console.print(t)
    out_console.print(f"false-positive incidents: {result['false_positive_incidents']} over "
                      f"{result['benign_days']:g} benign days; {result['events']:,} events at "
                      f"{result['events_per_s']:,.0f} events/s (ingest + detect)", highlight=False)
