"""Partner sellers reading the delivery details of their own orders' buyers.

Each order is read by its seller once (sometimes twice), minutes to hours
after it was placed, through the partner API or the seller portal.
"""
from __future__ import annotations

import numpy as np
import pyarrow as pa

from breachwatch.simulate import frames
from breachwatch.simulate.benign.sessions import PAGE_MIX, peak_event_rate
from breachwatch.simulate.context import SimContext, Window
from breachwatch.simulate.pages import Page
from breachwatch.simulate.randomness import rng
from breachwatch.simulate.timebase import HOUR, MINUTE
from breachwatch.simulate.world import subject_strings

BUYER_ROUTE = "GET /partner/orders/{orderId}/buyer"
BUYER_FIELDS = ("name", "phone", "address")
REREAD_SHARE = 0.15


def partner_columns(ctx: SimContext) -> dict:
    ps = ctx.world.partners
    return {"principal_id": pa.array([p.principal_id for p in ps]), "principal_type": "partner",
            "src_ip": pa.array([p.ip for p in ps]), "src_asn": pa.array([p.asn for p in ps]),
            "src_country": pa.array([p.country for p in ps]),
            "user_agent": pa.array([p.client.user_agent for p in ps]),
            "client_fingerprint": pa.array([p.client.fingerprint for p in ps])}


def buyer_reads(ctx: SimContext, actors: dict, actor_idx: np.ndarray, times: np.ndarray, order_ids: np.ndarray,
                r: np.random.Generator, label: int = 0) -> pa.Table:
    """Lookups of order buyers: 200 with the recipient's details where the order exists by then, else 404."""
    orders = ctx.orders
    n = len(times)
    k = orders.order_number(order_ids)
    found = orders.exists_at(k, times)
    codes = np.zeros(n, dtype=np.int64)
    if found.any():
        _, buyer, entry, _ = orders.details(k[found])
        codes[found] = orders.recipient_codes(buyer, entry)
    oid = frames.pa_str(order_ids)
    return frames.events(n, label, time=times, kind="access", endpoint=BUYER_ROUTE, action="read",
                         status=np.where(found, 200, 404), bytes_out=np.where(found, 780 + r.integers(0, 200, n), 140),
                         subject_ids=frames.list_column(found.astype(np.int64), subject_strings(codes[found]), found),
                         fields=frames.const_list(BUYER_FIELDS, n, found), record_count=found.astype(np.int64),
                         attributes=frames.json_attr("path", oid, "/partner/orders/", "/buyer"),
                         **frames.take_rows(actors, actor_idx))


class PartnerReads:
    code = 5
    name = "partner_reads"

    def __init__(self, ctx: SimContext) -> None:
        self.ctx = ctx
        self.actors = partner_columns(ctx)
        self.seen = 0

    def peak_rate(self) -> float:
        return peak_event_rate(self.ctx.world) * PAGE_MIX[Page.ORDER_CREATE] * (1 + REREAD_SHARE)

    def window(self, w: Window) -> list[pa.Table]:
        orders = self.ctx.orders
        k = orders.history + np.arange(self.seen, orders.placed)
        self.seen = orders.placed
        if len(k) == 0:
            return []
        r = rng(self.ctx.seed, self.name, w.index)
        placed, _, _, seller = orders.details(k)
        again = r.random(len(k)) < REREAD_SHARE
        k = np.concatenate([k, k[again]])
        placed = np.concatenate([placed, placed[again]])
        seller = np.concatenate([seller, seller[again]])
        delay = np.clip(r.lognormal(np.log(40.0), 1.0, len(k)) * MINUTE, 3 * MINUTE, 10 * HOUR).astype(np.int64)
        times = np.maximum(placed + delay, w.start)
        return [buyer_reads(self.ctx, self.actors, seller, times, orders.order_id(k), r)]
