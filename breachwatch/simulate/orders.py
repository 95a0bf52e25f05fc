"""Orders: who bought, which address-book entry it ships to, which seller fulfils it.

Order ids are sparse (id = base + 3k + a per-order offset), as real order
numbers are, so guessing ids mostly misses: the high miss ratio of a partner
scraping the buyer-lookup endpoint. Orders placed before the simulation are a
pure function of k; orders placed during it are recorded as sessions place them.
"""
from __future__ import annotations

import numpy as np

from breachwatch.simulate.randomness import hash64, unit
from breachwatch.simulate.world import World

ORDER_ID_BASE = 700_000_000
ORDER_ID_STRIDE = 3
HISTORY_ORDERS_PER_MEMBER = 3


class OrderBook:
    def __init__(self, world: World) -> None:
        self.world = world
        self.seed = world.seed
        self.history = HISTORY_ORDERS_PER_MEMBER * world.size
        # Historical buyers: any non-canary member with an address (withdrawn ones' orders are kept by law).
        self._hist_buyers = np.flatnonzero(~world.canary & (world.book_size > 0))
        self._cum_partner = np.cumsum(world.partner_share)
        self._times: list[np.ndarray] = []
        self._buyer: list[np.ndarray] = []
        self._entry: list[np.ndarray] = []
        self._seller: list[np.ndarray] = []
        self._flat: tuple[np.ndarray, ...] | None = None
        self.placed = 0

    # -- ids -----------------------------------------------------------------
    def _slot(self, k: np.ndarray) -> np.ndarray:
        return (hash64(self.seed, "order-slot", k) % np.uint64(ORDER_ID_STRIDE)).astype(np.int64)

    def order_id(self, k: np.ndarray) -> np.ndarray:
        k = np.asarray(k, dtype=np.int64)
        return ORDER_ID_BASE + ORDER_ID_STRIDE * k + self._slot(k)

    def order_number(self, order_id: np.ndarray) -> np.ndarray:
        """k for each order id, or -1 where the id was never issued."""
        rel = np.asarray(order_id, dtype=np.int64) - ORDER_ID_BASE
        k = rel // ORDER_ID_STRIDE
        valid = (rel >= 0) & (k < self.history + self.placed)
        valid &= (rel % ORDER_ID_STRIDE) == self._slot(np.maximum(k, 0))
        return np.where(valid, k, -1)

    # -- placing -------------------------------------------------------------
    def place(self, times: np.ndarray, buyer: np.ndarray, r: np.random.Generator) -> np.ndarray:
        """Record orders (buyers must have an address); return their k.

        Orders arrive window by window, so k is not in time order across
        windows; lookups go by each order's own time.
        """
        n = len(times)
        size = self.world.book_size[buyer]
        entry = (r.random(n) * size).astype(np.int64)
        seller = np.minimum(np.searchsorted(self._cum_partner, r.random(n), side="right"), len(self._cum_partner) - 1)
        for lst, arr in ((self._times, times), (self._buyer, buyer), (self._entry, entry), (self._seller, seller)):
            lst.append(np.asarray(arr, dtype=np.int64))
        self._flat = None
        k = self.history + self.placed + np.arange(n)
        self.placed += n
        return k

    def _arrays(self) -> tuple[np.ndarray, ...]:
        if self._flat is None:
            cat = [np.concatenate(x) if x else np.zeros(0, np.int64)
                   for x in (self._times, self._buyer, self._entry, self._seller)]
            self._times, self._buyer, self._entry, self._seller = ([c] for c in cat)
            self._flat = tuple(cat)
        return self._flat

    # -- lookups -------------------------------------------------------------
    def placed_between(self, start: int, end: int) -> np.ndarray:
        """k of the simulated orders placed in [start, end), in order of k."""
        times = self._arrays()[0]
        return self.history + np.flatnonzero((times >= start) & (times < end))

    def exists_at(self, k: np.ndarray, us: np.ndarray) -> np.ndarray:
        """Whether each order k (-1: none) had been placed by the matching instant; history orders always had."""
        k = np.asarray(k, dtype=np.int64)
        us = np.broadcast_to(np.asarray(us, dtype=np.int64), k.shape)
        times = self._arrays()[0]
        out = (k >= 0) & (k < self.history)
        sim = (k >= self.history) & (k < self.history + len(times))
        out[sim] = times[k[sim] - self.history] < us[sim]
        return out

    def details(self, k: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(time or -1 for history, buyer position, address-book entry, seller) of each order k."""
        k = np.asarray(k, dtype=np.int64)
        hist = k < self.history
        times, buyer, entry, seller = (np.empty(len(k), np.int64) for _ in range(4))
        if hist.any():
            kh = k[hist]
            b = self._hist_buyers[(hash64(self.seed, "order-buyer", kh) % np.uint64(len(self._hist_buyers)))
                                  .astype(np.int64)]
            buyer[hist] = b
            entry[hist] = (unit(self.seed, "order-entry", kh) * self.world.book_size[b]).astype(np.int64)
            seller[hist] = np.minimum(np.searchsorted(self._cum_partner, unit(self.seed, "order-seller", kh),
                                                      side="right"), len(self._cum_partner) - 1)
            times[hist] = -1
        if (~hist).any():
            t, b, e, s = self._arrays()
            i = k[~hist] - self.history
            times[~hist], buyer[~hist], entry[~hist], seller[~hist] = t[i], b[i], e[i], s[i]
        return times, buyer, entry, seller

    def recipient_codes(self, buyer: np.ndarray, entry: np.ndarray) -> np.ndarray:
        """Subject code of the person an order ships to (member id, or -k for recipient r-k)."""
        w = self.world
        own = w.has_self[buyer] & (entry == 0)
        return np.where(own, w.member_id[buyer], -(w.recip_start[buyer] + entry + 1 - w.has_self[buyer]))
