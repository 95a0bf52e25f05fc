"""carrier_renumbering: a Korean carrier moves its customers to new address blocks.

Carriers renumber when they consolidate or acquire address space: overnight,
in a maintenance window, every subscriber of one ASN gets an address from the
new blocks. Home broadband addresses are sticky, so each member of that
carrier now has a new, equally sticky home address; mobile addresses keep
changing per session but from the new blocks only. The ASN and country stay
the same; every address and prefix of a quarter of the customer base is new.
"""
from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from breachwatch.simulate import network
from breachwatch.simulate.context import SimContext
from breachwatch.simulate.network import Network
from breachwatch.simulate.randomness import hash64
from breachwatch.simulate.scenarios.base import when
from breachwatch.simulate.surprises.base import Surprise

_KOREAN = network.KR_BROADBAND + network.KR_MOBILE


def _simulated_networks() -> list[Network]:
    out: list[Network] = []
    for value in vars(network).values():
        if isinstance(value, Network):
            out.append(value)
        elif isinstance(value, tuple) and value and all(isinstance(n, Network) for n in value):
            out.extend(value)
    return out


@dataclass
class Params:
    asn: str = "AS9318"                                 # the carrier (default SK Broadband)
    prefixes: str = "182.208.0.0/12 211.104.0.0/13"     # its new blocks, space-separated
    start_h: float | None = None                        # hours after the warm-up (default: 04:00 KST)


class CarrierRenumbering(Surprise):
    name = "carrier_renumbering"
    summary = "a Korean carrier moves all its customers to new address blocks overnight (same ASN)"
    Params = Params
    kst_hour = 4.0

    def __init__(self, ctx: SimContext, overrides: dict[str, Any], code: int) -> None:
        super().__init__(ctx, overrides, code)
        p = self.p
        carriers = sorted({n.asn for n in _KOREAN if n.asn})
        if p.asn not in carriers:
            raise ValueError(f"--param {self.name}.asn={p.asn}: no simulated Korean carrier has that ASN. "
                             f"Fix: use one of {', '.join(carriers)}.")
        self.prefixes = self._parse_prefixes(p.prefixes)
        self.old = [n for n in _KOREAN if n.asn == p.asn]
        self.new = network.Pool((Network(p.asn, f"{self.old[0].org} (renumbered)", "KR", tuple(self.prefixes)),))
        self.start, self.end = self.schedule(p.start_h)
        self._hit: tuple[int, np.ndarray] | None = None

    def _parse_prefixes(self, text: str) -> list[str]:
        taken = [ipaddress.ip_network(q) for n in _simulated_networks() for q in n.prefixes]
        out = []
        for item in text.split():
            try:
                block = ipaddress.ip_network(item)
            except ValueError as e:
                raise ValueError(f"--param {self.name}.prefixes: '{item}' is not an address block ({e}). "
                                 "Fix: write IPv4 blocks like 182.208.0.0/12, separated by spaces.") from e
            if block.version != 4 or block.num_addresses < 256:
                raise ValueError(f"--param {self.name}.prefixes: '{item}' must be an IPv4 block of /24 or larger. "
                                 "Fix: e.g. 182.208.0.0/12.")
            clash = [str(q) for q in taken if q.overlaps(block)]
            if clash:
                raise ValueError(f"--param {self.name}.prefixes: '{item}' overlaps {', '.join(clash)}, already used "
                                 "by simulated networks. Fix: choose blocks no simulated network uses.")
            out.append(str(block))
        if not out:
            raise ValueError(f"--param {self.name}.prefixes is empty. Fix: e.g. {self.name}.prefixes=182.208.0.0/12.")
        return out

    def _carrier(self, networks: Sequence[Network]) -> np.ndarray:
        """Which of the session generator's networks belong to the carrier (computed once per generator)."""
        if self._hit is None or self._hit[0] != id(networks):
            self._hit = (id(networks), np.array([n.asn == self.p.asn and n.country == "KR" for n in networks]))
        return self._hit[1]

    def addresses(self, networks: Sequence[Network], net: np.ndarray, ip: np.ndarray, home: np.ndarray,
                  member: np.ndarray, start: np.ndarray, h: np.ndarray) -> np.ndarray:
        moved = self._carrier(networks)[net] & (start >= self.start)
        if not moved.any():
            return ip
        ip = ip.copy()
        # A home line keeps one address, now from the new blocks; a phone gets a fresh one per session.
        sticky = hash64(self.ctx.seed, "renumbered-home", self.ctx.world.member_id[member])
        key = np.where(home, sticky, np.asarray(h, dtype=np.uint64))
        ip[moved] = self.new.addresses(np.zeros(int(moved.sum()), dtype=np.int64), key[moved])
        return ip

    def entities(self) -> dict[str, list[str]]:
        return {"asns": [self.p.asn], "prefixes": self.prefixes}

    def context(self) -> dict[str, Any]:
        w = self.ctx.world
        home = np.array([n.asn == self.p.asn for n in network.KR_BROADBAND])[w.home_net]
        mobile = np.array([n.asn == self.p.asn for n in network.KR_MOBILE])[w.mobile_net]
        return {"renumbered_at": when(self.start), "carrier": self.old[0].org,
                "members_on_carrier": int(((w.activity > 0) & (home | mobile)).sum()),
                "old_prefixes": [q for n in self.old for q in n.prefixes], "new_prefixes": self.prefixes}
