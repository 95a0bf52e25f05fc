"""`breachwatch detect [--follow] [--backfill]`: run the detectors over events not yet processed."""
from __future__ import annotations

import os
import signal
import time
from typing import Any, Optional

import typer
from rich.table import Table

from breachwatch.cli.common import (DbOption, JsonOption, db_path, err_console, handle_errors, out_console,
                                    print_json)
from breachwatch.cli.main import app
from breachwatch.contract.catalog import load_catalog
from breachwatch.detect.config import load_detect_config
from breachwatch.detect.engine import DetectResult, load_progress, run_detect
from breachwatch.detect.feeds import feed_status
from breachwatch.incidents.notify import Deliverer, deliver, validate_notify
from breachwatch.store.db import connect

CatalogOption = typer.Option(None, "--catalog", envvar="BREACHWATCH_CATALOG",
                             help="Catalog YAML with the detectors: and notify: settings (default: ./breachwatch.yaml "
                                  "if present, else the built-in one).")


def _catalog_path(explicit: str | None) -> str | None:
    if explicit:
        return explicit
    return "breachwatch.yaml" if os.path.exists("breachwatch.yaml") else None


@app.command()
@handle_errors
def detect(
    db: Optional[str] = DbOption,
    catalog: Optional[str] = CatalogOption,
    follow: bool = typer.Option(False, "--follow", help="Keep processing new events as they arrive (Ctrl-C stops)."),
    backfill: bool = typer.Option(False, "--backfill", help="Learn baselines from the history already stored, "
                                  "without behavioural alerts on it (provenance and canary alerts still fire)."),
    interval: float = typer.Option(0.2, "--interval", min=0.05, help="With --follow: seconds between looks for "
                                   "new events (idle looks cost two small queries)."),
    as_json: bool = JsonOption,
) -> None:
    """Run the detectors over events stored since the last run; open or update incidents.

    Re-running adds nothing new. Detection runs on event time with per-feed watermarks, so
    late and out-of-order feeds are judged as they would have been in order.
    """
    cat = load_catalog(_catalog_path(catalog))
    cfg = load_detect_config(cat)
    notify = validate_notify(cat.notify)
    path = db_path(db)
    con = connect(path)
    try:
        if not follow:
            res = run_detect(con, cfg, backfill=backfill, notify=notify)
            sent = deliver(con, notify)
            _report(con, cfg, res, sent, as_json)
            return
        _follow(con, cfg, notify, backfill, interval, as_json)
    finally:
        con.close()


def _follow(con, cfg, notify, backfill: bool, interval: float, as_json: bool) -> None:
    stop = {"now": False}

    def _stop(*_: Any) -> None:
        stop["now"] = True

    signal.signal(signal.SIGTERM, _stop)
    deliverer = Deliverer(con, notify).start()
    first = True
    try:
        while not stop["now"]:
            res = run_detect(con, cfg, backfill=backfill and first, notify=notify, pace="auto")
            first = False
            if res.events:
                line = _line(res)
                if as_json:
                    print_json(res.as_dict())
                else:
                    err_console.print(line, highlight=False)
            time.sleep(interval)
    except KeyboardInterrupt:
        pass
    finally:
        deliverer.stop()


def _line(res: DetectResult) -> str:
    parts = [f"{res.events:,} events"]
    if res.incidents_opened:
        parts.append(f"opened {', '.join(res.incidents_opened)}")
    if res.incidents_escalated:
        parts.append(f"escalated {', '.join(res.incidents_escalated)}")
    if res.incidents_updated:
        parts.append(f"updated {len(res.incidents_updated)}")
    for h in res.health:
        parts.append(f"feed {h['feed']} {h['state']}")
    return "detect: " + "; ".join(parts)


def _report(con, cfg, res: DetectResult, sent: dict[str, int], as_json: bool) -> None:
    prog = load_progress(con)
    feeds = feed_status(con, cfg)
    if as_json:
        print_json({**res.as_dict(), "notifications": sent, "feeds": feeds,
                    "events_processed_total": prog.events_processed})
        return
    t = Table(title="detect", show_header=False)
    t.add_row("events processed", f"{res.events:,}" + (" (backfill: baselines learned)" if res.backfill else ""))
    t.add_row("new alerts", f"{res.alerts_new:,}" + (f" ({', '.join(f'{k} {v}' for k, v in sorted(res.by_status.items()))})"
                                                       if res.by_status else ""))
    t.add_row("incidents opened", ", ".join(res.incidents_opened) or "none")
    if res.incidents_escalated:
        t.add_row("incidents escalated", ", ".join(res.incidents_escalated))
    if res.incidents_updated:
        t.add_row("incidents updated", ", ".join(res.incidents_updated))
    t.add_row("baselines learned up to", str(res.baseline_at or "not yet (run detect --backfill)"))
    for f in feeds:
        state = "healthy" if f["healthy"] else f"SILENT since {f['unhealthy_since']}"
        if not f["events"]:
            state = "no events yet"
        t.add_row(f"feed {f['feed']}", f"{f['events']:,} events, watermark {f['watermark'] or '-'}, {state}")
    for h in res.health:
        t.add_row("health", h["message"])
    if any(sent.values()):
        t.add_row("notifications", ", ".join(f"{k} {v}" for k, v in sent.items() if v))
    out_console.print(t)
