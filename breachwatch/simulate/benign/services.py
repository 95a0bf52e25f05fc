"""Internal services with legitimate bulk reads of personal data.

The shipping-label service reads the delivery addresses (with entrance codes,
which couriers need) of the orders placed since its last run, three times a
day, hundreds of people per request. The marketing mailer reads the names and
e-mails of members who opted in, once a day, a thousand per request. Both
touch far more people per request than any attacker does per request: a
detector that counts people per principal must know them.
"""
from __future__ import annotations

import numpy as np
import pyarrow as pa

from breachwatch.simulate import frames
from breachwatch.simulate.context import SimContext, Window
from breachwatch.simulate.randomness import rng
from breachwatch.simulate.timebase import HOUR, SECOND, kst_hour, kst_midnight
from breachwatch.simulate.world import Principal, subject_strings

LABEL_RUNS_KST = (9, 13, 17)
LABEL_PAGE = 500
MAIL_RUN_KST = 10
MAIL_PAGE = 1000
MAIL_PAGE_GAP = 3 * SECOND


def _service_columns(p: Principal) -> dict:
    return {"principal_id": p.principal_id, "principal_type": "service", "src_ip": p.ip, "src_country": p.country,
            "user_agent": p.client.user_agent, "client_fingerprint": p.client.fingerprint}


def _first_occurrences(codes: np.ndarray) -> np.ndarray:
    _, first = np.unique(codes, return_index=True)
    return codes[np.sort(first)]


class ShippingLabels:
    code = 3
    name = "shipping_labels"

    def __init__(self, ctx: SimContext) -> None:
        self.ctx = ctx
        self.actor = _service_columns(ctx.world.principal("svc-shipping-label"))

    def peak_rate(self) -> float:
        return 0.5  # one page every two seconds while a run lasts

    def window(self, w: Window) -> list[pa.Table]:
        hour = kst_hour(w.start)
        if hour not in LABEL_RUNS_KST or w.start % HOUR:
            return []
        i = LABEL_RUNS_KST.index(hour)
        prev = kst_midnight(w.start) + (LABEL_RUNS_KST[i - 1] * HOUR if i else (LABEL_RUNS_KST[-1] - 24) * HOUR)
        orders = self.ctx.orders
        k = orders.placed_between(prev, w.start)
        if len(k) == 0:
            return []
        _, buyer, entry, _ = orders.details(k)
        people = _first_occurrences(orders.recipient_codes(buyer, entry))
        pages = np.array_split(people, int(np.ceil(len(people) / LABEL_PAGE)))
        counts = np.array([len(p) for p in pages])
        r = rng(self.ctx.seed, self.name, w.index)
        times = w.start + np.arange(len(pages)) * 2 * SECOND + r.integers(0, SECOND, len(pages))
        return [frames.events(len(pages), 0, time=times, kind="access", endpoint="GET /internal/shipping/labels",
                              action="read", status=200, bytes_out=240 * counts + r.integers(0, 2000, len(pages)),
                              subject_ids=frames.list_column(counts, subject_strings(np.concatenate(pages))),
                              fields=("name", "phone", "address", "entrance_code"), record_count=counts,
                              **self.actor)]


class MarketingMailer:
    code = 4
    name = "marketing_mailer"

    def __init__(self, ctx: SimContext) -> None:
        self.ctx = ctx
        self.actor = _service_columns(ctx.world.principal("svc-marketing-mailer"))
        self.audience = np.flatnonzero(ctx.world.marketing_opt_in)
        self.pages = int(np.ceil(len(self.audience) / MAIL_PAGE))

    def peak_rate(self) -> float:
        return SECOND / MAIL_PAGE_GAP

    def window(self, w: Window) -> list[pa.Table]:
        if self.pages == 0:
            return []
        run = kst_midnight(w.start) + MAIL_RUN_KST * HOUR
        if run >= w.end:
            run -= 24 * HOUR  # a run that began yesterday may still be paging
        first = max(0, -(-(w.start - run) // MAIL_PAGE_GAP))
        last = min(self.pages, -(-(w.end - run) // MAIL_PAGE_GAP))
        if first >= last:
            return []
        p = np.arange(first, last)
        lo, hi = p * MAIL_PAGE, np.minimum((p + 1) * MAIL_PAGE, len(self.audience))
        counts = hi - lo
        members = self.audience[lo[0]:hi[-1]]
        r = rng(self.ctx.seed, self.name, w.index)
        return [frames.events(len(p), 0, time=run + p * MAIL_PAGE_GAP, kind="access",
                              endpoint="GET /internal/marketing/recipients", action="read", status=200,
                              bytes_out=85 * counts + r.integers(0, 500, len(p)),
                              subject_ids=frames.list_column(counts, self.ctx.world.member_str.take(pa.array(members))),
                              fields=("name", "email"), record_count=counts,
                              attributes=frames.json_attr("page", frames.pa_str(p)), **self.actor)]
