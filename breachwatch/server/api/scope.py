"""Scope: expansion proposals, accepting or rejecting them, manifests and reports; the breach lookup."""
from __future__ import annotations

import mimetypes
from datetime import datetime
from pathlib import Path as FsPath
from typing import Any, Literal, Optional

import duckdb

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import FileResponse, Response

from breachwatch.server.api.common import CONFLICT, NOT_FOUND, responses
from breachwatch.server.api.incidents import IncidentId, _incident_or_404
from breachwatch.server.api.models import (AddressBookLoaded, Awareness, AwareAtChange, DutyDone, DutyRecorded, Error,
                                           LookupRequest, ScopeDecision, ScopeRun, ScopeStep, SubjectExposures)
from breachwatch.server.auth import ApiError, audited, client_of, ctx_of, require
from breachwatch.server.context import ANONYMOUS, Principal, ServerContext
from breachwatch.server.queries import iso

router = APIRouter(tags=["scope"])
RunId = Path(..., min_length=1, max_length=64)


def proposals(ctx: ServerContext, cur: Any, incident_id: str) -> list[dict[str, Any]]:
    from breachwatch.scope.expansion import propose_expansions
    inc = _incident_or_404(cur, incident_id)
    return [s.as_dict() for s in propose_expansions(cur, inc, catalog=ctx.catalog)]


def _pdf_possible() -> bool:
    from breachwatch.scope.reports.render import FontMissing, font_paths
    try:
        font_paths()
        return True
    except FontMissing:
        return False


def build_scope(ctx: ServerContext, who: Principal, incident_id: str, decision: ScopeDecision,
                client: str | None) -> dict[str, Any]:
    """Run scope with the given decisions; manifest and reports go under the server's data folder."""
    from breachwatch.scope.run import run_scope
    with ctx.store.changing() as cur:
        inc = _incident_or_404(cur, incident_id)
        version = cur.execute("SELECT coalesce(max(version), 0) + 1 FROM scope_runs WHERE incident_id = ?",
                              [incident_id]).fetchall()[0][0]
        out = ctx.data_dir / "scope" / incident_id / f"v{version}"
        try:
            result = run_scope(cur, inc, out, catalog=ctx.catalog, accept=decision.accept, reject=decision.reject,
                               accept_all=decision.accept_all, created_by=f"{who.actor} ({who.name})",
                               pdf=_pdf_possible())
        except ValueError as e:
            raise ApiError(409, "conflict", str(e)) from None
    ctx.audit(who, "manifest.build", resource=f"incident/{incident_id}", client=client,
              detail={"accept": decision.accept, "reject": decision.reject, "accept_all": decision.accept_all,
                      "version": result.version, "subjects": result.manifest.summary["subjects"]})
    return run_row(ctx, result.manifest.summary["run_id"])  # type: ignore[return-value]


_RUN_COLS = ("run_id", "incident_id", "version", "created_at", "created_by", "subjects", "members", "non_members",
             "pairs", "out_dir")


def _files(out_dir: str | None) -> list[str]:
    if not out_dir or not FsPath(out_dir).is_dir():
        return []
    root = FsPath(out_dir)
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


def _run_dict(r: tuple) -> dict[str, Any]:
    d = dict(zip(_RUN_COLS, r))
    return {"run_id": d["run_id"], "incident": d["incident_id"], "version": d["version"],
            "created_at": iso(d["created_at"]), "created_by": d["created_by"], "subjects": d["subjects"],
            "members": d["members"], "non_members": d["non_members"], "pairs": d["pairs"],
            "files": _files(d["out_dir"])}


def run_row(ctx: ServerContext, run_id: str) -> dict[str, Any] | None:
    with ctx.store.reading() as cur:
        r = cur.execute(f"SELECT {', '.join(_RUN_COLS)} FROM scope_runs WHERE run_id = ?", [run_id]).fetchone()
    return _run_dict(r) if r else None


def runs_of(ctx: ServerContext, cur: Any, incident_id: str) -> list[dict[str, Any]]:
    return [_run_dict(r) for r in cur.execute(f"SELECT {', '.join(_RUN_COLS)} FROM scope_runs WHERE incident_id = ? "
                                              "ORDER BY version DESC", [incident_id]).fetchall()]


def run_file(ctx: ServerContext, run_id: str, name: str) -> FsPath:
    """A file a scope run wrote, confined to that run's folder."""
    with ctx.store.reading() as cur:
        r = cur.execute("SELECT out_dir FROM scope_runs WHERE run_id = ?", [run_id]).fetchone()
    if r is None or not r[0]:
        raise ApiError(404, "not_found", f"scope run '{run_id}' does not exist. Fix: list runs with "
                       "GET /v1/incidents/{id}/scope/runs.")
    root = FsPath(r[0]).resolve()
    target = (root / name).resolve()
    if not target.is_relative_to(root) or not target.is_file():
        raise ApiError(404, "not_found", f"scope run '{run_id}' has no file '{name}'. Fix: use a name from its "
                       "'files' list.")
    return target


def download_action(name: str) -> str:
    return "manifest.download" if "manifest" in name or name.startswith("exposures") else "report.download"


@router.get("/v1/incidents/{incident_id}/scope/proposals", response_model=list[ScopeStep],
            responses=responses(NOT_FOUND))
def get_proposals(request: Request, incident_id: str = IncidentId,
                  who: Principal = require("scope:read")) -> list[dict[str, Any]]:
    """Each step that would widen the scope, with its evidence and the people it adds."""
    ctx = ctx_of(request)
    with ctx.store.reading() as cur:
        steps = proposals(ctx, cur, incident_id)
    audited(request, who, "scope.proposals", f"incident/{incident_id}", steps=len(steps))
    return steps


@router.post("/v1/incidents/{incident_id}/scope", response_model=ScopeRun, status_code=201,
             responses=responses(NOT_FOUND, CONFLICT))
def post_scope(request: Request, body: ScopeDecision, incident_id: str = IncidentId,
               who: Principal = require("scope:decide")) -> dict[str, Any]:
    """Accept or reject proposals and build the manifest and reports (a new version each time)."""
    return build_scope(ctx_of(request), who, incident_id, body, client_of(request))


def _instant(text: str) -> datetime:
    from breachwatch.scope.deadlines import parse_time
    try:
        return parse_time(text, "at")
    except ValueError as e:
        raise ApiError(422, "invalid_request", str(e)) from None


@router.post("/v1/incidents/{incident_id}/aware-at", response_model=Awareness, responses=responses(NOT_FOUND))
def post_aware_at(request: Request, body: AwareAtChange, incident_id: str = IncidentId,
                  who: Principal = require("scope:decide")) -> dict[str, Any]:
    """Move the time the company became aware, which the legal deadlines run from; kept with its reason."""
    from breachwatch.scope.deadlines import set_aware_at
    ctx = ctx_of(request)
    with ctx.store.changing() as cur:
        inc = _incident_or_404(cur, incident_id)
        at = _instant(body.at)
        aw = set_aware_at(cur, inc, at, reason=body.reason, by=f"{who.actor} ({who.name})")
    ctx.audit(who, "scope.aware_at", resource=f"incident/{incident_id}", client=client_of(request),
              detail={"aware_at": iso(aw.aware_at)})
    return {"incident": incident_id, "aware_at": iso(aw.aware_at), "history": aw.history}


@router.post("/v1/incidents/{incident_id}/duties", response_model=DutyRecorded, status_code=201,
             responses=responses(NOT_FOUND))
def post_duty(request: Request, body: DutyDone, incident_id: str = IncidentId,
              who: Principal = require("scope:decide")) -> dict[str, Any]:
    """Record that a report was filed or notices were sent, so reports say on time or late."""
    from breachwatch.scope.deadlines import record_duty_done
    ctx = ctx_of(request)
    with ctx.store.changing() as cur:
        _incident_or_404(cur, incident_id)
        at = _instant(body.at)
        record_duty_done(cur, incident_id, body.duty, at, by=f"{who.actor} ({who.name})", note=body.note)
    ctx.audit(who, "scope.duty_done", resource=f"incident/{incident_id}", client=client_of(request),
              detail={"duty": body.duty})
    return {"incident": incident_id, "duty": body.duty, "done_at": iso(at.replace(tzinfo=None))}


_SNAPSHOT_BODY = {"content": {"text/csv": {"schema": {"type": "string"}},
                               "application/vnd.apache.parquet": {"schema": {"type": "string", "format": "binary"}}},
                   "required": True}


@router.post("/v1/address-book", response_model=AddressBookLoaded, status_code=201,
             openapi_extra={"requestBody": _SNAPSHOT_BODY},
             responses=responses({413: {"model": Error, "description": "Over the size limit; nothing loaded."},
                                  422: {"model": Error, "description": "Not a snapshot this takes; nothing loaded."}}))
async def post_address_book(request: Request,
                            source: str = Query(..., min_length=1, max_length=500,
                                                description="The snapshot's name (its file): replace matches it."),
                            fmt: Literal["csv", "parquet"] = Query("csv", alias="format"),
                            tz: Optional[str] = Query(None, max_length=64,
                                                      description="Zone for times written without an offset."),
                            replace: bool = Query(False, description="Replace rows loaded earlier under source."),
                            who: Principal = require("scope:decide")) -> dict[str, Any]:
    """Load an address-book snapshot (member_id, recipient_id, valid_from[, valid_to, entry_id, fields]),
    which scoping uses to find the recipients in each member's address book at the time of a read."""
    import tempfile

    from starlette.concurrency import run_in_threadpool

    from breachwatch.scope.address_book import load_snapshots
    ctx = ctx_of(request)
    body = await request.body()
    if len(body) > ctx.config.max_body_bytes:
        raise ApiError(413, "too_large", f"the snapshot is larger than {ctx.config.max_body_bytes} bytes. Fix: "
                       "split it, or load it with 'breachwatch scope address-book' while the server is stopped.")

    def load() -> int:
        with tempfile.TemporaryDirectory(prefix="bw-addressbook-") as tmp:
            path = FsPath(tmp) / f"snapshot.{fmt}"
            path.write_bytes(body)
            try:
                with ctx.store.changing() as cur:
                    return load_snapshots(cur, path, tz=tz, replace=replace, source=source)
            except (ValueError, duckdb.Error) as e:  # named by its source, not by the server's scratch file
                raise ApiError(422, "invalid_snapshot", str(e).replace(str(path), source)) from None
    rows = await run_in_threadpool(load)
    ctx.audit(who, "address_book.load", resource=f"address_book/{source}", client=client_of(request),
              detail={"rows": rows, "replace": replace})
    return {"source": source, "rows": rows}


@router.get("/v1/incidents/{incident_id}/scope/runs", response_model=list[ScopeRun], responses=responses(NOT_FOUND))
def get_runs(request: Request, incident_id: str = IncidentId,
             who: Principal = require("scope:read")) -> list[dict[str, Any]]:
    ctx = ctx_of(request)
    with ctx.store.reading() as cur:
        _incident_or_404(cur, incident_id)
        return runs_of(ctx, cur, incident_id)


@router.get("/v1/scope/runs/{run_id}/files/{name:path}", response_class=FileResponse,
            responses=responses(NOT_FOUND, {200: {"description": "The file (CSV, Parquet, JSON, Markdown, HTML, "
                                                                 "PDF).", "content": {"application/octet-stream": {}}}}))
def get_run_file(request: Request, run_id: str = RunId, name: str = Path(..., min_length=1, max_length=300),
                 who: Principal = require("scope:read")) -> FileResponse:
    """Download a manifest, export or report a scope run wrote."""
    ctx = ctx_of(request)
    target = run_file(ctx, run_id, name)
    audited(request, who, download_action(name), f"scope_run/{run_id}/{name}")
    return FileResponse(target, media_type=mimetypes.guess_type(target.name)[0] or "application/octet-stream",
                        filename=target.name)


@router.get("/v1/subjects/{subject_id}/exposures", response_model=SubjectExposures, responses=responses())
def subject_exposures(request: Request, subject_id: str = Path(..., min_length=1, max_length=256),
                      who: Principal = require("subjects:lookup")) -> dict[str, Any]:
    """What the latest scope of each incident says one person lost (for a support or DPO desk)."""
    from breachwatch.scope.lookup import exposures_of
    ctx = ctx_of(request)
    audited(request, who, "subject.lookup", f"subject/{subject_id}")
    with ctx.store.reading() as cur:
        return {"subject_id": subject_id, "exposures": exposures_of(cur, subject_id, ctx.catalog)}


@router.post("/v1/lookup", tags=["lookup"], openapi_extra={"security": []},
             responses={200: {"description": "What of this person leaked.", "content": {"application/json": {}}},
                        400: {"model": Error, "description": "The body is not JSON."},
                        401: {"model": Error, "description": "The token is not valid (one answer for every "
                                                             "reason)."},
                        429: {"model": Error, "description": "Too many lookups."},
                        503: {"model": Error, "description": "The lookup is not configured."}})
def lookup(request: Request, body: LookupRequest) -> Response:
    """The customer breach lookup: a person holding the signed token the company sent them sees what leaked.

    No API key: the token is the credential. Every call is audited.
    """
    from breachwatch.scope.lookup import LookupKeyError, RateLimits, load_key
    from breachwatch.scope.lookup import lookup as do_lookup
    ctx = ctx_of(request)
    try:
        key = load_key(ctx.catalog)
    except LookupKeyError as e:
        raise ApiError(503, "not_configured", str(e)) from None
    with ctx.store.changing() as cur:
        resp = do_lookup(cur, body.token, key=key, catalog=ctx.catalog, subject_id=body.subject_id,
                         client=client_of(request), limits=RateLimits.from_catalog(ctx.catalog))
    ctx.audit(ANONYMOUS, "lookup", resource="lookup", client=client_of(request),
              outcome="ok" if resp.status == 200 else "denied", detail={"status": resp.status})
    return Response(resp.body, status_code=resp.status, media_type="application/json")
