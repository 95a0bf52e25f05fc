"""new_batch_job: a newly deployed service starts nightly bulk reads of one field.

The marketing team brings in a CRM platform: a new service account is created
(principal_created, type service) in the evening, and from the next night on
its sync job pages through every member who opted in to marketing, reading
one field (the e-mail address) through the internal recipients endpoint the
mailer already uses, a thousand people per request. A principal never seen
before touches a third of the customer base within minutes: legitimate, and
exactly what a detector counting people per principal sees first.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa

from breachwatch.simulate.benign.services import DailyPagedReads
from breachwatch.simulate.clients import Client, fingerprint
from breachwatch.simulate.context import SimContext, Window
from breachwatch.simulate.scenarios.base import principal_created, when
from breachwatch.simulate.surprises.base import Surprise
from breachwatch.simulate.timebase import HOUR, SECOND, kst_hour
from breachwatch.simulate.world import WITHDRAWN, Principal

CRM_CLIENT = Client("go", "crm-sync/1.0.0 Go-http-client/2.0", fingerprint("go-1.23-crm-sync"))
AUDIENCES = ("opt_in", "members")


@dataclass
class Params:
    principal_id: str = "svc-crm-sync"
    role: str = "crm-sync"
    endpoint: str = "GET /internal/marketing/recipients"   # a catalog endpoint for services
    field: str = "email"                                    # the one field it reads
    audience: str = "opt_in"         # opt_in: members who accepted marketing; members: every member not withdrawn
    page: int = 1000                 # people per request
    page_gap_s: float = 2.0          # seconds between requests
    created_before_h: float = 6.0    # the account is created this long before the first run
    start_h: float | None = None     # first run, hours after the warm-up (default: 03:00 KST)


class NewBatchJob(Surprise):
    name = "new_batch_job"
    summary = "a new service account starts nightly bulk reads of one field (e-mails of opted-in members)"
    Params = Params
    kst_hour = 3.0

    def __init__(self, ctx: SimContext, overrides: dict[str, Any], code: int) -> None:
        super().__init__(ctx, overrides, code)
        p, w = self.p, ctx.world
        self._check(ctx)
        # Scheduled jobs start on the hour: the first run is at the hour that begins at or after start_h.
        self.start = -(-self.start_at(p.start_h) // HOUR) * HOUR
        if self.start >= ctx.end:
            raise ValueError(f"--param {self.name}.start_h={p.start_h}: the first run, on the hour after it, falls "
                             "after the end of the run. Fix: choose an earlier start_h, or raise --days.")
        self.end = ctx.end
        self.created = self.created_before(self.start, p.created_before_h)
        self.principal = Principal(p.principal_id, "service", p.role, self.created, ip="10.30.1.20", country="KR",
                                   client=CRM_CLIENT)
        audience = np.flatnonzero(w.marketing_opt_in if p.audience == "opt_in" else w.status != WITHDRAWN)
        self.job = DailyPagedReads(ctx, self.name, self.principal, audience, p.endpoint, (p.field,),
                                   int(kst_hour(self.start)), p.page, int(p.page_gap_s * SECOND), 40,
                                   first_run=self.start)

    def _check(self, ctx: SimContext) -> None:
        p, w = self.p, ctx.world
        hit = ctx.catalog.resolve(p.endpoint)
        if hit is None or hit[0].audience != "service":
            raise ValueError(f"--param {self.name}.endpoint='{p.endpoint}': the catalog has no such endpoint for "
                             "services. Fix: use a catalog endpoint with 'audience: service', e.g. "
                             "GET /internal/marketing/recipients.")
        if p.field not in hit[0].fields:
            raise ValueError(f"--param {self.name}.field={p.field}: endpoint '{p.endpoint}' does not return it "
                             f"(the catalog declares {', '.join(hit[0].fields)}). Fix: choose one of those.")
        if p.audience not in AUDIENCES:
            raise ValueError(f"--param {self.name}.audience={p.audience}: unknown. Fix: use one of "
                             f"{', '.join(AUDIENCES)}.")
        if p.page < 1 or not p.page_gap_s >= 1:
            raise ValueError(f"--param {self.name}.page={p.page} / page_gap_s={p.page_gap_s}: pages need at least "
                             "one person and a gap of at least a second. Fix: e.g. page=1000, page_gap_s=2.")
        try:
            w.principal(p.principal_id)
        except KeyError:
            return
        raise ValueError(f"--param {self.name}.principal_id={p.principal_id}: an existing principal has that id. "
                         "Fix: choose a new one, e.g. svc-crm-sync.")

    def peak_rate(self) -> float:
        return self.job.peak_rate()

    def window(self, w: Window) -> list[pa.Table]:
        return principal_created(w, self.created, self.p.principal_id, "service", self.p.role) + self.job.window(w)

    def entities(self) -> dict[str, list[str]]:
        c = self.principal.client
        assert c is not None and self.principal.ip is not None
        return {"principals": [self.p.principal_id], "ips": [self.principal.ip], "user_agents": [c.user_agent],
                "fingerprints": [c.fingerprint]}

    def context(self) -> dict[str, Any]:
        return {"created_at": when(self.created), "first_run": when(self.start), "endpoint": self.p.endpoint,
                "fields": [self.p.field], "audience_size": len(self.job.audience), "requests_per_run": self.job.pages}
