"""`breachwatch simulate --out DIR`: a retailer's events with injected breaches, plus truth.json."""
from __future__ import annotations

from typing import Optional

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from breachwatch.cli.common import JsonOption, err_console, handle_errors, out_console, print_json, show_progress
from breachwatch.cli.main import app
from breachwatch.simulate import FORMATS, SCENARIO_NAMES, SURPRISE_NAMES, SimConfig, simulate
from breachwatch.simulate.config import DEFAULT_START, params_from_cli


@app.command("simulate")
@handle_errors
def simulate_command(
    out: str = typer.Option(..., "--out", help="Directory for the events file and truth.json."),
    seed: int = typer.Option(1, "--seed", help="Same seed, same options: byte-identical output."),
    customers: int = typer.Option(100_000, "--customers", min=100, help="Members (sequential numeric ids)."),
    days: float = typer.Option(3.0, "--days", help="Days after the warm-up, in which scenarios run."),
    warmup_days: float = typer.Option(1.0, "--warmup-days", help="Benign days before any scenario."),
    scenarios: str = typer.Option("all", "--scenarios",
                                  help=f"'all', 'none' or a comma list of: {', '.join(SCENARIO_NAMES)}."),
    surprises: str = typer.Option("none", "--surprises",
                                  help="Benign surprises a naive detector flags: 'none' (default), 'all' or a "
                                       f"comma list of: {', '.join(SURPRISE_NAMES)}."),
    rate_scale: float = typer.Option(1.0, "--rate-scale", help="Multiplies every attack rate."),
    fmt: str = typer.Option("ndjson", "--format", help=f"One of {', '.join(FORMATS)}."),
    no_issuance_log: bool = typer.Option(False, "--no-issuance-log",
                                         help="Leave out token_issued events, as a service without an issuance "
                                              "log would."),
    param: list[str] = typer.Option([], "--param", "-p", help="Scenario or surprise parameter NAME.KEY=VALUE "
                                    "(repeatable), e.g. forged_token.ips=500 or sale_day.factor=2.5; see "
                                    "docs/simulator.md."),
    start: str = typer.Option(DEFAULT_START, "--start", help="First simulated instant (RFC 3339, on the hour)."),
    catalog: Optional[str] = typer.Option(None, "--catalog", help="Catalog YAML whose canaries become honey "
                                          "members (default: the built-in retail catalog)."),
    world: bool = typer.Option(False, "--world", help="Also write world/: customers, recipients and principals "
                                                      "with their names, contacts and addresses."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace the output of an earlier run in DIR."),
    as_json: bool = JsonOption,
) -> None:
    """Simulate a Korean online retailer's traffic with injected breach scenarios and their ground truth.

    --surprises adds benign surprises (a sale day, an app release, ...) that are not attacks.
    """
    config = SimConfig(customers=customers, days=days, warmup_days=warmup_days, seed=seed, scenarios=scenarios,
                       surprises=surprises, rate_scale=rate_scale, issuance_log=not no_issuance_log, start=start,
                       params=params_from_cli(param), catalog=catalog)
    sim = simulate(config)
    if show_progress() and not as_json:
        with Progress(TextColumn("simulating"), BarColumn(), MofNCompleteColumn(), TextColumn("windows"),
                      TimeElapsedColumn(), console=err_console, transient=True) as bar:
            task = bar.add_task("simulate", total=sim.window_count())
            summary = sim.write(out, fmt, overwrite=overwrite, world_files=world,
                                on_window=lambda w: bar.advance(task))
    else:
        summary = sim.write(out, fmt, overwrite=overwrite, world_files=world)
    if as_json:
        print_json(summary)
        return
    _print_summary(summary)


def _short(t: str | None) -> str:
    return f"{t[5:10]} {t[11:16]}Z" if t else "-"


def _print_summary(s: dict) -> None:
    out_console.print(f"[bold]{s['events']:,}[/] events in {s['seconds']:.1f} s ({s['events_per_s'] or 0:,}/s)",
                      highlight=False)
    out_console.print(f"period {s['period']['start']} .. {s['period']['end']} "
                      f"(warm-up until {s['period']['warmup_end']})", highlight=False)
    for f in s["files"]:
        out_console.print(f"  {f}", highlight=False)
    for b in s.get("benign_surprises", []):
        out_console.print(f"  benign surprise {b['name']}: {_short(b['start'])} .. {_short(b['end'])}", highlight=False)
    if not s["scenarios"]:
        return
    table = Table("scenario", "first (UTC)", "last (UTC)", "events", "subjects", "non-members")
    for sc in s["scenarios"]:
        table.add_row(sc["name"], _short(sc["start"]), _short(sc["end"]), f"{sc['malicious_events']:,}",
                      f"{sc['subjects_exposed']:,}", f"{sc['non_members_exposed']:,}")
    out_console.print(table)
