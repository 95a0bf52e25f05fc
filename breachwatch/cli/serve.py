"""`breachwatch serve`: the one long-running process that writes the store.

HTTP ingest, watched folders, continuous detection, the API and the dashboard.
"""
from __future__ import annotations

from typing import Optional

import typer

from breachwatch.cli.common import DbOption, db_path, err_console, handle_errors
from breachwatch.cli.main import app


@app.command()
@handle_errors
def serve(
    db: Optional[str] = DbOption,
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on (0.0.0.0 for all; use TLS then)."),
    port: int = typer.Option(8080, "--port", min=1, max=65535),
    tls_cert: Optional[str] = typer.Option(None, "--tls-cert", help="PEM certificate (chain) for HTTPS."),
    tls_key: Optional[str] = typer.Option(None, "--tls-key", help="PEM private key for HTTPS."),
    anchor: Optional[str] = typer.Option(None, "--anchor", envvar="BREACHWATCH_ANCHOR",
                                         help="Anchor file for chain heads (default: STORE.anchor); keep it on "
                                              "separate storage."),
    catalog: Optional[str] = typer.Option(None, "--catalog", envvar="BREACHWATCH_CATALOG",
                                          help="Catalog YAML (default: ./breachwatch.yaml if present, else built in)."),
    db_key_file: Optional[str] = typer.Option(None, "--db-key-file", envvar="BREACHWATCH_DB_KEY_FILE",
                                              help="Key file of an encrypted store (or set BREACHWATCH_DB_KEY)."),
    watch: list[str] = typer.Option([], "--watch", help="Folder whose new complete files are ingested, e.g. "
                                    "the guard's spool (repeatable)."),
    detect_interval: float = typer.Option(0.5, "--detect-interval", min=0.0,
                                          help="Seconds between looks for new events to detect on (the "
                                          "provenance detectors take them then, the behavioural ones every "
                                          "engine.behaviour_every); 0 turns detection off."),
    max_body_bytes: int = typer.Option(64 << 20, "--max-body-bytes", help="Largest request body (after gunzip)."),
    checkpoint_mb: int = typer.Option(256, "--checkpoint-mb", help="Write-ahead log size at which DuckDB folds "
                                      "it into the store (inside a commit: a pause for the requests waiting on "
                                      "it); larger means rarer pauses and a longer replay after a crash."),
    max_pending_records: int = typer.Option(500_000, "--max-pending-records",
                                            help="Records queued before new batches get 429."),
    max_group_records: int = typer.Option(20_000, "--max-group-records", min=1,
                                          help="Most records one commit joins from concurrent requests."),
    data_dir: Optional[str] = typer.Option(None, "--data-dir", help="Where scope runs write manifests and reports "
                                           "(default: STORE.server/)."),
    keys_jwks: list[str] = typer.Option([], "--keys-jwks", help="JWKS for the key-hygiene page (repeatable)."),
    keys_inventory: list[str] = typer.Option([], "--keys-inventory", help="Key owners file (repeatable)."),
    keys_hr: list[str] = typer.Option([], "--keys-hr", help="HR departures CSV (repeatable)."),
    drill_report: Optional[str] = typer.Option(None, "--drill-report", help="The last 'breachwatch drill --json' "
                                               "output, shown on the drill page (default: STORE.drill.json)."),
    log_level: str = typer.Option("info", "--log-level", help="Uvicorn log level."),
) -> None:
    """Serve HTTP ingest, the API and the dashboard; ingest watched folders; detect continuously.

    One server per store: it is the store's only writer. Stop it with SIGTERM (queued batches are
    committed first).
    """
    import os

    import uvicorn

    from breachwatch.server.app import create_app
    from breachwatch.server.config import ServerConfig

    cat = catalog or ("breachwatch.yaml" if os.path.exists("breachwatch.yaml") else None)
    cfg = ServerConfig(db=db_path(db), anchor=anchor, catalog=cat, db_key_file=db_key_file, host=host, port=port,
                       tls_cert=tls_cert, tls_key=tls_key, max_body_bytes=max_body_bytes, checkpoint_mb=checkpoint_mb,
                       max_pending_records=max_pending_records, max_group_records=max_group_records,
                       detect_interval_s=detect_interval, watch=list(watch),
                       data_dir=data_dir, keys_jwks=list(keys_jwks), keys_inventory=list(keys_inventory),
                       keys_hr=list(keys_hr), drill_report=drill_report)
    cfg.validate()
    if host not in ("127.0.0.1", "::1", "localhost") and not cfg.tls:
        err_console.print(f"[yellow]warning:[/] listening on {host} without TLS: keys and passwords cross the "
                          "network in clear unless a TLS proxy is in front. Fix: pass --tls-cert and --tls-key.")
    application = create_app(cfg)
    uvicorn.run(application, host=host, port=port, ssl_certfile=tls_cert, ssl_keyfile=tls_key, log_level=log_level,
                workers=1, timeout_graceful_shutdown=30, server_header=False)
