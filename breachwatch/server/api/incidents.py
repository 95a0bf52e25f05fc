"""Incidents (Contract 5), their lifecycle, alerts and entity histories."""
from __future__ import annotations

from typing import Any, Literal, Optional

from fastapi import APIRouter, Path, Query, Request

from breachwatch.server.api.common import CONFLICT, NOT_FOUND, responses
from breachwatch.server.api.models import (Alert, BlastRadius, EntityHistory, FalsePositive, Incident,
                                           IncidentDetail, LifecycleNote, LiftSuppression, Severity, Status,
                                           Suppression, SuppressionLifted, Timeline)
from breachwatch.server.auth import ApiError, audited, client_of, ctx_of, require
from breachwatch.server.context import Principal
from breachwatch.server import queries

router = APIRouter(tags=["incidents"])
IncidentId = Path(..., min_length=1, max_length=64, description="Incident id, e.g. INC-0001.")


def _incident_or_404(cur: Any, incident_id: str) -> dict[str, Any]:
    from breachwatch.incidents.store import get_incident
    inc = get_incident(cur, incident_id)
    if inc is None:
        now = queries.merged_into(cur, incident_id)
        if now is not None:  # folded into another incident: one attack, one incident
            raise ApiError(404, "merged", f"incident '{incident_id}' was merged into '{now}', found to be the "
                           f"same attack. Fix: use /v1/incidents/{now}.", {"Location": f"/v1/incidents/{now}"})
        raise ApiError(404, "not_found", f"incident '{incident_id}' does not exist. Fix: list incidents with "
                       "GET /v1/incidents.")
    return inc


def list_filtered(cur: Any, status: list[str] | None, min_severity: str | None, detector: str | None,
                  limit: int, offset: int) -> list[dict[str, Any]]:
    from breachwatch.incidents.store import list_incidents
    rows = list_incidents(cur, statuses=status or None, min_severity=min_severity)
    if detector:
        rows = [r for r in rows if detector in r["detectors"]]
    return rows[offset:offset + limit]


@router.get("/v1/incidents", response_model=list[Incident], responses=responses())
def incidents(request: Request, status: Optional[list[Status]] = Query(None, description="Repeatable."),
              min_severity: Optional[Severity] = None,
              detector: Optional[str] = Query(None, max_length=100),
              limit: int = Query(100, ge=1, le=1000), offset: int = Query(0, ge=0),
              who: Principal = require("incidents:read")) -> list[dict[str, Any]]:
    """Incidents, newest detection first (the objects `breachwatch incidents --json` prints)."""
    with ctx_of(request).store.reading() as cur:
        rows = list_filtered(cur, list(status) if status else None, min_severity, detector, limit, offset)
    audited(request, who, "incidents.list", "incidents", count=len(rows))
    return rows


@router.get("/v1/incidents/{incident_id}", response_model=IncidentDetail, responses=responses(NOT_FOUND))
def incident(request: Request, incident_id: str = IncidentId,
             who: Principal = require("incidents:read")) -> dict[str, Any]:
    """One incident with its evidence, alerts and lifecycle history."""
    from breachwatch.incidents.store import incident_detail
    with ctx_of(request).store.reading() as cur:
        _incident_or_404(cur, incident_id)
        detail = incident_detail(cur, incident_id)
    audited(request, who, "incident.view", f"incident/{incident_id}")
    return detail  # type: ignore[return-value]


@router.get("/v1/incidents/{incident_id}/timeline", response_model=Timeline, responses=responses(NOT_FOUND))
def timeline(request: Request, incident_id: str = IncidentId,
             who: Principal = require("incidents:read")) -> dict[str, Any]:
    """The incident's events and subjects read per time bucket."""
    with ctx_of(request).store.reading() as cur:
        _incident_or_404(cur, incident_id)
        return queries.incident_timeline(cur, incident_id)


@router.get("/v1/incidents/{incident_id}/blast-radius", response_model=BlastRadius, responses=responses(NOT_FOUND))
def blast_radius(request: Request, incident_id: str = IncidentId,
                 who: Principal = require("incidents:read")) -> dict[str, Any]:
    """Distinct people per personal-data field in the incident's own events."""
    ctx = ctx_of(request)
    with ctx.store.reading() as cur:
        _incident_or_404(cur, incident_id)
        out = queries.blast_radius(cur, incident_id, ctx.catalog)
    audited(request, who, "incident.blast_radius", f"incident/{incident_id}")
    return out


def _lifecycle(request: Request, who: Principal, incident_id: str, action: str, **kwargs: Any) -> dict[str, Any]:
    from breachwatch.incidents import lifecycle
    ctx = ctx_of(request)
    fn = {"acknowledge": lifecycle.acknowledge, "resolve": lifecycle.resolve,
          "false_positive": lifecycle.false_positive}[action]
    with ctx.store.changing() as cur:
        _incident_or_404(cur, incident_id)
        try:
            out = fn(cur, incident_id, by=f"{who.actor} ({who.name})", **kwargs)
        except ValueError as e:
            raise ApiError(409, "conflict", str(e)) from None
    ctx.audit(who, f"incident.{action}", resource=f"incident/{incident_id}", client=request.client.host
              if request.client else None, detail={k: v for k, v in kwargs.items() if k != "note"} or None)
    return out


@router.post("/v1/incidents/{incident_id}/acknowledge", response_model=Incident,
             responses=responses(NOT_FOUND, CONFLICT))
def acknowledge(request: Request, body: LifecycleNote, incident_id: str = IncidentId,
                who: Principal = require("incidents:act")) -> dict[str, Any]:
    return _lifecycle(request, who, incident_id, "acknowledge", note=body.note)


@router.post("/v1/incidents/{incident_id}/resolve", response_model=Incident, responses=responses(NOT_FOUND, CONFLICT))
def resolve(request: Request, body: LifecycleNote, incident_id: str = IncidentId,
            who: Principal = require("incidents:act")) -> dict[str, Any]:
    return _lifecycle(request, who, incident_id, "resolve", note=body.note)


@router.post("/v1/incidents/{incident_id}/false-positive", response_model=Incident,
             responses=responses(NOT_FOUND, CONFLICT))
def false_positive(request: Request, body: FalsePositive, incident_id: str = IncidentId,
                   who: Principal = require("incidents:act")) -> dict[str, Any]:
    """Close as a false positive: suppresses its patterns until `expires`, with the reason recorded."""
    return _lifecycle(request, who, incident_id, "false_positive", scope=body.scope, expires=body.expires,
                      reason=body.reason)


@router.get("/v1/suppressions", response_model=list[Suppression], responses=responses())
def suppressions(request: Request, active: bool = Query(False, description="Only those still in force."),
                 who: Principal = require("incidents:read")) -> list[dict[str, Any]]:
    """Suppressions set by marking incidents false positives: who set them, why, until when, their hits."""
    from breachwatch.incidents.suppression import list_suppressions
    with ctx_of(request).store.reading() as cur:
        return list_suppressions(cur, include_inactive=not active)


@router.post("/v1/suppressions/{suppression_id}/lift", response_model=SuppressionLifted,
             responses=responses(NOT_FOUND, CONFLICT))
def lift_suppression(request: Request, body: LiftSuppression,
                     suppression_id: str = Path(..., min_length=1, max_length=64),
                     who: Principal = require("incidents:act")) -> dict[str, Any]:
    """Lift a suppression (recorded with who and why): matching alerts raise incidents again."""
    from breachwatch.incidents import lifecycle
    ctx = ctx_of(request)
    with ctx.store.changing() as cur:
        if not cur.execute("SELECT count(*) FROM suppressions WHERE suppression_id = ?",
                           [suppression_id]).fetchone()[0]:
            raise ApiError(404, "not_found", f"suppression '{suppression_id}' does not exist. Fix: list them "
                           "with GET /v1/suppressions.")
        try:
            out = lifecycle.unsuppress(cur, suppression_id, by=f"{who.actor} ({who.name})", reason=body.reason)
        except ValueError as e:
            raise ApiError(409, "conflict", str(e)) from None
    ctx.audit(who, "suppression.lift", resource=f"suppression/{suppression_id}",
              client=client_of(request))
    return out


@router.get("/v1/alerts", response_model=list[Alert], responses=responses())
def alerts(request: Request,
           status: Optional[list[Literal["raised", "shadow", "held", "suppressed", "finding"]]] = Query(None),
           limit: int = Query(500, ge=1, le=5000),
           who: Principal = require("alerts:read")) -> list[dict[str, Any]]:
    """Detector alerts, including those that opened no incident (shadow, held, suppressed)."""
    from breachwatch.incidents.store import list_alerts
    with ctx_of(request).store.reading() as cur:
        rows = list_alerts(cur, statuses=list(status) if status else None)[-limit:]
    audited(request, who, "alerts.list", "alerts", count=len(rows))
    return rows


@router.get("/v1/entities/{etype}/{value}", response_model=EntityHistory, responses=responses(NOT_FOUND))
def entity(request: Request,
           etype: Literal["principal", "token", "key", "ip", "fingerprint", "country", "asn", "user_agent"],
           value: str = Path(..., min_length=1, max_length=512),
           who: Principal = require("entities:read")) -> dict[str, Any]:
    """An entity's activity over time with its learned baseline, and the incidents it appears in."""
    with ctx_of(request).store.reading() as cur:
        hist = queries.entity_history(cur, etype, value)
    if hist is None:
        raise ApiError(404, "not_found", f"no event has {etype} '{value}'. Fix: check the value.")
    audited(request, who, "entity.view", f"entity/{etype}/{value}")
    return hist
