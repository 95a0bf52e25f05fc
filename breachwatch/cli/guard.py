"""`breachwatch guard ...`: the token-provenance check for the API gateway, and its ledger."""
from __future__ import annotations

import functools
import os
import sys
import time
from pathlib import Path
from typing import Any, Callable, Optional, TypeVar

import typer

from breachwatch.cli.common import (EXIT_FINDING, DbOption, JsonOption, db_path, err_console, fail, handle_errors,
                                    out_console, print_json)
from breachwatch.cli.main import app

guard_app = typer.Typer(help="Token-provenance check for the API gateway (Envoy ext_authz, nginx auth_request).",
                        no_args_is_help=True)
ledger_app = typer.Typer(help="The issuance ledger: fill it from events, revoke tokens, retire keys.",
                         no_args_is_help=True)
guard_app.add_typer(ledger_app, name="ledger")
app.add_typer(guard_app, name="guard")

F = TypeVar("F", bound=Callable[..., Any])


def ledger_errors(fn: F) -> F:
    """An unreachable Redis is unusable input (exit 2) with a fix, not a traceback."""
    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        import redis as redis_lib

        from breachwatch.guard.ledger import LedgerUnavailable
        try:
            return fn(*args, **kwargs)
        except (LedgerUnavailable, redis_lib.RedisError) as e:
            fail(f"{e}. Fix: start Redis or pass the ledger's address with --redis (or BREACHWATCH_GUARD_REDIS).")
    return wrapper  # type: ignore[return-value]


ConfigOption = typer.Option(None, "--config", envvar="BREACHWATCH_GUARD_CONFIG",
                            help="guard.yaml policy file (default: shadow mode with safe defaults).")
JwksOption = typer.Option(None, "--jwks", envvar="BREACHWATCH_GUARD_JWKS", help="Public JWKS: a file or an http(s) URL.")
RedisOption = typer.Option(None, "--redis", envvar="BREACHWATCH_GUARD_REDIS",
                           help="Ledger Redis URL (default redis://127.0.0.1:6379/0).")
PrefixOption = typer.Option(None, "--prefix", help="Ledger key prefix (default bw:guard:).")


def _config(config: str | None, **overrides: object):  # -> GuardConfig
    from breachwatch.guard.config import load_guard_config, parse_time_with_offset

    cfg = load_guard_config(config)
    if overrides.get("enforce_from") is not None:
        overrides["enforce_from"] = parse_time_with_offset(overrides["enforce_from"], "--enforce-from", "enforce_from")
    return cfg.replace(**overrides)


def _ledger(config: str | None, redis: str | None, prefix: str | None):  # -> IssuanceLedger
    from breachwatch.guard.ledger import IssuanceLedger

    cfg = _config(config, redis_url=redis, redis_prefix=prefix)
    return IssuanceLedger(cfg.redis_url, cfg.redis_prefix, max(cfg.redis_timeout_ms, 2000), cfg.leeway_s)


def _api_token(token_file: str | None) -> str | None:
    if token_file:
        p = Path(token_file)
        if not p.exists():
            raise FileNotFoundError(f"{p}: API token file not found. Fix: pass an existing file to --api-token-file.")
        return p.read_text("utf-8").strip() or None
    return os.environ.get("BREACHWATCH_GUARD_API_TOKEN") or None


@guard_app.command("serve")
@handle_errors
def serve(
    config: Optional[str] = ConfigOption,
    jwks: Optional[str] = JwksOption,
    redis: Optional[str] = RedisOption,
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on."),
    port: int = typer.Option(9191, "--port", help="Port to listen on."),
    mode: Optional[str] = typer.Option(None, "--mode", help="shadow or enforce (overrides the config)."),
    enforce_from: Optional[str] = typer.Option(None, "--enforce-from", help="Cut-over time, RFC 3339 with offset."),
    ledger_only: bool = typer.Option(False, "--ledger-only",
                                     help="Skip signature checks (the gateway verifies them: jwt_authn, Kong)."),
    spool: Optional[str] = typer.Option(None, "--spool", help="Folder for token_denied NDJSON (default ./guard-spool)."),
    api_token_file: Optional[str] = typer.Option(None, "--api-token-file",
                                                 help="File holding the write API's bearer token "
                                                      "(or env BREACHWATCH_GUARD_API_TOKEN); without one the "
                                                      "write API is off."),
    log_level: str = typer.Option("warning", "--log-level", help="Uvicorn log level."),
) -> None:
    """Serve the check: /envoy/ext_authz/..., /nginx/auth, /v1/check, the ledger write API, /metrics."""
    import uvicorn

    from breachwatch.guard.http_app import build_service, create_app

    cfg = _config(config, jwks=jwks, redis_url=redis, mode=mode, enforce_from=enforce_from,
                  verify_signatures=False if ledger_only else None, spool_dir=spool)
    if cfg.spool_dir is None:
        cfg = cfg.replace(spool_dir="guard-spool")
    service = build_service(cfg, api_token=_api_token(api_token_file))
    enforcing = "enforcing" if service.guard.enforcing(time.time()) else "shadow (denies nothing)"
    err_console.print(f"breachwatch guard on http://{host}:{port}: {enforcing}; {len(service.keyring.snapshot.keys)} "
                      f"keys; ledger {cfg.redis_url}; denials spooled to {cfg.spool_dir}", highlight=False)
    uvicorn.run(create_app(service), host=host, port=port, log_level=log_level, access_log=False,
                loop="auto", http="auto", lifespan="on")


@guard_app.command("check")
@handle_errors
@ledger_errors
def check(
    token: str = typer.Argument(..., help="The bearer token ('-' reads it from standard input)."),
    path: str = typer.Option("/", "--path", help="Request path, for per-route policy."),
    method: str = typer.Option("GET", "--method"),
    config: Optional[str] = ConfigOption,
    jwks: Optional[str] = JwksOption,
    redis: Optional[str] = RedisOption,
    ledger_only: bool = typer.Option(False, "--ledger-only", help="Skip the signature check."),
    as_json: bool = JsonOption,
) -> None:
    """Check one token as the gateway would; exit 1 when it would be denied."""
    from breachwatch.guard.check import Guard
    from breachwatch.guard.decision import REASONS, CheckRequest
    from breachwatch.guard.keyset import KeyRing

    if token == "-":
        token = sys.stdin.read().strip()
    cfg = _config(config, jwks=jwks, redis_url=redis, verify_signatures=False if ledger_only else None)
    if cfg.verify_signatures and cfg.jwks is None:
        fail("no JWKS to verify the signature with. Fix: pass --jwks FILE|URL, or --ledger-only.")
    ring = KeyRing(cfg.jwks, cfg.jwks_refresh_s, cfg.retired_kids)
    ring.load()
    ledger = _ledger(config, redis, None)
    guard = Guard(cfg, ring, ledger)
    guard.refresh_retired()
    d = guard.check(CheckRequest(f"Bearer {token}", method.upper(), path))
    ledger.close()
    out = d.as_dict()
    out["meaning"] = REASONS[d.would_deny or d.reason]
    if as_json:
        print_json(out)
    else:
        verdict = "[green]allow[/]" if d.allow else "[bold red]deny[/]"
        extra = f" (would deny: {d.would_deny})" if d.would_deny else ""
        out_console.print(f"{verdict} {d.reason}{extra}: {out['meaning']}", highlight=False)
        if d.detail:
            out_console.print(f"  {d.detail}", highlight=False)
    if not d.allow or d.would_deny:
        raise typer.Exit(EXIT_FINDING)


@ledger_app.command("load")
@handle_errors
@ledger_errors
def ledger_load(
    paths: Optional[list[str]] = typer.Argument(None, help="Event files or folders (NDJSON/CSV/Parquet). "
                                                "Without any, events are read from the store (--db)."),
    db: Optional[str] = DbOption,
    config: Optional[str] = ConfigOption,
    redis: Optional[str] = RedisOption,
    prefix: Optional[str] = PrefixOption,
    as_json: bool = JsonOption,
) -> None:
    """Fill the ledger from token_issued (and token_revoked, key_retired, key_revoked) events."""
    from breachwatch.guard.loader import LoadSummary, apply_events, events_from_store, scratch_store_from_files
    from breachwatch.store.db import connect

    ledger = _ledger(config, redis, prefix)
    now = time.time()
    summary = LoadSummary()
    try:
        if paths:
            source = ", ".join(paths)
            with scratch_store_from_files(paths, summary) as con:
                apply_events(ledger, events_from_store(con, now, ledger.leeway_s, summary), now, summary)
        else:
            source = db_path(db)
            con = connect(source, read_only=True)
            try:
                apply_events(ledger, events_from_store(con, now, ledger.leeway_s, summary), now, summary)
            finally:
                con.close()
    finally:
        ledger.close()
    result = {"source": source, "ledger": f"{ledger.url} {ledger.prefix}", **summary.as_dict()}
    if as_json:
        print_json(result)
    else:
        out_console.print(f"ledger load from {source}: {summary.recorded} tokens recorded "
                          f"({summary.issued} issuance events, {summary.expired_skipped} already expired), "
                          f"{summary.revoked_tokens} tokens and {summary.revoked_subjects} subjects revoked, "
                          f"{summary.retired_kids} keys retired", highlight=False)
        for reason, n in summary.unusable.items():
            err_console.print(f"  skipped {n}: {reason}", highlight=False)


@ledger_app.command("revoke")
@handle_errors
@ledger_errors
def ledger_revoke(
    token_id: Optional[str] = typer.Option(None, "--token-id", help="The token's jti (or sha256:<hex>)."),
    token: Optional[str] = typer.Option(None, "--token", help="The token itself."),
    subject: Optional[str] = typer.Option(None, "--subject", help="Revoke every token of this subject issued until now."),
    reason: str = typer.Option("revoked", "--reason"),
    config: Optional[str] = ConfigOption,
    redis: Optional[str] = RedisOption,
    prefix: Optional[str] = PrefixOption,
) -> None:
    """Revoke one token, or every current token of a subject."""
    from breachwatch.guard.tokens import parse_token

    if sum(x is not None for x in (token_id, token, subject)) != 1:
        fail("give exactly one of --token-id, --token or --subject.")
    ledger = _ledger(config, redis, prefix)
    try:
        if subject is not None:
            ledger.revoke_subject(subject)
            out_console.print(f"revoked every token of subject {subject} issued until now", highlight=False)
            return
        tid = token_id or parse_token(token or "").token_id
        ledger.revoke(tid, reason)
        out_console.print(f"revoked token {tid}", highlight=False)
    finally:
        ledger.close()


@ledger_app.command("retire-key")
@handle_errors
@ledger_errors
def ledger_retire_key(
    kid: str = typer.Argument(..., help="Key id to retire; tokens it signed are denied from the next reload."),
    config: Optional[str] = ConfigOption,
    redis: Optional[str] = RedisOption,
    prefix: Optional[str] = PrefixOption,
) -> None:
    """Retire a signing key: every guard sharing this ledger denies its tokens within reload_s."""
    ledger = _ledger(config, redis, prefix)
    try:
        ledger.retire_kid(kid)
    finally:
        ledger.close()
    out_console.print(f"retired key {kid}", highlight=False)


@ledger_app.command("stats")
@handle_errors
@ledger_errors
def ledger_stats(
    config: Optional[str] = ConfigOption,
    redis: Optional[str] = RedisOption,
    prefix: Optional[str] = PrefixOption,
    as_json: bool = JsonOption,
) -> None:
    """Count the ledger's live entries."""
    ledger = _ledger(config, redis, prefix)
    try:
        counts = ledger.count()
    finally:
        ledger.close()
    if as_json:
        print_json(counts)
    else:
        out_console.print(", ".join(f"{k.replace('_', ' ')}: {v}" for k, v in counts.items()), highlight=False)
