"""sale_day: a promotion day with about three times the usual traffic.

Korean retailers run one-day sales (a membership day, an anniversary sale)
announced by push and e-mail: members who rarely shop come too, sessions
start around the clock with the usual evening peak, and far more of them
check out, look at their orders and pick a delivery address. So the day has
`factor` times an ordinary day's sessions, and more reads of customers' own
personal pages: people counted per network, client or endpoint triple while
every read is a member reading their own data. The orders placed then swell
the next label runs and the sellers' buyer lookups on their own.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa

from breachwatch.simulate.benign.sessions import PAGE_MIX, CustomerSessions, peak_event_rate
from breachwatch.simulate.context import SimContext, Window
from breachwatch.simulate.pages import Page
from breachwatch.simulate.surprises.base import Surprise
from breachwatch.simulate.timebase import HOUR

# A sale session's pages: more checkouts, order lists and address books than an ordinary one's
# (personal pages about 26 % of views instead of 14 %).
SALE_PAGE_MIX = {**PAGE_MIX, Page.PRODUCT: 0.40, Page.SEARCH: 0.17, Page.CATEGORY: 0.15, Page.ORDER_CREATE: 0.015,
                 Page.ME_ORDERS: 0.12, Page.ME_PROFILE: 0.035, Page.ME_ADDRESSES: 0.07, Page.ME_ADDRESS: 0.012,
                 Page.MEMBER_PROFILE: 0.02}


@dataclass
class Params:
    factor: float = 3.0               # the day's sessions as a multiple of an ordinary day's
    hours: float = 24.0               # how long the sale lasts
    start_h: float | None = None      # hours after the warm-up (default: 00:00 KST, mid-period)


class SaleSessions(CustomerSessions):
    """The sale's extra sessions, on top of the ordinary ones: (factor - 1) times their number."""

    def __init__(self, ctx: SimContext, code: int, extra: float, start: int, end: int) -> None:
        # A sale draws occasional shoppers too: login odds grow with the square root of a member's usual rate.
        super().__init__(ctx, SALE_PAGE_MIX, weight=np.sqrt(ctx.world.activity))
        self.code, self.name = code, "sale_day"
        self.extra, self.start, self.end = extra, start, end

    def peak_rate(self) -> float:
        return peak_event_rate(self.ctx.world) * self.extra

    def scale(self, w: Window) -> float:
        span = w.overlap(self.start, self.end)
        return 0.0 if span is None else self.extra * (span[1] - span[0]) / (w.end - w.start)


class SaleDay(Surprise):
    name = "sale_day"
    summary = "a one-day sale: about three times the usual sessions, more customers reading their own orders " \
              "and addresses"
    Params = Params
    at_fraction = 0.5
    kst_hour = 0.0

    def __init__(self, ctx: SimContext, overrides: dict[str, Any], code: int) -> None:
        super().__init__(ctx, overrides, code)
        p = self.p
        if not p.factor >= 1 or not p.hours > 0:
            raise ValueError(f"--param {self.name}.factor={p.factor} / hours={p.hours}: the factor must be at least 1 "
                             "(the day's traffic over an ordinary day's) and the hours positive. Fix: e.g. "
                             f"{self.name}.factor=3.")
        length = int(p.hours * HOUR)
        self.start, self.end = self.schedule(p.start_h, length)
        self.sessions = SaleSessions(ctx, code, p.factor - 1.0, self.start, self.end)

    def peak_rate(self) -> float:
        return self.sessions.peak_rate()

    def window(self, w: Window) -> list[pa.Table]:
        return self.sessions.window(w)

    def context(self) -> dict[str, Any]:
        return {"traffic_factor": self.p.factor, "personal_page_share": round(sum(
            v for k, v in SALE_PAGE_MIX.items() if k >= Page.ME_PROFILE) / sum(SALE_PAGE_MIX.values()), 3)}
