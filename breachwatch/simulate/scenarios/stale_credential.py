"""stale_credential: an offboarded employee's back-office credential, still working.

A customer-service agent leaves (principal_offboarded) but the single sign-on
account is not disabled. Days later, at night and from a home broadband
address instead of the office network, the credential logs in and pulls
hundreds of customer records, mostly without tickets, some under the agent's
old ticket numbers to look routine.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from breachwatch.simulate import clients, frames, network
from breachwatch.simulate.benign.staff import back_office_reads, staff_actors, staff_logins, ticket_ref
from breachwatch.simulate.randomness import rng
from breachwatch.simulate.scenarios.base import PlannedScenario, pick_agent, when
from breachwatch.simulate.timebase import DAY, HOUR, MINUTE, kst_day


@dataclass
class Params:
    reads: int = 250                  # customer records read
    duration_h: float = 2.5
    start_h: float | None = None      # hours after the warm-up (default: 22:00 KST)
    left_days_before: float = 1.0     # the agent left this long before the misuse
    reused_ticket_share: float = 0.3  # reads labelled with the agent's old ticket numbers


class StaleCredential(PlannedScenario):
    name = "stale_credential"
    summary = "an offboarded agent's back-office login used at night from outside to read customer records"
    Params = Params
    at_fraction = 0.3
    kst_hour = 22.0

    def plan(self) -> list[pa.Table]:
        ctx, p, w = self.ctx, self.p, self.ctx.world
        if p.reads < 1 or p.duration_h <= 0:
            raise ValueError(f"--param {self.name}: reads and duration_h must be positive. Fix: e.g. "
                             f"{self.name}.reads=250.")
        r = rng(ctx.seed, self.name)
        index, agent = pick_agent(ctx, 0)
        self.agent = agent.principal_id
        self.start, self.end = self.schedule(p.start_h, int(p.duration_h * HOUR))
        self.left_at = max(ctx.start + MINUTE, self.start - int(p.left_days_before * DAY))
        ctx.departures[agent.principal_id] = self.left_at
        home = network.Pool(network.KR_BROADBAND)
        net = int(home.pick_networks(r.random(1))[0])
        ip = network.dotted(home.addresses(np.array([net]), r.integers(0, 2**62, 1).astype(np.uint64)))[0].as_py()
        actors = staff_actors(ctx.seed, self.code, np.array([0]), [agent], np.array([self.start]), ip=ip,
                              asn=home.networks[net].asn, country="KR", client=clients.HOME_BROADBAND_BROWSER)
        times = np.sort(r.integers(self.start + 2 * MINUTE, self.end, p.reads))
        member = np.flatnonzero(~w.canary)[r.integers(0, int((~w.canary).sum()), p.reads)]
        old_day = int(kst_day(self.left_at)) - 1
        refs = frames.null_where(ticket_ref(old_day, r.integers(0, 1_000_000, p.reads)),
                                 r.random(p.reads) >= p.reused_ticket_share)
        offboard = frames.events(1, 0, time=self.left_at, kind="principal_offboarded", principal_id=agent.principal_id,
                                 principal_type="employee", attributes='{"reason":"resigned"}')
        one = np.zeros(p.reads, dtype=np.int64)
        return [offboard, *staff_logins(actors, np.array([0]), np.array([self.start]), self.label),
                *back_office_reads(w, actors, one, times, member, refs, r, self.label, orders_share=0.2)]

    def context(self) -> dict:
        self._planned()
        return {"employee": self.agent, "offboarded_at": when(self.left_at), "misuse_start": when(self.start)}
