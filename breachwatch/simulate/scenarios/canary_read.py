"""canary_read: a honey customer record is read.

The catalog's canary member ids are real-looking members that no customer,
agent, service or partner ever has reason to open. Here an agent opens one
during the working day under a plausible ticket number: nothing else about
the read is unusual, so only the canary gives it away.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from breachwatch.simulate.benign.staff import back_office_reads, staff_actors, staff_logins, ticket_ref
from breachwatch.simulate.randomness import rng
from breachwatch.simulate.scenarios.base import PlannedScenario, pick_agent, when
from breachwatch.simulate.timebase import MINUTE, kst_day


@dataclass
class Params:
    canaries: int = 1                 # how many honey records are opened
    start_h: float | None = None      # hours after the warm-up (default: 14:00 KST)


class CanaryRead(PlannedScenario):
    name = "canary_read"
    summary = "an agent opens a honey customer record under a plausible ticket"
    Params = Params
    at_fraction = 0.7
    kst_hour = 14.0

    def plan(self) -> list[pa.Table]:
        ctx, p, w = self.ctx, self.p, self.ctx.world
        honey = np.flatnonzero(w.canary)
        if len(honey) == 0:
            raise ValueError(f"{self.name}: the catalog lists no canaries. Fix: add numeric member ids under "
                             "'canaries:' in the catalog, or leave canary_read out of --scenarios.")
        if not 1 <= p.canaries <= len(honey):
            raise ValueError(f"--param {self.name}.canaries={p.canaries}: the catalog has {len(honey)} canaries. "
                             f"Fix: choose 1..{len(honey)}.")
        r = rng(ctx.seed, self.name)
        _, agent = pick_agent(ctx, 2)
        self.agent = agent.principal_id
        self.start = self.start_at(p.start_h, 30 * MINUTE)
        actors = staff_actors(ctx.seed, self.code, np.array([0]), [agent], np.array([self.start]))
        member = np.sort(r.choice(honey, size=p.canaries, replace=False))
        self.read = [str(w.member_id[m]) for m in member]
        times = self.start + (2 + 3 * np.arange(p.canaries)) * MINUTE + r.integers(0, MINUTE, p.canaries)
        refs = ticket_ref(int(kst_day(self.start)), r.integers(0, 1_000_000, p.canaries))
        return [*staff_logins(actors, np.array([0]), np.array([self.start]), self.label),
                *back_office_reads(w, actors, np.zeros(p.canaries, dtype=np.int64), times, member, refs, r,
                                   self.label, orders_share=0.0)]

    def context(self) -> dict:
        return {"employee": self.agent, "canaries_read": self.read, "read_at": when(self.start)}
