"""The personal data behind the ids: each member's and recipient's name, e-mail, phone and address.

Generated block by block (a block's people depend only on the seed and the
block number), so a file of millions of customers is written in bounded
memory, and the same member always gets the same name for a given seed.
These are what a notification list or a breach lookup would show; the event
stream itself carries only ids and field names.
"""
from __future__ import annotations

from typing import Iterator

import numpy as np
import pyarrow as pa

from breachwatch.simulate.addresses import addresses
from breachwatch.simulate.korean_names import emails, mobile_numbers, people
from breachwatch.simulate.randomness import rng
from breachwatch.simulate.world import STATUS_NAMES, World

BLOCK = 65_536
_TS = pa.timestamp("us")


def customer_blocks(world: World) -> Iterator[pa.Table]:
    for b, lo in enumerate(range(0, world.size, BLOCK)):
        hi = min(lo + BLOCK, world.size)
        r = rng(world.seed, "people-members", b)
        p = people(r, hi - lo)
        addr, code, masked = addresses(r, hi - lo)
        yield pa.table({
            "member_id": world.member_str.slice(lo, hi - lo),
            "name": pa.array(p["name"], pa.string()),
            "email": pa.array(emails(r, p), pa.string()),
            "phone": pa.array(mobile_numbers(r, hi - lo), pa.string()),
            "address": pa.array(addr, pa.string()),
            "entrance_code": pa.array(code, pa.string()),
            "entrance_code_masked": pa.array(masked, pa.string()),
            "birth_year": pa.array(p["birth_year"], pa.int64()),
            "status": pa.array(np.array(STATUS_NAMES)[world.status[lo:hi]], pa.string()),
            "signed_up_at": pa.array(world.signup_us[lo:hi], _TS),
            "address_in_book": pa.array(world.has_self[lo:hi]),
            "marketing_opt_in": pa.array(world.marketing_opt_in[lo:hi]),
        })


def recipient_blocks(world: World) -> Iterator[pa.Table]:
    total = world.n_recipients
    owner = np.repeat(np.arange(world.size), world.n_recip)
    for b, lo in enumerate(range(0, total, BLOCK)):
        hi = min(lo + BLOCK, total)
        r = rng(world.seed, "people-recipients", b)
        p = people(r, hi - lo)
        addr, code, masked = addresses(r, hi - lo)
        yield pa.table({
            "recipient_id": pa.array([f"r-{k + 1}" for k in range(lo, hi)], pa.string()),
            "member_id": world.member_str.take(pa.array(owner[lo:hi])),
            "name": pa.array(p["name"], pa.string()),
            "phone": pa.array(mobile_numbers(r, hi - lo), pa.string()),
            "address": pa.array(addr, pa.string()),
            "entrance_code": pa.array(code, pa.string()),
            "entrance_code_masked": pa.array(masked, pa.string()),
        })
