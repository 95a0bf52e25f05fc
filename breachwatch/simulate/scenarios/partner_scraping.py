"""partner_scraping: a brand-new partner account bulk-reading buyers' delivery details.

Modelled on the 2024 partner-portal case: fake partner accounts made over
5,000 requests a minute. A seller account created hours earlier
(principal_created) walks order numbers through the buyer-lookup endpoint,
which does not check that the order is the seller's. Order numbers are sparse,
so about two lookups in three miss (404); every hit returns a recipient's
name, phone and address.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa

from breachwatch.simulate import network
from breachwatch.simulate.benign.partners import buyer_reads
from breachwatch.simulate.clients import Client, fingerprint
from breachwatch.simulate.context import SimContext, Window
from breachwatch.simulate.orders import ORDER_ID_BASE, ORDER_ID_STRIDE
from breachwatch.simulate.randomness import rng
from breachwatch.simulate.scenarios.base import Scenario, principal_created, when
from breachwatch.simulate.timebase import MINUTE, SECOND

SCRAPER = Client("python-requests", "python-requests/2.31.0", fingerprint("python-requests-2.31-openssl3"))


@dataclass
class Params:
    rate_per_minute: float = 5000.0   # lookups per minute (x --rate-scale)
    duration_min: float = 20.0
    start_h: float | None = None      # hours after the warm-up (default: 03:00 KST)
    created_before_h: float = 6.0     # the partner account was created this long before
    ips: int = 4                      # cloud addresses the scraper rotates through
    partner_id: str = "p-9001"


class PartnerScraping(Scenario):
    name = "partner_scraping"
    summary = "a partner account created hours earlier looks up ~5,000 orders' buyers a minute, mostly misses"
    Params = Params
    at_fraction = 0.55
    kst_hour = 3.0

    def __init__(self, ctx: SimContext, overrides: dict[str, Any], label: int, code: int) -> None:
        super().__init__(ctx, overrides, label, code)
        p, w = self.p, ctx.world
        if p.rate_per_minute <= 0 or p.duration_min <= 0 or p.ips < 1:
            raise ValueError(f"--param {self.name}: rate_per_minute, duration_min and ips must be positive. "
                             f"Fix: e.g. {self.name}.rate_per_minute=5000.")
        if any(x.principal_id == p.partner_id for x in w.partners):
            raise ValueError(f"--param {self.name}.partner_id={p.partner_id}: an existing seller has that id. "
                             "Fix: choose an id not used by the simulated sellers, e.g. p-9001.")
        self.rate = p.rate_per_minute * self.rate_scale / 60.0
        self.start, self.end = self.schedule(p.start_h, int(p.duration_min * MINUTE))
        self.created = self.created_before(self.start, p.created_before_h)
        r = rng(ctx.seed, self.name)
        cloud = network.Pool(network.KR_CLOUD)
        nets = np.zeros(p.ips * 2, dtype=np.int64)
        ips = network.dotted(np.unique(cloud.addresses(nets, r.integers(0, 2**62, p.ips * 2).astype(np.uint64)))
                             [:p.ips])
        self.actors = {"principal_id": p.partner_id, "principal_type": "partner", "src_ip": ips,
                       "src_asn": cloud.networks[0].asn, "src_country": cloud.networks[0].country,
                       "user_agent": SCRAPER.user_agent, "client_fingerprint": SCRAPER.fingerprint}
        self.n_ips = len(ips)
        # Start somewhere in the existing order numbers, early enough that the walk stays among them.
        span = ctx.orders.history * ORDER_ID_STRIDE
        lookups = int(self.rate * (self.end - self.start) / SECOND)
        self.next_order = ORDER_ID_BASE + int(r.integers(0, max(1, span - lookups)))
        self.first_order = self.next_order
        self.sent = 0

    def peak_rate(self) -> float:
        return self.rate * 1.2

    def window(self, w: Window) -> list[pa.Table]:
        out = principal_created(w, self.created, self.p.partner_id, "partner", "seller")
        span = w.overlap(self.start, self.end)
        if span is None:
            return out
        r = rng(self.ctx.seed, self.name, w.index)
        n = int(r.poisson(self.rate * (span[1] - span[0]) / SECOND))
        if n == 0:
            return out
        times = np.sort(r.integers(span[0], span[1], n))
        order_ids = self.next_order + np.arange(n)
        self.next_order += n
        ip_idx = (self.sent + np.arange(n)) % self.n_ips
        self.sent += n
        out.append(buyer_reads(self.ctx, self.actors, ip_idx, times, order_ids, r, self.label))
        return out

    def context(self) -> dict[str, Any]:
        return {"partner": self.p.partner_id, "created_at": when(self.created), "lookups_per_minute":
                self.rate * 60, "first_order_id": self.first_order, "last_order_id": self.next_order - 1}
