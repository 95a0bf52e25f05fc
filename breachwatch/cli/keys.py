"""`breachwatch keys audit`: signing-key and token hygiene findings."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from breachwatch.cli.common import (EXIT_FINDING, DbOption, JsonOption, err_console, fail, handle_errors,
                                    out_console, print_json)
from breachwatch.cli.main import app

keys_app = typer.Typer(help="Signing-key and token hygiene.", no_args_is_help=True)
app.add_typer(keys_app, name="keys")

_COLOR = {"critical": "bold red", "high": "red", "medium": "yellow", "low": "cyan"}


@keys_app.command("audit")
@handle_errors
def audit_cmd(
    jwks: Optional[list[str]] = typer.Option(None, "--jwks", help="JWKS file of the keys verifiers trust (repeatable)."),
    inventory: Optional[list[str]] = typer.Option(None, "--inventory",
                                                  help="Key owners CSV or YAML: kid, owner, holders, created, "
                                                       "rotated, retired, status, location (repeatable)."),
    hr: Optional[list[str]] = typer.Option(None, "--hr", help="HR CSV of departures: principal_id, left_at (repeatable)."),
    db: Optional[str] = DbOption,
    no_db: bool = typer.Option(False, "--no-db", help="Do not read the store even if one exists."),
    scan: Optional[list[str]] = typer.Option(None, "--scan", help="Folder or file to search for private keys "
                                             "and secrets (repeatable)."),
    scan_history: Optional[list[str]] = typer.Option(None, "--scan-history",
                                                     help="Git repository whose whole history is searched (repeatable)."),
    max_key_age_days: int = typer.Option(90, "--max-key-age-days", min=1, help="Rotation policy."),
    max_token_lifetime: int = typer.Option(3600, "--max-token-lifetime", min=1, help="Token lifetime policy, seconds."),
    rotation_grace_days: float = typer.Option(1.0, "--rotation-grace-days", min=0.0,
                                              help="How soon keys must be rotated after a holder leaves."),
    as_of: Optional[str] = typer.Option(None, "--as-of", help="Audit as of this time (RFC 3339 with offset; "
                                        "default now), e.g. for a historical or simulated period."),
    markdown: Optional[str] = typer.Option(None, "--markdown", help="Also write the report as Markdown to this file."),
    as_json: bool = JsonOption,
) -> None:
    """Audit signing keys: age and rotation, departed holders, forged-token evidence, token lifetimes, leaked keys.

    Exit 1 when a high or critical finding needs action, 0 when clean, 2 on unusable input.
    """
    import os

    from breachwatch.keys.audit import AuditPolicy, run_audit
    from breachwatch.keys.inventory import parse_when
    from breachwatch.keys.report import to_markdown
    from breachwatch.store.db import connect, default_db_path

    if as_of:
        parse_when(as_of, "--as-of")  # bad input stops here, before any store is opened
    con = None
    store_label = None
    if not no_db:
        explicit = db is not None
        path = db or default_db_path()
        if explicit or os.path.exists(path):
            con = connect(path, read_only=True)
            store_label = path
    if not (jwks or inventory or con is not None or scan or scan_history):
        fail("nothing to audit. Fix: pass --jwks, --inventory, --db (a store with key and token events), "
             "or --scan.")
    try:
        report = run_audit(jwks=list(jwks or []), inventory_files=list(inventory or []), hr_files=list(hr or []),
                           con=con, store_label=store_label, scan_paths=list(scan or []),
                           history_repos=list(scan_history or []),
                           policy=AuditPolicy(max_key_age_days, max_token_lifetime, rotation_grace_days),
                           now=parse_when(as_of, "--as-of") if as_of else None)
    finally:
        if con is not None:
            con.close()
    if markdown:
        Path(markdown).write_text(to_markdown(report), encoding="utf-8")
    if as_json:
        print_json(report.as_dict())
    else:
        counts = report.counts()
        out_console.print(f"[bold]{len(report.findings)} findings[/] over {len(report.keys)} keys: "
                          + ", ".join(f"{n} {s}" for s, n in counts.items() if n), highlight=False)
        for f in report.findings:
            out_console.print(f"[{_COLOR[f.severity]}]{f.severity:>8}[/] {f.key_id or '-':<16} {f.title}",
                              highlight=False)
            out_console.print(f"{'':>8} fix: {f.fix}", highlight=False, style="dim")
        for note in report.notes:
            err_console.print(f"note: {note}", highlight=False)
        if markdown:
            err_console.print(f"Markdown report written to {markdown}", highlight=False)
    if report.actionable:
        raise typer.Exit(EXIT_FINDING)
