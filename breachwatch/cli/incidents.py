"""`breachwatch incidents [ID]` and its lifecycle: ack, resolve, false-positive, suppressions, unsuppress, alerts."""
from __future__ import annotations

from typing import Any, Optional

import typer
from rich.panel import Panel
from rich.table import Table
from typer.core import TyperGroup

from breachwatch.cli.common import (DbOption, JsonOption, ServerOption, db_path, handle_errors, out_console,
                                    path_part, print_json, read_store, remote, require_by)
from breachwatch.cli.main import app
from breachwatch.incidents import lifecycle
from breachwatch.incidents.store import get_incident, incident_detail, list_alerts, list_incidents
from breachwatch.incidents.suppression import list_suppressions
from breachwatch.store.db import connect


class _IncidentsGroup(TyperGroup):
    """`incidents` lists, `incidents ID` shows one; anything else is a subcommand."""

    def parse_args(self, ctx, args):  # type: ignore[no-untyped-def]
        if not args or args[0].startswith("-"):
            args = ["list", *args]
        elif args[0] not in self.commands:
            args = ["show", *args]
        return super().parse_args(ctx, args)


incidents_app = typer.Typer(cls=_IncidentsGroup, help="List and show incidents (Contract 5) and manage their lifecycle.",
                            no_args_is_help=False)
app.add_typer(incidents_app, name="incidents")

ByOption = typer.Option(None, "--by", help="Who is making this change (recorded in the audit log). With --server "
                        "the API key's name is recorded instead.")
StatusOption = typer.Option(None, "--status", help="Only these statuses (repeatable or comma-separated): "
                            "open, acknowledged, resolved, false_positive.")


def _statuses(values: list[str] | None) -> list[str]:
    return [s.strip() for v in (values or []) for s in v.split(",") if s.strip()]


@incidents_app.command("list", hidden=True)
@handle_errors
def list_cmd(db: Optional[str] = DbOption, status: Optional[list[str]] = StatusOption,
             min_severity: Optional[str] = typer.Option(None, "--min-severity", help="low, medium, high or critical."),
             server: Optional[str] = ServerOption, as_json: bool = JsonOption) -> None:
    """List incidents, newest first."""
    if server:  # a store the server holds cannot be opened here, not even to read
        items, page = [], 1000
        while True:
            got = remote(server, "GET", "/v1/incidents", params={
                "status": _statuses(status), "limit": page, "offset": len(items),
                **({"min_severity": min_severity} if min_severity else {})})
            items += got
            if len(got) < page:
                break
    else:
        items = read_store(db, lambda con: list_incidents(con, statuses=_statuses(status), min_severity=min_severity))
    if as_json:
        print_json(items)
        return
    if not items:
        out_console.print("No incidents.")
        return
    t = Table(title=f"{len(items)} incident(s)")
    for col in ("id", "severity", "status", "detected", "people", "detectors", "summary"):
        t.add_column(col, overflow="fold")
    for i in items:
        t.add_row(i["id"], i["severity"], i["status"], (i["detected_at"] or "")[:19], f"{i['subjects']:,}",
                  ", ".join(i["detectors"]), i["summary"])
    out_console.print(t)


@incidents_app.command("show", hidden=True)
@handle_errors
def show_cmd(incident_id: str = typer.Argument(..., help="Incident id, e.g. INC-000001."),
             db: Optional[str] = DbOption, server: Optional[str] = ServerOption,
             as_json: bool = JsonOption) -> None:
    """Show one incident with its evidence, alerts and history."""
    if server:
        inc = remote(server, "GET", f"/v1/incidents/{path_part(incident_id)}")
    else:
        inc = read_store(db, lambda con: (get_incident if as_json else incident_detail)(con, incident_id))
    if inc is None:
        raise ValueError(f"incident '{incident_id}' does not exist. Fix: list incidents with 'breachwatch incidents'.")
    if as_json:
        print_json(inc)
        return
    _print_incident(inc)


def _print_incident(inc: dict[str, Any]) -> None:
    lines = [f"[bold]{inc['summary']}[/]", "",
             f"severity {inc['severity']}, status {inc['status']}; first seen {inc['first_seen']}, "
             f"detected {inc['detected_at']}, aware {inc['aware_at'] or '-'}, last seen {inc['last_seen']}",
             f"people so far: {inc['subjects']:,}; fields: {', '.join(inc['fields']) or '-'}",
             f"detectors: {', '.join(inc['detectors'])}", "", "[bold]Evidence[/]"]
    lines += [f"  - {e}" for e in inc["evidence"]]
    ents = {k: v for k, v in inc["entities"].items() if v}
    if ents:
        lines += ["", "[bold]Entities[/] (first 10 of each)"]
        lines += [f"  {k}: {', '.join(v[:10])}{' ...' if len(v) > 10 else ''}" for k, v in ents.items()]
    lines += ["", f"sample events: {', '.join(inc['sample_event_ids'][:10])}"]
    for h in inc.get("history", []):
        lines.append(f"  {h['at']} {h['action']} by {h['actor']}: {h['detail'] or ''}")
    out_console.print(Panel("\n".join(lines), title=inc["id"], expand=False), highlight=False)


def _change(fn, *args: Any, db: str | None, as_json: bool, server: str | None = None, path: str = "",
            body: dict[str, Any] | None = None, **kwargs: Any) -> None:
    """Make a change to the store itself, or, with `server`, through that server's API (`path`, `body`):
    while `breachwatch serve` runs it holds the store, and the change is recorded under the API key."""
    if server:
        result = remote(server, "POST", path, json=body or {})
    else:
        require_by(kwargs.get("by"))
        con = connect(db_path(db))
        try:
            result = fn(con, *args, **kwargs)
        finally:
            con.close()
    if as_json:
        print_json(result)
    elif isinstance(result, dict) and "status" in result:
        out_console.print(f"{result['id']} is now {result['status']}"
                          + (f"; suppressions {', '.join(result['suppressions'])}" if result.get("suppressions") else ""))
    else:
        out_console.print(str(result))


@incidents_app.command("ack")
@handle_errors
def ack_cmd(incident_id: str, by: Optional[str] = ByOption, note: str = typer.Option("", "--note"),
            db: Optional[str] = DbOption, server: Optional[str] = ServerOption, as_json: bool = JsonOption) -> None:
    """Acknowledge an open incident: someone is on it."""
    _change(lifecycle.acknowledge, incident_id, by=by, note=note, db=db, as_json=as_json, server=server,
            path=f"/v1/incidents/{path_part(incident_id)}/acknowledge", body={"note": note})


@incidents_app.command("resolve")
@handle_errors
def resolve_cmd(incident_id: str, by: Optional[str] = ByOption, note: str = typer.Option("", "--note"),
                db: Optional[str] = DbOption, server: Optional[str] = ServerOption,
                as_json: bool = JsonOption) -> None:
    """Resolve an incident (it was real and has been dealt with)."""
    _change(lifecycle.resolve, incident_id, by=by, note=note, db=db, as_json=as_json, server=server,
            path=f"/v1/incidents/{path_part(incident_id)}/resolve", body={"note": note})


@incidents_app.command("false-positive")
@handle_errors
def false_positive_cmd(
    incident_id: str,
    scope: str = typer.Option(..., "--scope", help="pattern (this detector on this entity) or entity (any detector)."),
    expires: str = typer.Option(..., "--expires", help="When the suppression ends: 30d, 12h, 2w or a date."),
    reason: str = typer.Option(..., "--reason", help="Why this is not a breach (kept in the audit log)."),
    by: Optional[str] = ByOption, db: Optional[str] = DbOption, server: Optional[str] = ServerOption,
    as_json: bool = JsonOption,
) -> None:
    """Mark an incident a false positive and suppress its pattern for its entities (audited, reversible)."""
    _change(lifecycle.false_positive, incident_id, scope=scope, expires=expires, reason=reason, by=by, db=db,
            as_json=as_json, server=server, path=f"/v1/incidents/{path_part(incident_id)}/false-positive",
            body={"scope": scope, "expires": expires, "reason": reason})


@incidents_app.command("suppressions")
@handle_errors
def suppressions_cmd(active: bool = typer.Option(False, "--active", help="Only suppressions still in force."),
                     db: Optional[str] = DbOption, server: Optional[str] = ServerOption,
                     as_json: bool = JsonOption) -> None:
    """List suppressions: who set them, why, until when, and how many alerts they hid."""
    if server:
        items = remote(server, "GET", "/v1/suppressions", params={"active": active})
    else:
        items = read_store(db, lambda con: list_suppressions(con, include_inactive=not active))
    if as_json:
        print_json(items)
        return
    t = Table(title=f"{len(items)} suppression(s)")
    for col in ("id", "active", "detector", "entity", "scope", "by", "until", "hits", "reason"):
        t.add_column(col, overflow="fold")
    for s in items:
        t.add_row(s["suppression_id"], "yes" if s["active"] else f"no (lifted by {s['revoked_by']})"
                  if s["revoked_by"] else "no (expired)", s["detector"], f"{s['etype']} {s['entity']}", s["scope"],
                  s["created_by"], s["expires_at"][:19], str(s["hits"]), s["reason"])
    out_console.print(t)


@incidents_app.command("unsuppress")
@handle_errors
def unsuppress_cmd(suppression_id: str, by: Optional[str] = ByOption,
                   reason: str = typer.Option(..., "--reason", help="Why the suppression is lifted."),
                   db: Optional[str] = DbOption, server: Optional[str] = ServerOption,
                   as_json: bool = JsonOption) -> None:
    """Lift a suppression; matching alerts raise incidents again."""
    _change(lifecycle.unsuppress, suppression_id, by=by, reason=reason, db=db, as_json=as_json, server=server,
            path=f"/v1/suppressions/{path_part(suppression_id)}/lift", body={"reason": reason})


@incidents_app.command("alerts")
@handle_errors
def alerts_cmd(status: Optional[list[str]] = typer.Option(None, "--status", help="raised, shadow, held, suppressed "
                                                          "or finding (repeatable or comma-separated)."),
               db: Optional[str] = DbOption, server: Optional[str] = ServerOption,
               as_json: bool = JsonOption) -> None:
    """List alerts, e.g. what shadow-mode detectors would have raised, held or suppressed ones, findings."""
    if server:
        items = remote(server, "GET", "/v1/alerts", params={"status": _statuses(status), "limit": 5000})
    else:
        items = read_store(db, lambda con: list_alerts(con, statuses=_statuses(status)))
    if as_json:
        print_json(items)
        return
    t = Table(title=f"{len(items)} alert(s)")
    for col in ("alert", "detector", "status", "detected", "incident", "evidence"):
        t.add_column(col, overflow="fold")
    for a in items:
        t.add_row(a["alert_id"], f"{a['detector']}/{a['rule']}", a["status"], (a["detected_at"] or "")[:19],
                  a["incident_id"] or "-", a["evidence"])
    out_console.print(t)
