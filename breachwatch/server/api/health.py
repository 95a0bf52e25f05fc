"""Liveness, health and Prometheus metrics."""
from __future__ import annotations

import time
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import PlainTextResponse

from breachwatch.server import queries
from breachwatch.server.api.common import responses
from breachwatch.server.api.models import Health, Liveness, Verification
from breachwatch.server.auth import client_of, ctx_of, require
from breachwatch.server.context import Principal

router = APIRouter(tags=["health"])


@router.get("/healthz", response_model=Liveness, openapi_extra={"security": []})
def healthz() -> dict[str, str]:
    """Liveness for load balancers and systemd: no details, no key needed."""
    return {"status": "ok"}


@router.get("/v1/health", response_model=Health, responses=responses())
def health(request: Request, who: Principal = require("metrics:read")) -> dict[str, Any]:
    """The writer, detection and watched folders, and the store's size."""
    ctx = ctx_of(request)
    with ctx.store.reading() as cur:
        counts = queries.store_counts(cur)
    w = ctx.writer
    degraded = bool(w.last_error or ctx.detection.last_error or ctx.watcher.last_error)
    return {"status": "degraded" if degraded else "ok", "store": ctx.config.db, "encrypted": ctx.store.encrypted,
            **counts, "ingest": {"pending_records": w.pending, "commits": w.commits, "last_error": w.last_error},
            "detection": ctx.detection.status(), "watch": ctx.watcher.status(),
            "uptime_s": round(time.time() - ctx.started_at, 1)}


@router.get("/v1/verify", response_model=Verification, responses=responses())
def verify(request: Request, who: Principal = require("store:verify")) -> dict[str, Any]:
    """Recompute the batch chain and compare it with the anchor, as `breachwatch verify` does.

    It runs on the writer, between commits, so no batch lands while the chain is read: ingest waits for
    it (about a minute per 10 million events; requests over the queue's limit get 429 meanwhile)."""
    from breachwatch.store.chain import verify as verify_chain
    ctx = ctx_of(request)
    rep = ctx.writer.run_job(lambda ing: verify_chain(ing.con, ctx.config.db, ctx.config.anchor)).result()
    ctx.audit(who, "store.verify", resource="store", client=client_of(request),
              detail={"ok": rep.ok, "problem": rep.problem, "links": rep.links})
    return dict(rep.__dict__)


@router.get("/metrics", response_class=PlainTextResponse,
            responses=responses({200: {"description": "Prometheus text format.", "content": {"text/plain": {}}}}))
def metrics(request: Request, who: Principal = require("metrics:read")) -> PlainTextResponse:
    """Counters and histograms in the Prometheus text format (scrape with any key)."""
    return PlainTextResponse(ctx_of(request).metrics.render(), media_type="text/plain; version=0.0.4")
