"""Dashboard pages: log in, overview, incidents, entities, data map, key hygiene, drill, audit trail.

Pages take only the session cookie (never an API key); every form echoes the
session's CSRF token; each page asks for the same permission as the API route
behind the same data, and subject-level views are written to the audit trail.
"""
from __future__ import annotations

import hmac
import secrets
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Optional

import orjson
from fastapi import APIRouter, Form, Request
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from breachwatch.server import accounts, audit, queries
from breachwatch.server.api.incidents import list_filtered
from breachwatch.server.api.inventory import datamap, drill_scores, key_findings
from breachwatch.server.api.models import ScopeDecision
from breachwatch.server.api.scope import build_scope, download_action, proposals, run_file, runs_of
from breachwatch.server.auth import SESSION_COOKIE, ApiError, client_of, ctx_of
from breachwatch.server.context import Principal
from breachwatch.server.dashboard import charts
from breachwatch.server.dashboard.i18n import LANGS, fmt_time, word
from breachwatch.server.roles import allowed

router = APIRouter(include_in_schema=False)
templates = Jinja2Templates(directory=str(Path(__file__).parent / "templates"))
LANG_COOKIE = "bw_lang"
LOGIN_CSRF_COOKIE = "bw_login_csrf"


class NeedLogin(Exception):
    pass


def lang_of(request: Request) -> str:
    q = request.query_params.get("lang")
    if q in LANGS:
        return q
    c = request.cookies.get(LANG_COOKIE)
    if c in LANGS:
        return c
    return "ko" if request.headers.get("accept-language", "").lower().startswith("ko") else "en"


def session_user(request: Request) -> Principal | None:
    token = request.cookies.get(SESSION_COOKIE)
    if not token:
        return None
    ctx = ctx_of(request)
    with ctx.store.reading() as cur:
        s = accounts.resume_session(cur, token, idle=ctx.config.session_idle)
    return None if s is None else Principal(f"user:{s.username}", s.username, s.roles, s.csrf_token)


def render(request: Request, name: str, who: Principal | None, status: int = 200, **values: Any) -> HTMLResponse:
    lang = lang_of(request)
    resp = templates.TemplateResponse(request, name, {
        "lang": lang, "t": lambda k: word(k, lang), "tm": lambda v: fmt_time(v, lang), "who": who,
        "can": (lambda p: who is not None and allowed(who.roles, p)), "path": request.url.path,
        "json": lambda v: orjson.dumps(v).decode().replace("</", "<\\/"), **values}, status_code=status)
    if request.query_params.get("lang") in LANGS:
        resp.set_cookie(LANG_COOKIE, lang, max_age=365 * 86400, samesite="strict",
                        secure=ctx_of(request).config.tls)
    return resp


def page(request: Request, permission: str) -> Principal | Response:
    """The logged-in user, if they hold `permission`; otherwise the response to send instead."""
    who = session_user(request)
    if who is None:
        return RedirectResponse(f"/login?next={request.url.path}", status_code=303)
    if not allowed(who.roles, permission):
        return render(request, "message.html", who, 403, message=word("forbidden", lang_of(request)))
    return who


def check_csrf(who: Principal, token: str) -> None:
    if not who.csrf_token or not hmac.compare_digest(who.csrf_token, token or ""):
        raise ApiError(403, "csrf", "the form's CSRF token does not match this session. Fix: reload the page.")


def audit_view(request: Request, who: Principal, action: str, resource: str, **detail: Any) -> None:
    ctx_of(request).audit(who, action, resource=resource, client=client_of(request), detail=detail or None)


# -- login ---------------------------------------------------------------------------------
@router.get("/login")
def login_form(request: Request, next: str = "/") -> Response:
    token = secrets.token_urlsafe(16)
    resp = render(request, "login.html", None, csrf=token, next=_safe_next(next), error=None)
    resp.set_cookie(LOGIN_CSRF_COOKIE, token, httponly=True, samesite="strict", secure=ctx_of(request).config.tls)
    return resp


def _safe_next(target: str) -> str:
    return target if target.startswith("/") and not target.startswith("//") else "/"


@router.post("/login")
def login(request: Request, username: str = Form(..., max_length=64), password: str = Form(..., max_length=1024),
          csrf: str = Form(""), next: str = Form("/")) -> Response:
    ctx = ctx_of(request)
    lang = lang_of(request)
    client = client_of(request) or "unknown"
    if not hmac.compare_digest(request.cookies.get(LOGIN_CSRF_COOKIE, ""), csrf) or not csrf:
        return render(request, "login.html", None, 400, csrf=csrf, next=_safe_next(next),
                      error="CSRF token missing; reload the page.")
    # The limit is read from the audit trail under the state lock, so concurrent guesses are counted one
    # after another and none slips past the check before the failures before it are recorded.
    with ctx.store.changing() as cur:
        wait = ctx.limiter.retry_after(username, client)
        if wait:
            ctx.metrics.logins.inc(label="limited")
            resp = render(request, "login.html", None, 429, csrf=csrf, next=_safe_next(next),
                          error=word("login_limited", lang).format(s=wait))
            resp.headers["Retry-After"] = str(wait)
            return resp
        roles = accounts.check_login(cur, username, password)
        if roles is None:
            ctx.metrics.logins.inc(label="failed")
            audit.record(cur, actor=f"user:{username}", action="login.failed", outcome="denied", client=client)
            return render(request, "login.html", None, 401, csrf=csrf, next=_safe_next(next),
                          error=word("login_failed", lang))
        token, _ = accounts.start_session(cur, username, lifetime=ctx.config.session_lifetime, client=client)
        audit.record(cur, actor=f"user:{username}", roles=list(roles), action="login", client=client)
    ctx.metrics.logins.inc(label="ok")
    resp = RedirectResponse(_safe_next(next), status_code=303)
    resp.set_cookie(SESSION_COOKIE, token, httponly=True, samesite="strict", secure=ctx.config.tls,
                    max_age=int(ctx.config.session_lifetime.total_seconds()))
    resp.delete_cookie(LOGIN_CSRF_COOKIE)
    return resp


@router.post("/logout")
def logout(request: Request, csrf: str = Form("")) -> Response:
    who = session_user(request)
    if who is not None:
        check_csrf(who, csrf)
        ctx = ctx_of(request)
        with ctx.store.changing() as cur:
            accounts.end_session(cur, request.cookies.get(SESSION_COOKIE, ""))
        ctx.audit(who, "logout", client=client_of(request))
    resp = RedirectResponse("/login", status_code=303)
    resp.delete_cookie(SESSION_COOKIE)
    return resp


# -- overview --------------------------------------------------------------------------------
@router.get("/")
def overview(request: Request) -> Response:
    who = page(request, "overview:read")
    if not isinstance(who, Principal):
        return who
    lang = lang_of(request)
    with ctx_of(request).store.reading() as cur:
        rate = queries.ingest_rate(cur)
        sev = queries.open_by_severity(cur)
        by_ptype = queries.reads_by(cur, "principal_type")
        by_country = queries.reads_by(cur, "src_country")
    figs = {"fig-ingest": charts.lines(rate["series"], word("ingest_rate", lang), lang, bars=True),
            "fig-ptype": charts.lines(by_ptype["series"], word("reads_by_ptype", lang), lang),
            "fig-country": charts.lines(by_country["series"], word("reads_by_country", lang), lang)}
    return render(request, "overview.html", who, rate=rate, by_sev=sev, figs=figs)


# -- incidents -------------------------------------------------------------------------------
@router.get("/incidents")
def incidents_page(request: Request, status: str | None = None) -> Response:
    who = page(request, "incidents:read")
    if not isinstance(who, Principal):
        return who
    with ctx_of(request).store.reading() as cur:
        rows = list_filtered(cur, [status] if status in ("open", "acknowledged", "resolved", "false_positive")
                             else None, None, None, 500, 0)
    audit_view(request, who, "incidents.list", "incidents", count=len(rows))
    return render(request, "incidents.html", who, incidents=rows)


@router.get("/incidents/{incident_id}")
def incident_page(request: Request, incident_id: str) -> Response:
    who = page(request, "incidents:read")
    if not isinstance(who, Principal):
        return who
    from breachwatch.incidents.store import incident_detail
    ctx = ctx_of(request)
    lang = lang_of(request)
    with ctx.store.reading() as cur:
        inc = incident_detail(cur, incident_id)
        if inc is None:
            now = queries.merged_into(cur, incident_id)
            if now is not None:  # folded into the incident it was found to be part of: show that one
                return RedirectResponse(f"/incidents/{now}", status_code=303)
            return render(request, "message.html", who, 404, message=word("not_found", lang))
        tl = queries.incident_timeline(cur, incident_id)
        radius = queries.blast_radius(cur, incident_id, ctx.catalog)
        steps = proposals(ctx, cur, incident_id) if allowed(who.roles, "scope:read") else None
        runs = runs_of(ctx, cur, incident_id) if allowed(who.roles, "scope:read") else None
    audit_view(request, who, "incident.view", f"incident/{incident_id}")
    names = {"events": word("events", lang), "subjects read": word("subjects_read", lang)}
    figs = {"fig-timeline": charts.lines(tl["series"], word("timeline", lang), lang, names=names),
            "fig-radius": charts.field_bars(radius["by_field"], word("blast_radius", lang), lang)}
    entities = [(queries.LIST_TYPES.get(k, k), v) for k, v in (inc.get("entities") or {}).items() if v]
    return render(request, "incident.html", who, inc=inc, figs=figs, radius=radius, steps=steps, runs=runs,
                  entities=entities)


@router.post("/incidents/{incident_id}/action")
def incident_action(request: Request, incident_id: str, action: str = Form(...), csrf: str = Form(""),
                    note: str = Form("", max_length=2000), scope: str = Form("pattern"),
                    expires: str = Form("30d", max_length=40), reason: str = Form("", max_length=2000)) -> Response:
    who = page(request, "incidents:act")
    if not isinstance(who, Principal):
        return who
    check_csrf(who, csrf)
    from breachwatch.server.api.incidents import _lifecycle
    kwargs: dict[str, Any] = {"note": note}
    if action == "false_positive":
        kwargs = {"scope": scope if scope in ("pattern", "entity") else "pattern", "expires": expires,
                  "reason": reason}
    elif action not in ("acknowledge", "resolve"):
        raise ApiError(400, "bad_action", f"action '{action}' is not known. Fix: acknowledge, resolve or "
                       "false_positive.")
    try:
        _lifecycle(request, who, incident_id, action, **kwargs)
    except ApiError as e:
        return render(request, "message.html", who, e.status, message=e.message)
    return RedirectResponse(f"/incidents/{incident_id}", status_code=303)


@router.get("/suppressions")
def suppressions_page(request: Request) -> Response:
    who = page(request, "incidents:read")
    if not isinstance(who, Principal):
        return who
    from breachwatch.incidents.suppression import list_suppressions
    with ctx_of(request).store.reading() as cur:
        rows = list(reversed(list_suppressions(cur)))  # the newest first
    return render(request, "suppressions.html", who, suppressions=rows)


@router.post("/suppressions/{suppression_id}/lift")
def suppression_lift(request: Request, suppression_id: str, csrf: str = Form(""),
                     reason: str = Form("", max_length=2000)) -> Response:
    who = page(request, "incidents:act")
    if not isinstance(who, Principal):
        return who
    check_csrf(who, csrf)
    from breachwatch.server.api.incidents import lift_suppression
    from breachwatch.server.api.models import LiftSuppression
    try:
        lift_suppression(request, LiftSuppression(reason=reason), suppression_id, who)
    except ApiError as e:
        return render(request, "message.html", who, e.status, message=e.message)
    except ValueError:  # the model refused an empty reason
        return render(request, "message.html", who, 400, message=word("sup_reason_needed", lang_of(request)))
    return RedirectResponse("/suppressions", status_code=303)


@router.post("/incidents/{incident_id}/scope")
async def incident_scope(request: Request, incident_id: str) -> Response:
    who = page(request, "scope:decide")
    if not isinstance(who, Principal):
        return who
    form = await request.form()
    check_csrf(who, str(form.get("csrf", "")))
    accept = [k[len("step:"):] for k, v in form.items() if k.startswith("step:") and v == "accept"]
    reject = [k[len("step:"):] for k, v in form.items() if k.startswith("step:") and v == "reject"]
    from starlette.concurrency import run_in_threadpool
    try:
        await run_in_threadpool(build_scope, ctx_of(request), who, incident_id,
                                ScopeDecision(accept=accept, reject=reject), client_of(request))
    except ApiError as e:
        return render(request, "message.html", who, e.status, message=e.message)
    return RedirectResponse(f"/incidents/{incident_id}#downloads", status_code=303)


@router.get("/scope/{run_id}/files/{name:path}")
def scope_file(request: Request, run_id: str, name: str) -> Response:
    who = page(request, "scope:read")
    if not isinstance(who, Principal):
        return who
    try:
        target = run_file(ctx_of(request), run_id, name)
    except ApiError as e:
        return render(request, "message.html", who, e.status, message=e.message)
    audit_view(request, who, download_action(name), f"scope_run/{run_id}/{name}")
    return FileResponse(target, filename=target.name)


# -- entities ---------------------------------------------------------------------------------
@router.get("/entities/{etype}/{value:path}")
def entity_page(request: Request, etype: str, value: str) -> Response:
    who = page(request, "entities:read")
    if not isinstance(who, Principal):
        return who
    lang = lang_of(request)
    with ctx_of(request).store.reading() as cur:
        try:
            hist = queries.entity_history(cur, etype, value)
        except ValueError as e:
            return render(request, "message.html", who, 404, message=str(e))
    if hist is None:
        return render(request, "message.html", who, 404, message=word("not_found", lang))
    audit_view(request, who, "entity.view", f"entity/{etype}/{value}")
    sub = [s for s in hist["series"] if s["name"] == "subjects read"]
    names = {"subjects read": word("subjects_read", lang)}
    figs = {"fig-entity": charts.lines(sub, f"{etype} {value}", lang, baseline=hist["baseline"], names=names)}
    return render(request, "entity.html", who, hist=hist, figs=figs)


# -- inventory pages ---------------------------------------------------------------------------
@router.get("/datamap")
def datamap_page(request: Request) -> Response:
    who = page(request, "datamap:read")
    if not isinstance(who, Principal):
        return who
    return render(request, "datamap.html", who, rows=datamap(ctx_of(request)))


@router.get("/keys")
def keys_page(request: Request) -> Response:
    who = page(request, "keyfindings:read")
    if not isinstance(who, Principal):
        return who
    doc = key_findings(ctx_of(request))
    return render(request, "keys.html", who, doc=doc, findings=(doc.get("data") or {}).get("findings", []))


@router.get("/drill")
def drill_page(request: Request) -> Response:
    who = page(request, "drill:read")
    if not isinstance(who, Principal):
        return who
    return render(request, "drill.html", who, doc=drill_scores(ctx_of(request)))


@router.get("/audit")
def audit_page(request: Request, after_seq: Optional[int] = None) -> Response:
    who = page(request, "admin:audit")
    if not isinstance(who, Principal):
        return who
    ctx = ctx_of(request)
    ctx.audit(who, "audit.view", client=client_of(request))
    with ctx.store.reading() as cur:
        if after_seq is None:  # the newest rows, this view included, not the trail's first 200 forever
            after_seq = max(0, cur.execute("SELECT coalesce(max(seq), 0) FROM audit_log").fetchone()[0] - 200)
        rows = audit.list_audit(cur, after_seq=after_seq, limit=200)
        broken = ctx.audit_trail.check(cur)
    full_at = ctx.audit_trail.full_at
    return render(request, "audit.html", who, rows=rows, broken=broken,
                  full_at=datetime.fromtimestamp(full_at, timezone.utc) if full_at else None)
