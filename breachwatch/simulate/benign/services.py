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


class DailyPagedReads:
    """A job that once a day, at a Korean hour, pages through a fixed audience reading the same fields.

    A run that starts late in one window goes on paging in the next ones. `first_run`: no run before it
    (a job introduced during the simulated period).
    """

    def __init__(self, ctx: SimContext, name: str, principal: Principal, audience: np.ndarray, endpoint: str,
                 fields: tuple[str, ...], run_kst_hour: int, page: int, page_gap: int, bytes_per_person: int,
                 first_run: int | None = None) -> None:
        self.ctx = ctx
        self.name = name  # also the job's random stream
        self.actor = _service_columns(principal)
        self.audience = audience
        self.endpoint, self.fields = endpoint, fields
        self.run_kst_hour, self.page, self.page_gap = run_kst_hour, page, page_gap
        self.bytes_per_person = bytes_per_person
        self.first_run = first_run
        self.pages = int(np.ceil(len(audience) / page))

    def peak_rate(self) -> float:
        return SECOND / self.page_gap

    def window(self, w: Window) -> list[pa.Table]:
        if self.pages == 0:
            return []
        run = kst_midnight(w.start) + self.run_kst_hour * HOUR
        if run >= w.end:
            run -= 24 * HOUR  # a run that began yesterday may still be paging
        if self.first_run is not None and run < self.first_run:
            return []
        first = max(0, -(-(w.start - run) // self.page_gap))
        last = min(self.pages, -(-(w.end - run) // self.page_gap))
        if first >= last:
            return []
        p = np.arange(first, last)
        lo, hi = p * self.page, np.minimum((p + 1) * self.page, len(self.audience))
        counts = hi - lo
        members = self.audience[lo[0]:hi[-1]]
        r = rng(self.ctx.seed, self.name, w.index)
        return [frames.events(len(p), 0, time=run + p * self.page_gap, kind="access", endpoint=self.endpoint,
                              action="read", status=200,
                              bytes_out=self.bytes_per_person * counts + r.integers(0, 500, len(p)),
                              subject_ids=frames.list_column(counts, self.ctx.world.member_str.take(pa.array(members))),
                              fields=self.fields, record_count=counts,
                              attributes=frames.json_attr("page", frames.pa_str(p)), **self.actor)]


class MarketingMailer(DailyPagedReads):
    code = 4

    def __init__(self, ctx: SimContext) -> None:
        super().__init__(ctx, "marketing_mailer", ctx.world.principal("svc-marketing-mailer"),
                         np.flatnonzero(ctx.world.marketing_opt_in), "GET /internal/marketing/recipients",
                         ("name", "email"), MAIL_RUN_KST, MAIL_PAGE, MAIL_PAGE_GAP, 85)
