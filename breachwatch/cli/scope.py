"""`breachwatch scope INCIDENT --out DIR` and its helpers: blast radius, reports, deadlines, lookup.

`scope INCIDENT ...` is the default command of the group, so the Contract 3 form
works while `scope aware-at`, `scope lookup-token` and the others sit beside it.
"""
from __future__ import annotations

import os
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Optional

import click
import typer
from rich.table import Table
from typer.core import TyperGroup

from breachwatch.cli.common import (
    EXIT_FINDING,
    DbOption,
    JsonOption,
    ServerOption,
    db_path,
    handle_errors,
    out_console,
    path_part,
    print_json,
    remote,
    require_by,
)
from breachwatch.cli.main import app
from breachwatch.contract.catalog import load_catalog
from breachwatch.scope.deadlines import parse_time
from breachwatch.store.db import connect

DEFAULT_COMMAND = "run"


class _DefaultGroup(TyperGroup):
    """A group whose first argument, when it names no subcommand, goes to `run`."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and args[0] not in ("--help", "-h"):
            args = [DEFAULT_COMMAND, *args]
        return super().parse_args(ctx, args)


scope_app = typer.Typer(cls=_DefaultGroup, no_args_is_help=True, add_completion=False,
                        help="Blast radius, regulator reports and notices for an incident; breach lookup. "
                             "'breachwatch scope INCIDENT --out DIR' is short for 'scope run INCIDENT --out DIR'.")
app.add_typer(scope_app, name="scope")

CatalogOption = typer.Option(None, "--catalog", envvar="BREACHWATCH_CATALOG",
                             help="Catalog YAML (default: ./breachwatch.yaml if present, else the built-in one).")


def _catalog(path: str | None):
    return load_catalog(path or ("breachwatch.yaml" if os.path.exists("breachwatch.yaml") else None))


IncidentFileOption = typer.Option(None, "--incident-file", help="Incident JSON (Contract 5, optionally with "
                                  "'event_ids') instead of the store's incidents, e.g. one exported elsewhere.")


def _incident(con: Any, incident_id: str, path: Path | None) -> dict[str, Any]:
    from breachwatch.scope.seed import load_incident
    if path is None:
        return load_incident(con, incident_id)
    import orjson
    try:
        inc = orjson.loads(Path(path).read_bytes())
    except (OSError, orjson.JSONDecodeError) as e:
        raise ValueError(f"--incident-file {path}: not a readable JSON incident ({e}). Fix: pass the JSON of one "
                         "incident as 'breachwatch incidents ID --json' prints it.") from e
    if not isinstance(inc, dict) or str(inc.get("id")) != incident_id:
        raise ValueError(f"--incident-file {path} holds incident {inc.get('id') if isinstance(inc, dict) else None!r}, "
                         f"not {incident_id!r}. Fix: pass the matching id, or the matching file.")
    return inc


@scope_app.command(DEFAULT_COMMAND)
@handle_errors
def run(
    incident: str = typer.Argument(..., help="Incident id (see 'breachwatch incidents')."),
    out: Optional[Path] = typer.Option(None, "--out", help="Folder for the manifest, reports and notices."),
    accept: list[str] = typer.Option([], "--accept", help="Accept this expansion step (repeatable)."),
    reject: list[str] = typer.Option([], "--reject", help="Reject this expansion step (repeatable)."),
    accept_all: bool = typer.Option(False, "--accept-all", help="Accept every proposed step not rejected."),
    propose: bool = typer.Option(False, "--propose", help="Only list the proposed steps; write nothing."),
    contacts: Optional[Path] = typer.Option(None, "--contacts", help="Contact file (id, name, email, phone) for "
                                            "the per-person mail-merge."),
    by: Optional[str] = typer.Option(None, "--by", help="Who runs this scope (recorded with the run)."),
    no_pdf: bool = typer.Option(False, "--no-pdf", help="Skip PDFs (Markdown and HTML only)."),
    incident_file: Optional[Path] = IncidentFileOption,
    catalog: Optional[str] = CatalogOption,
    db: Optional[str] = DbOption,
    server: Optional[str] = ServerOption,
    as_json: bool = JsonOption,
) -> None:
    """Write the blast-radius manifest, reports (PIPA, GDPR; Korean, English) and notices for INCIDENT.

    Each proposed expansion step is listed with its evidence; accept or reject it by id.
    Exit code 1 when a legal deadline has been missed. With --server the running server builds them
    (recorded under the API key) and --out receives copies of its files.
    """
    if server:
        if contacts is not None or incident_file is not None or catalog is not None:
            raise ValueError("--contacts, --incident-file and --catalog apply to a scope run on the store itself. "
                             "Fix: drop them with --server (the server scopes with its own catalog), or run the "
                             "scope without --server while no server holds the store.")
        _remote_run(server, incident, out, accept, reject, accept_all, propose, as_json)
        return
    from breachwatch.scope.expansion import propose_expansions
    from breachwatch.scope.run import run_scope
    cat = _catalog(catalog)
    con = connect(db_path(db))
    try:
        inc = _incident(con, incident, incident_file)
        steps = propose_expansions(con, inc, catalog=cat)
        if propose:
            rows = [s.as_dict() for s in steps]
            if as_json:
                print_json(rows)
            else:
                _print_steps(rows)
            return
        if out is None:
            raise ValueError("--out is required to write the manifest. Fix: pass --out DIR, or --propose to only "
                             "list the expansion steps.")
        result = run_scope(con, inc, out, catalog=cat, accept=accept, reject=reject, accept_all=accept_all,
                           contacts=contacts, created_by=by, pdf=not no_pdf, steps=steps)
    finally:
        con.close()
    doc = result.as_dict()
    if as_json:
        print_json(doc)
    else:
        _print_result(doc, out)
    if doc["missed_deadlines"]:
        raise typer.Exit(EXIT_FINDING)


def _remote_run(server: str, incident: str, out: Path | None, accept: list[str], reject: list[str],
                accept_all: bool, propose: bool, as_json: bool) -> None:
    """`scope` through a running server: its proposals, or a run it builds, whose files are copied to `out`."""
    from urllib.parse import quote

    from breachwatch.server.client import ServerClient
    with ServerClient(server) as c:
        if propose:
            rows = c.request("GET", f"/v1/incidents/{path_part(incident)}/scope/proposals")
            if as_json:
                print_json(rows)
            else:
                _print_steps(rows)
            return
        run = c.request("POST", f"/v1/incidents/{path_part(incident)}/scope",
                        json={"accept": accept, "reject": reject, "accept_all": accept_all})
        # A file's name may hold folders (reports/...): quoted with its slashes kept.
        files = {name: f"/v1/scope/runs/{path_part(run['run_id'])}/files/{quote(name)}" for name in run["files"]}
        deadlines = c.request("GET", files["deadlines.json"]) if "deadlines.json" in files else {}
        if out is not None:
            for name, path in files.items():
                target = out / name
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(c.http.get(path).raise_for_status().content)
    if isinstance(deadlines, str):  # served as a file: JSON text
        import orjson
        deadlines = orjson.loads(deadlines)
    missed = [d["id"] for d in deadlines.get("duties", []) if d.get("missed")]
    doc = {**run, "missed_deadlines": missed, "written_to": str(out) if out is not None else None}
    if as_json:
        print_json(doc)
    else:
        t = Table(title=f"scope of {run['incident']} (version {run['version']}), built by the server", show_header=False)
        t.add_row("people affected", f"{run['subjects']:,} ({run['members']:,} members, "
                                     f"{run['non_members']:,} non-members)")
        t.add_row("missed deadlines", ", ".join(missed) or "none")
        t.add_row("files", f"{len(files)}" + (f", copied to {out}" if out is not None else
                                              " on the server (pass --out DIR for copies)"))
        out_console.print(t)
    if missed:
        raise typer.Exit(EXIT_FINDING)


def _print_steps(rows: list[dict[str, Any]]) -> None:
    if not rows:
        out_console.print("no expansion step is tied to this incident")
        return
    t = Table(title="proposed expansion steps")
    for c in ("id", "step", "+subjects", "decision"):
        t.add_column(c)
    for s in rows:
        t.add_row(s["id"], s["title"] + "\n" + "\n".join(f"  · {e}" for e in s["evidence"]),
                  f"{s['added_subjects']:,}", s["decision"])
    out_console.print(t)


def _print_result(doc: dict[str, Any], out: Path | None) -> None:
    t = Table(title=f"scope of {doc['incident']} (version {doc['version']})", show_header=False)
    t.add_row("people affected", f"{doc['subjects']:,} ({doc['members']:,} members, {doc['non_members']:,} non-members)")
    for f in doc["by_field"]:
        t.add_row(f"  {f['label']}", f"{f['subjects']:,}")
    for s in doc["steps"]:
        t.add_row(f"step {s['decision']}", f"{s['id']}: +{s['added_subjects']:,}")
    for d in doc["duties"]:
        if d["applies"]:
            t.add_row(d["title"], f"due {d['deadline']}: {d['state']}")
    if doc["mail_merge"]:
        mm = doc["mail_merge"]
        t.add_row("mail-merge", f"{mm['rows']:,} notices ({mm['without_contact']:,} without contact details)")
    t.add_row("written to", str(out))
    out_console.print(t)


@scope_app.command("aware-at")
@handle_errors
def aware_at(
    incident: str = typer.Argument(..., help="Incident id."),
    at: str = typer.Option(..., "--at", help="When the company became aware (RFC 3339 with offset)."),
    reason: str = typer.Option(..., "--reason", help="Why it changes (e.g. the regulator's finding)."),
    by: Optional[str] = typer.Option(None, "--by", help="Who decided it (with --server: the API key's name)."),
    incident_file: Optional[Path] = IncidentFileOption,
    db: Optional[str] = DbOption,
    server: Optional[str] = ServerOption,
    as_json: bool = JsonOption,
) -> None:
    """Move the awareness time the deadlines run from; recorded with its reason."""
    from breachwatch.scope.deadlines import set_aware_at
    when = parse_time(at, "--at")
    if server:
        doc = remote(server, "POST", f"/v1/incidents/{path_part(incident)}/aware-at",
                     json={"at": when.isoformat(), "reason": reason})
    else:
        con = connect(db_path(db))
        try:
            aw = set_aware_at(con, _incident(con, incident, incident_file), when, reason=reason, by=require_by(by))
        finally:
            con.close()
        doc = {"incident": incident, "aware_at": aw.aware_at.replace(tzinfo=timezone.utc).isoformat(),
               "history": aw.history}
    if as_json:
        print_json(doc)
    else:
        out_console.print(f"{incident}: aware_at is now {doc['aware_at']} ({len(aw.history)} recorded change(s))")


@scope_app.command("duty-done")
@handle_errors
def duty_done(
    incident: str = typer.Argument(..., help="Incident id."),
    duty: str = typer.Option(..., "--duty", help="pipa_notice, pipa_regulator, network_act_intrusion, gdpr_art33 "
                             "or gdpr_art34."),
    at: str = typer.Option(..., "--at", help="When it was done (RFC 3339 with offset)."),
    by: Optional[str] = typer.Option(None, "--by", help="Who records it (with --server: the API key's name)."),
    note: Optional[str] = typer.Option(None, "--note", help="Reference, e.g. the regulator's receipt number."),
    incident_file: Optional[Path] = IncidentFileOption,
    db: Optional[str] = DbOption,
    server: Optional[str] = ServerOption,
) -> None:
    """Record that a report was filed or notices were sent, so reports show on time or late."""
    from breachwatch.scope.deadlines import record_duty_done
    when = parse_time(at, "--at")
    if server:
        remote(server, "POST", f"/v1/incidents/{path_part(incident)}/duties",
               json={"duty": duty, "at": when.isoformat(), "note": note})
    else:
        con = connect(db_path(db))
        try:
            _incident(con, incident, incident_file)
            record_duty_done(con, incident, duty, when, by=require_by(by), note=note)
        finally:
            con.close()
    out_console.print(f"{incident}: {duty} recorded as done at {at}")


@scope_app.command("address-book")
@handle_errors
def address_book(
    paths: list[Path] = typer.Argument(..., help="Snapshot files (.csv or .parquet)."),
    tz: Optional[str] = typer.Option(None, "--tz", help="Zone for times written without an offset."),
    replace: bool = typer.Option(False, "--replace", help="Replace rows loaded earlier from the same file."),
    db: Optional[str] = DbOption,
    server: Optional[str] = ServerOption,
    as_json: bool = JsonOption,
) -> None:
    """Load address-book snapshots (member_id, recipient_id, valid_from[, valid_to, entry_id, fields])."""
    from breachwatch.scope.address_book import load_snapshots
    if server:
        counts = {str(p): _upload_snapshot(server, p, tz, replace) for p in paths}
    else:
        con = connect(db_path(db))
        try:
            counts = {str(p): load_snapshots(con, p, tz=tz, replace=replace) for p in paths}
        finally:
            con.close()
    if as_json:
        print_json(counts)
    else:
        for p, n in counts.items():
            out_console.print(f"{p}: {n:,} address-book rows loaded")


def _upload_snapshot(server: str, path: Path, tz: str | None, replace: bool) -> int:
    """Send one snapshot file to a running server, filed under its path as given (so --replace matches)."""
    from breachwatch.scope.address_book import snapshot_format
    fmt = snapshot_format(path)
    try:
        data = path.read_bytes()
    except OSError as e:
        raise ValueError(f"{path}: cannot read it ({e.strerror}). Fix: pass the address-book export.") from None
    if path.name.lower().endswith(".gz"):
        import gzip
        data = gzip.decompress(data)
    params = {"source": str(path), "format": fmt, "replace": replace, **({"tz": tz} if tz else {})}
    return int(remote(server, "POST", "/v1/address-book", params=params, content=data,
                      headers={"Content-Type": "text/csv" if fmt == "csv" else "application/vnd.apache.parquet"}
                      )["rows"])


@scope_app.command("lookup-token")
@handle_errors
def lookup_token(
    subject_id: str = typer.Argument(..., help="The member's or recipient's id."),
    ttl_days: float = typer.Option(30.0, "--ttl-days", min=0.01, help="How long the token stays valid."),
    catalog: Optional[str] = CatalogOption,
) -> None:
    """Issue the signed breach-lookup token the company sends one customer (key: BREACHWATCH_LOOKUP_KEY)."""
    from breachwatch.scope.lookup import issue_token, load_key
    typer.echo(issue_token(subject_id, load_key(_catalog(catalog)), ttl_s=int(ttl_days * 86400)))


@scope_app.command("lookup")
@handle_errors
def lookup_cmd(
    token: str = typer.Argument(..., help="A lookup token."),
    subject: Optional[str] = typer.Option(None, "--subject", help="The id the caller asks about."),
    client: str = typer.Option("cli", "--client", help="Caller name or address, for rate limits and audit."),
    catalog: Optional[str] = CatalogOption,
    db: Optional[str] = DbOption,
) -> None:
    """Answer one lookup as the API would: status and body; every call is audited."""
    from breachwatch.scope.lookup import RateLimits, load_key, lookup
    cat = _catalog(catalog)
    con = connect(db_path(db))
    try:
        resp = lookup(con, token, key=load_key(cat), catalog=cat, subject_id=subject, client=client,
                      limits=RateLimits.from_catalog(cat))
    finally:
        con.close()
    typer.echo(resp.body.decode())
    if resp.status != 200:
        raise typer.Exit(EXIT_FINDING)
