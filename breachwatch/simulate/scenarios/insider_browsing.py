"""insider_browsing: an agent reading many customers' records without any ticket.

A customer-service agent, at work, on the office network, in a normal shift,
opens hundreds of customer records that no ticket asked for (no reason_ref),
in between the agent's own legitimate ticket work: curiosity, a side business
selling addresses, or an ex-partner being looked up.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from breachwatch.simulate.benign.staff import back_office_reads, staff_actors, staff_logins
from breachwatch.simulate.randomness import rng
from breachwatch.simulate.scenarios.base import PlannedScenario, pick_agent, when
from breachwatch.simulate.timebase import HOUR, MINUTE


@dataclass
class Params:
    reads: int = 300                  # records read without a ticket
    duration_h: float = 6.0
    start_h: float | None = None      # hours after the warm-up (default: 10:00 KST)


class InsiderBrowsing(PlannedScenario):
    name = "insider_browsing"
    summary = "a customer-service agent reads hundreds of customer records with no ticket"
    Params = Params
    at_fraction = 0.4
    kst_hour = 10.0

    def plan(self) -> list[pa.Table]:
        ctx, p, w = self.ctx, self.p, self.ctx.world
        if p.reads < 1 or p.duration_h <= 0:
            raise ValueError(f"--param {self.name}: reads and duration_h must be positive. Fix: e.g. "
                             f"{self.name}.reads=300.")
        r = rng(ctx.seed, self.name)
        _, agent = pick_agent(ctx, 1)
        self.agent = agent.principal_id
        self.start, self.end = self.schedule(p.start_h, int(p.duration_h * HOUR))
        # A separate login from the agent's desk (e.g. a second browser profile), so its token is issued.
        actors = staff_actors(ctx.seed, self.code, np.array([0]), [agent], np.array([self.start]))
        times = np.sort(r.integers(self.start + MINUTE, self.end, p.reads))
        pool = np.flatnonzero(~w.canary)
        member = pool[r.integers(0, len(pool), p.reads)]
        return [*staff_logins(actors, np.array([0]), np.array([self.start]), self.label),
                *back_office_reads(w, actors, np.zeros(p.reads, dtype=np.int64), times, member, None, r, self.label,
                                   orders_share=0.3)]

    def context(self) -> dict:
        return {"employee": self.agent, "browsing_start": when(self.start), "browsing_end": when(self.end)}
