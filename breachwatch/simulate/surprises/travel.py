"""travel: a holiday wave of customers abroad (Chuseok, summer vacation).

Around a long holiday a few percent of members fly out within a day or so and
stay three to nine days. Abroad they shop and check their own orders and
addresses as at home, from hotel and home networks in Japan, the US, Vietnam,
Thailand and elsewhere (each traveller in one country), or, roaming on a
Korean SIM, still from their Korean carrier. The world already has a few
travellers (0.4 %); this adds a wave on top: foreign logins to a domestic
customer base, every one of them the account's owner reading their own data.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from breachwatch.simulate import network
from breachwatch.simulate.context import SimContext
from breachwatch.simulate.randomness import unit
from breachwatch.simulate.scenarios.base import when
from breachwatch.simulate.surprises.base import Surprise
from breachwatch.simulate.timebase import DAY, HOUR


@dataclass
class Params:
    share: float = 0.03               # of members who log in, the share who travel
    spread_h: float = 24.0            # departures spread over this many hours
    min_days: float = 3.0             # shortest stay abroad
    max_days: float = 9.0             # longest stay abroad
    start_h: float | None = None      # first departures, hours after the warm-up (default: 07:00 KST)


class Travel(Surprise):
    name = "travel"
    summary = "a holiday wave: a few percent of customers log in from abroad for some days, reading their own data"
    Params = Params
    kst_hour = 7.0

    def __init__(self, ctx: SimContext, overrides: dict[str, Any], code: int) -> None:
        super().__init__(ctx, overrides, code)
        p, w = self.p, ctx.world
        if not 0 < p.share <= 0.5 or p.spread_h < 0 or not 0 < p.min_days <= p.max_days:
            raise ValueError(f"--param {self.name}: share must be in (0, 0.5], spread_h not negative and "
                             f"0 < min_days <= max_days (got {p.share}, {p.spread_h}, {p.min_days}, {p.max_days}). "
                             f"Fix: e.g. {self.name}.share=0.03.")
        self.start = self.start_at(p.start_h)
        # Who travels and when is a pure function of the member id, so every window agrees without state.
        ids = w.member_id
        self.travellers = np.flatnonzero((w.activity > 0) & (unit(ctx.seed, "holiday-traveller", ids) < p.share))
        t_ids = ids[self.travellers]
        leave = self.start + (unit(ctx.seed, "holiday-leave", t_ids) * p.spread_h * HOUR).astype(np.int64)
        stay = (p.min_days + unit(ctx.seed, "holiday-stay", t_ids) * (p.max_days - p.min_days)) * DAY
        self.leave = np.full(w.size, -1, dtype=np.int64)
        self.back = np.full(w.size, -1, dtype=np.int64)
        self.leave[self.travellers] = leave
        self.back[self.travellers] = leave + stay.astype(np.int64)
        self.end = min(ctx.end, int(self.back[self.travellers].max())) if len(self.travellers) else self.start

    def abroad(self, member: np.ndarray, start: np.ndarray, away: np.ndarray) -> np.ndarray:
        return away | ((self.leave[member] <= start) & (start < self.back[member]))

    def _destinations(self) -> list[network.Network]:
        # The same draw customer sessions use for a member's foreign network.
        pool = network.Pool(network.FOREIGN_CONSUMER)
        ids = self.ctx.world.member_id[self.travellers]
        return [pool.networks[i] for i in pool.pick_networks(unit(self.ctx.seed, "abroad-net", ids))]

    def entities(self) -> dict[str, list[str]]:
        dest = self._destinations()
        return {"principals": [str(x) for x in self.ctx.world.member_id[self.travellers]],
                "countries": sorted({n.country for n in dest}), "asns": sorted({str(n.asn) for n in dest})}

    def context(self) -> dict[str, Any]:
        countries: dict[str, int] = {}
        for n in self._destinations():
            countries[n.country] = countries.get(n.country, 0) + 1
        return {"first_departure": when(self.start), "travellers": len(self.travellers),
                "travellers_by_country": dict(sorted(countries.items(), key=lambda kv: (-kv[1], kv[0])))}
