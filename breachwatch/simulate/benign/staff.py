"""Customer-service agents reading customer records under tickets, in Korean business hours.

Every back-office read carries the ticket it was made for (`reason_ref`), as
Korea's safety standard expects access records to show why staff looked; a
few legitimate reads have none. Agents log in at the start of their shift
(weekdays 09-18 KST; a third of them on weekends 10-17), and one agent leaves
the company during the run (principal_offboarded) and stops working.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa

from breachwatch.simulate import frames
from breachwatch.simulate.clients import Client
from breachwatch.simulate.context import SimContext, Window
from breachwatch.simulate.randomness import ids_for, rng, unit
from breachwatch.simulate.timebase import DAY, HOUR, MINUTE, SECOND, kst_day, kst_hour, kst_midnight, kst_weekday
from breachwatch.simulate.world import ACTIVE, BACK_OFFICE_KEY, DORMANT, WITHDRAWN, Principal, World

TICKETS_PER_HOUR = 5.5
NO_TICKET_SHARE = 0.01
ORDERS_LOOKUP_SHARE = 0.45
SHIFT_LENGTH = 10 * HOUR
CUSTOMER_ROUTE = "GET /admin/customers/{customerId}"
ORDERS_ROUTE = "GET /admin/customers/{customerId}/orders"
CUSTOMER_FIELDS = ("name", "email", "phone", "address")


def shift(us: int) -> tuple[float, float, float]:
    """(start hour, end hour, share of agents working) for the Korean day containing `us`."""
    return (10.0, 17.0, 0.33) if kst_weekday(us) >= 5 else (9.0, 18.0, 0.92)


def ticket_ref(day: int, numbers: np.ndarray) -> pa.Array:
    """Ticket ids like CS-20250602-048213 for a Korean day (days since the epoch)."""
    date = np.datetime_as_string(np.datetime64(int(day), "D")).replace("-", "")
    return frames.prefixed(f"CS-{date}-", frames.pa_str(np.asarray(numbers) % 1_000_000), pad=6)


def staff_actors(seed: int, domain: int, sessions: np.ndarray, who: list[Principal], login_at: np.ndarray,
                 ip: str | None = None, asn: str | None = None, country: str | None = None,
                 client: Client | None = None) -> dict[str, Any]:
    """Columns of back-office sessions (one per `sessions` value, which must be distinct in the domain)."""
    issued = np.asarray(login_at) + 50_000
    return {
        "principal_id": pa.array([p.principal_id for p in who]), "principal_type": "employee",
        "session_id": ids_for(seed, 128 + domain, sessions, "s-"), "token_id": ids_for(seed, 64 + domain, sessions),
        "key_id": BACK_OFFICE_KEY, "token_issued_at": issued, "token_expires_at": issued + SHIFT_LENGTH,
        "src_ip": ip or pa.array([p.ip for p in who]), "src_asn": asn if ip else pa.array([p.asn for p in who]),
        "src_country": country or pa.array([p.country for p in who]),
        "user_agent": (client or who[0].client).user_agent,
        "client_fingerprint": (client or who[0].client).fingerprint,
    }


def staff_logins(actors: dict[str, Any], idx: np.ndarray, times: np.ndarray, label: int = 0) -> list[pa.Table]:
    cols = frames.take_rows(actors, idx)
    no_token = {k: v for k, v in cols.items() if k not in ("token_id", "key_id", "token_issued_at", "token_expires_at")}
    n = len(idx)
    return [frames.events(n, label, time=times, kind="login", attributes='{"method":"sso"}', **no_token),
            frames.events(n, label, time=np.asarray(times) + 50_000, kind="token_issued", **cols)]


def back_office_reads(world: World, actors: dict[str, Any], idx: np.ndarray, times: np.ndarray, member: np.ndarray,
                      reasons: pa.Array | None, r: np.random.Generator, label: int = 0,
                      orders_share: float = ORDERS_LOOKUP_SHARE) -> list[pa.Table]:
    """Customer-record lookups by the sessions at `idx`, each sometimes followed by the customer's orders."""
    n = len(times)
    if n == 0:
        return []
    if reasons is None:
        reasons = pa.nulls(n, pa.string())
    follow = np.flatnonzero(r.random(n) < orders_share)
    ids = world.member_str.take(pa.array(member))
    out = []
    for route, fields, rows, delay, size in ((CUSTOMER_ROUTE, CUSTOMER_FIELDS, np.arange(n), 0, 1100),
                                             (ORDERS_ROUTE, ("order_history",), follow, 1, 3200)):
        if len(rows) == 0:
            continue
        prow = pa.array(rows)
        sid = ids.take(prow)
        suffix = "" if route == CUSTOMER_ROUTE else "/orders"
        out.append(frames.events(
            len(rows), label, time=np.asarray(times)[rows] + delay * r.integers(15, 90, len(rows)) * SECOND,
            kind="access", endpoint=route, action="read", status=200, bytes_out=size + r.integers(0, 600, len(rows)),
            subject_ids=frames.list_column(np.ones(len(rows), np.int64), sid), fields=fields, record_count=1,
            reason_ref=reasons.take(prow), attributes=frames.json_attr("path", sid, "/admin/customers/", suffix),
            **frames.take_rows(actors, np.asarray(idx)[rows])))
    return out


class CustomerService:
    code = 2
    name = "customer_service"

    def __init__(self, ctx: SimContext) -> None:
        self.ctx = ctx
        w = ctx.world
        ok = ~w.canary
        # Who calls customer service: mostly active members, some dormant, a few withdrawn.
        self.by_status = [np.flatnonzero(ok & (w.status == s)) for s in (ACTIVE, DORMANT, WITHDRAWN)]
        self.status_share = np.array([0.82, 0.12, 0.06])
        self.agents = w.agents
        self.leaver = w.agents[-1]
        first_evening = kst_midnight(ctx.start) + 18 * HOUR + 30 * MINUTE
        if first_evening < ctx.start + 6 * HOUR:
            first_evening += DAY
        if first_evening < ctx.end:
            ctx.departures.setdefault(self.leaver.principal_id, first_evening)

    def peak_rate(self) -> float:
        return len(self.agents) * TICKETS_PER_HOUR * (1 + ORDERS_LOOKUP_SHARE) / 3600 * 1.5

    def _day(self, day: int) -> tuple[np.ndarray, np.ndarray]:
        """(login instant, on duty) of every agent on a Korean day."""
        n = len(self.agents)
        start_h, _, share = shift(day * DAY)
        keys = np.arange(n, dtype=np.int64) * 100_000 + day
        login = day * DAY - 9 * HOUR + ((start_h + unit(self.ctx.seed, "agent-login", keys) / 3) * HOUR).astype(
            np.int64)
        return login, unit(self.ctx.seed, "agent-rota", keys) < share

    def window(self, w: Window) -> list[pa.Table]:
        ctx, world = self.ctx, self.ctx.world
        out: list[pa.Table] = []
        t = ctx.departures.get(self.leaver.principal_id)
        if t is not None and w.start <= t < w.end:
            out.append(frames.events(1, 0, time=t, kind="principal_offboarded", principal_id=self.leaver.principal_id,
                                     principal_type="employee", attributes='{"reason":"resigned"}'))
        day = int(kst_day(w.start))
        start_h, end_h, _ = shift(w.start)
        if not start_h <= kst_hour(w.start) < end_h:
            return out
        login, duty = self._day(day)
        leave = np.array([ctx.departures.get(a.principal_id, ctx.end) for a in self.agents], dtype=np.int64)
        working = np.flatnonzero(duty & (login < leave))
        if len(working) == 0:
            return out
        r = rng(ctx.seed, self.name, w.index)
        actors = staff_actors(ctx.seed, self.code, day * 100_000 + working, [self.agents[i] for i in working],
                              login[working])
        logging_in = np.flatnonzero((login[working] >= w.start) & (login[working] < w.end))
        if len(logging_in):
            out += staff_logins(actors, logging_in, login[working][logging_in])
        lo = np.maximum(w.start, login[working] + MINUTE)
        hi = np.minimum(min(w.end, kst_midnight(w.start) + int(end_h * HOUR)), leave[working])
        span = np.maximum(hi - lo, 0)
        rate = TICKETS_PER_HOUR * (0.3 if kst_hour(w.start) == 12 else 1.0)
        k = r.poisson(rate * span / HOUR)
        if k.sum() == 0:
            return out
        who = np.repeat(np.arange(len(working)), k)
        times = lo[who] + (r.random(len(who)) * span[who]).astype(np.int64)
        order = np.argsort(times, kind="stable")
        who, times = who[order], times[order]
        refs = frames.null_where(ticket_ref(day, r.integers(0, 1_000_000, len(who))),
                                 r.random(len(who)) < NO_TICKET_SHARE)
        out += back_office_reads(world, actors, who, times, self._callers(r, len(who)), refs, r)
        return out

    def _callers(self, r: np.random.Generator, k: int) -> np.ndarray:
        group = r.choice(3, size=k, p=self.status_share)
        out = np.empty(k, dtype=np.int64)
        for g in range(3):
            sel = group == g
            pool = self.by_status[g] if len(self.by_status[g]) else self.by_status[0]
            out[sel] = pool[r.integers(0, len(pool), int(sel.sum()))]
        return out
