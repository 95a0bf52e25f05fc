"""`breachwatch verify`: check the store's batch chain against its outside anchor."""
from __future__ import annotations

from typing import Optional

import typer

from breachwatch.cli.common import (EXIT_FINDING, DbOption, JsonOption, ServerOption, db_path, handle_errors,
                                    out_console, print_json, remote)
from breachwatch.cli.main import app
from breachwatch.store.chain import VerifyReport
from breachwatch.store.chain import verify as verify_chain
from breachwatch.store.db import connect


@app.command()
@handle_errors
def verify(
    db: Optional[str] = DbOption,
    anchor: Optional[str] = typer.Option(None, "--anchor", envvar="BREACHWATCH_ANCHOR",
                                         help="Anchor file (default: STORE.anchor)."),
    server: Optional[str] = ServerOption,
    as_json: bool = JsonOption,
) -> None:
    """Recompute the batch hash chain; name the first altered, deleted, reordered or truncated batch.

    Exits 1 when tampering is found. With --server the running server verifies its store against its
    own anchor (ingest waits meanwhile).
    """
    if server:
        rep = VerifyReport(**remote(server, "GET", "/v1/verify"))
    else:
        path = db_path(db)
        con = connect(path, read_only=True)
        try:
            rep = verify_chain(con, path, anchor)
        finally:
            con.close()
    if as_json:
        print_json(rep.__dict__)
    else:
        style = "green" if rep.ok else "bold red"
        out_console.print(f"[{style}]{'OK' if rep.ok else 'TAMPERED'}[/] {rep.message}", highlight=False, soft_wrap=True)
        for w in rep.warnings:
            out_console.print(f"[yellow]warning:[/] {w}", highlight=False, soft_wrap=True)
    if not rep.ok:
        raise typer.Exit(EXIT_FINDING)
