"""The state of the world when the log begins, as events at the first instant.

A real deployment starts watching a service that already has members, staff,
partners and signing keys; these events tell breachwatch what exists and since
when (`attributes.created_at` is the original creation time), and every
member's status (active, dormant, withdrawn) with the member as `principal_id`
(no `subject_ids`: a status record discloses nobody's data).
"""
from __future__ import annotations

from typing import Iterator

import numpy as np
import orjson
import pyarrow as pa

from breachwatch.simulate import frames
from breachwatch.simulate.context import SimContext
from breachwatch.simulate.timebase import rfc3339
from breachwatch.simulate.world import STATUS_NAMES


class Snapshot:
    code = 0
    name = "snapshot"

    def __init__(self, ctx: SimContext) -> None:
        self.ctx = ctx

    def blocks(self, rows: int) -> Iterator[pa.Table]:
        w, t0 = self.ctx.world, self.ctx.start
        people = w.agents + w.engineers + w.partners + w.services
        yield frames.events(
            len(people), 0, time=t0, kind="principal_created",
            principal_id=[p.principal_id for p in people], principal_type=[p.principal_type for p in people],
            attributes=[orjson.dumps({"created_at": rfc3339(p.created_us), "role": p.role, "snapshot": True}).decode()
                        for p in people])
        yield frames.events(
            len(w.keys), 0, time=t0, kind="key_created", key_id=[k.key_id for k in w.keys],
            owner_id=[k.owner_id for k in w.keys],
            attributes=[orjson.dumps({"created_at": rfc3339(k.created_us), "purpose": k.purpose,
                                      "snapshot": True}).decode() for k in w.keys])
        names = pa.array(STATUS_NAMES)
        for lo in range(0, w.size, rows):
            hi = min(lo + rows, w.size)
            ids = w.member_str.slice(lo, hi - lo)
            yield frames.events(hi - lo, 0, time=t0, kind="subject_status", principal_id=ids,
                                principal_type="customer",
                                status_value=names.take(pa.array(w.status[lo:hi].astype(np.int64))),
                                attributes='{"snapshot":true}')
