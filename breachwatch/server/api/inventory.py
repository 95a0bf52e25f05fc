"""The data map, key-hygiene findings and the last drill's scores."""
from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any, Optional

import orjson
from fastapi import APIRouter, Query, Request

from breachwatch.server.api.common import CONFLICT, responses
from breachwatch.server.api.models import (DatamapEntry, DiscoverRunStored, DiscoverRunUpload, Document,
                                          StoreScanReport, StoreScanRequest)
from breachwatch.server.auth import ApiError, client_of, ctx_of, require
from breachwatch.server.context import Principal, ServerContext
from breachwatch.server.queries import has_table, iso

router = APIRouter(tags=["inventory"])
_cache: dict[str, tuple[float, dict[str, Any]]] = {}
_cache_lock = threading.Lock()
KEY_AUDIT_TTL_S = 60.0


def datamap(ctx: ServerContext, source: str | None = None, min_confidence: float = 0.0) -> list[dict[str, Any]]:
    from breachwatch.discover.datamap import list_datamap
    with ctx.store.reading() as cur:
        if not has_table(cur, "datamap"):
            return []
        rows = list_datamap(cur, source=source, min_confidence=min_confidence)
    for r in rows:
        r["scanned_at"] = iso(r["scanned_at"]) if r.get("scanned_at") else None
        r["signals"] = list(r["signals"]) if r.get("signals") is not None else None
    return rows


def key_findings(ctx: ServerContext) -> dict[str, Any]:
    """`breachwatch keys audit` over the store (plus the JWKS, inventory and HR files the server was given)."""
    from breachwatch.keys.audit import AuditPolicy, run_audit
    with _cache_lock:
        hit = _cache.get(f"keys:{ctx.config.db}")
        if hit and time.monotonic() - hit[0] < KEY_AUDIT_TTL_S:
            return hit[1]
    cfg = ctx.config
    with ctx.store.reading() as cur:
        report = run_audit(jwks=list(cfg.keys_jwks), inventory_files=list(cfg.keys_inventory),
                           hr_files=list(cfg.keys_hr), con=cur, store_label=cfg.db, scan_paths=[],
                           history_repos=[], policy=AuditPolicy())
    doc = {"available": True, "recorded_at": iso(report.now) if hasattr(report, "now") else None,
           "data": orjson.loads(orjson.dumps(report.as_dict(), default=str))}
    with _cache_lock:
        _cache[f"keys:{ctx.config.db}"] = (time.monotonic(), doc)
    return doc


def drill_scores(ctx: ServerContext) -> dict[str, Any]:
    """The last drill's JSON (Contract 4), from `--drill-report` or, without it, STORE.drill.json."""
    path = ctx.config.drill_report_path
    if not Path(path).is_file():
        return {"available": False, "recorded_at": None, "data": None}
    p = Path(path)
    return {"available": True, "recorded_at": iso(_mtime(p)), "data": orjson.loads(p.read_bytes())}


def _mtime(p: Path) -> Any:
    from datetime import datetime, timezone
    return datetime.fromtimestamp(p.stat().st_mtime, timezone.utc).replace(tzinfo=None)


@router.get("/v1/datamap", response_model=list[DatamapEntry], responses=responses())
def get_datamap(request: Request, source: Optional[str] = Query(None, min_length=1, max_length=500),
                min_confidence: float = Query(0.0, ge=0.0, le=1.0),
                who: Principal = require("datamap:read")) -> list[dict[str, Any]]:
    """Where personal data lives, as `breachwatch discover` found it."""
    return datamap(ctx_of(request), source, min_confidence)


@router.get("/v1/keys/findings", response_model=Document, responses=responses())
def get_key_findings(request: Request, who: Principal = require("keyfindings:read")) -> dict[str, Any]:
    """Signing-key and token hygiene findings (the `breachwatch keys audit` report)."""
    return key_findings(ctx_of(request))


@router.get("/v1/drill", response_model=Document, responses=responses())
def get_drill(request: Request, who: Principal = require("drill:read")) -> dict[str, Any]:
    """The last drill's scores (Contract 4 JSON)."""
    return drill_scores(ctx_of(request))


@router.post("/v1/datamap/store-scan", response_model=StoreScanReport, responses=responses())
def post_store_scan(request: Request, body: StoreScanRequest,
                    who: Principal = require("datamap:write")) -> dict[str, Any]:
    """Scan the events this server holds for personal data that leaked into URLs, user agents, reasons or
    attributes (`breachwatch discover --store --server`), into the data map. Detection and analysts' changes
    wait while it runs: bound it with `max_seconds` or `max_rows`; an unfinished scan resumes next time."""
    from breachwatch.discover.engine import Analyzer
    from breachwatch.discover.recognizers.registry import load_recognizers
    from breachwatch.discover.scan import Budget, scan_event_store
    ctx = ctx_of(request)
    with ctx.store.changing() as cur:
        report = scan_event_store(cur, ctx.config.db, budget=Budget(body.sample, body.max_rows, body.max_seconds),
                                  analyzer=Analyzer(load_recognizers(None)), fresh=body.fresh,
                                  threshold=body.min_confidence)
    found = sum(len(t.findings) for t in report.tables)
    ctx.audit(who, "datamap.scan_store", resource=f"datamap/{report.source}", client=client_of(request),
              detail={"run_id": report.run_id, "status": report.status, "findings": found})
    return report.to_dict()


@router.post("/v1/datamap/runs", response_model=DiscoverRunStored, status_code=201, responses=responses(CONFLICT))
def post_discover_run(request: Request, body: DiscoverRunUpload,
                      who: Principal = require("datamap:write")) -> dict[str, Any]:
    """Store a scan run made by `breachwatch discover --server`: its tables' findings replace theirs."""
    from breachwatch.discover.datamap import import_run
    ctx = ctx_of(request)
    try:
        with ctx.store.changing() as cur:
            counts = import_run(cur, body.model_dump())
    except ValueError as e:
        raise ApiError(409, "conflict", str(e)) from None
    ctx.audit(who, "datamap.import", resource=f"datamap/{body.run.source}", client=client_of(request),
              detail={"run_id": body.run.run_id, **counts})
    return {"run_id": body.run.run_id, **counts}
