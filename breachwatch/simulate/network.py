"""Where requests come from: networks (ASN, country, address blocks) and vectorised IP picking.

The prefixes are illustrative blocks of the kind each network announces, not a
geolocation database; what matters for detection is that Korean customers
arrive from a handful of Korean broadband and mobile carriers, and that the
2025 attacker arrived from thousands of foreign addresses.
"""
from __future__ import annotations

import ipaddress
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc


@dataclass(frozen=True)
class Network:
    asn: str | None
    org: str
    country: str
    prefixes: tuple[str, ...]
    weight: float = 1.0


def _n(asn: str | None, org: str, country: str, prefixes: str, weight: float = 1.0) -> Network:
    return Network(asn, org, country, tuple(prefixes.split()), weight)


KR_BROADBAND = (
    _n("AS4766", "Korea Telecom", "KR", "121.128.0.0/10 211.200.0.0/13 175.192.0.0/12", 0.41),
    _n("AS9318", "SK Broadband", "KR", "1.224.0.0/12 58.120.0.0/13 218.232.0.0/13", 0.29),
    _n("AS3786", "LG Uplus", "KR", "112.160.0.0/11 122.32.0.0/12", 0.25),
    _n("AS38091", "LG HelloVision", "KR", "175.112.0.0/13", 0.05),
)
KR_MOBILE = (
    _n("AS9644", "SK Telecom", "KR", "223.32.0.0/11 27.160.0.0/11", 0.45),
    _n("AS4766", "Korea Telecom", "KR", "39.7.0.0/16 110.70.0.0/15 175.223.0.0/16", 0.30),
    _n("AS17858", "LG Uplus", "KR", "106.101.0.0/16 117.111.0.0/16 211.234.0.0/16", 0.25),
)
# Rented servers and proxy exits abroad: where the 2025 attacker's 2,313 addresses were.
FOREIGN_HOSTING = (
    _n("AS16509", "Amazon", "US", "3.80.0.0/12 54.144.0.0/12", 0.18),
    _n("AS14061", "DigitalOcean", "US", "159.203.0.0/16 167.99.0.0/16", 0.12),
    _n("AS2516", "KDDI", "JP", "106.128.0.0/11 111.86.0.0/15", 0.12),
    _n("AS45102", "Alibaba Cloud", "SG", "47.74.0.0/15 8.219.0.0/16", 0.12),
    _n("AS4760", "HKT", "HK", "112.118.0.0/15 14.0.128.0/17", 0.10),
    _n("AS24940", "Hetzner", "DE", "88.198.0.0/16 78.46.0.0/15", 0.10),
    _n("AS60781", "LeaseWeb", "NL", "37.48.64.0/18 212.32.224.0/19", 0.08),
    _n("AS7552", "Viettel", "VN", "27.64.0.0/12 171.224.0.0/11", 0.10),
    _n("AS4134", "Chinanet", "CN", "113.64.0.0/11 183.0.0.0/10", 0.08),
)
# Hotel and home networks abroad, for customers travelling.
FOREIGN_CONSUMER = (
    _n("AS4713", "NTT OCN", "JP", "153.128.0.0/10", 0.30),
    _n("AS7922", "Comcast", "US", "73.0.0.0/8", 0.15),
    _n("AS7552", "Viettel", "VN", "27.64.0.0/12", 0.20),
    _n("AS45758", "Triple T Broadband", "TH", "171.96.0.0/13", 0.15),
    _n("AS3215", "Orange", "FR", "90.0.0.0/9", 0.08),
    _n("AS9299", "PLDT", "PH", "112.198.0.0/15", 0.07),
    _n("AS1221", "Telstra", "AU", "101.160.0.0/11", 0.05),
)
# Residential proxy exits used by credential-stuffing tools.
RESIDENTIAL_PROXIES = (
    _n("AS28573", "Claro", "BR", "177.0.0.0/11", 0.2),
    _n("AS24560", "Bharti Airtel", "IN", "122.160.0.0/12", 0.2),
    _n("AS7713", "Telkom Indonesia", "ID", "36.64.0.0/11", 0.15),
    _n("AS7922", "Comcast", "US", "73.0.0.0/8", 0.15),
    _n("AS7552", "Viettel", "VN", "27.64.0.0/12", 0.1),
    _n("AS12389", "Rostelecom", "RU", "95.24.0.0/13", 0.1),
    _n("AS4766", "Korea Telecom", "KR", "121.128.0.0/10", 0.1),
)
KR_CLOUD = (_n("AS16509", "Amazon (Seoul region)", "KR", "3.34.0.0/15 13.124.0.0/16 52.78.0.0/16"),)
OFFICE = _n(None, "corporate network", "KR", "10.12.0.0/16")
INTERNAL = _n(None, "internal services", "KR", "10.30.0.0/16")


_DOT = pa.scalar(".", pa.string())


class Pool:
    """A weighted set of networks to draw addresses from, all at once for many requests."""

    def __init__(self, networks: tuple[Network, ...]) -> None:
        self.networks = networks
        w = np.array([n.weight for n in networks], dtype=float)
        self.share = w / w.sum()
        bases, sizes, owner = [], [], []
        for i, net in enumerate(networks):
            for p in net.prefixes:
                block = ipaddress.ip_network(p)
                bases.append(int(block.network_address))
                sizes.append(block.num_addresses)
                owner.append(i)
        self._base = np.array(bases, dtype=np.int64)
        self._size = np.array(sizes, dtype=np.int64)
        self._owner = np.array(owner, dtype=np.int64)
        self._first = np.searchsorted(self._owner, np.arange(len(networks)))
        self._count = np.bincount(self._owner, minlength=len(networks))
        self.asn = pa.array([n.asn for n in networks], pa.string())
        self.country = pa.array([n.country for n in networks], pa.string())

    def pick_networks(self, u: np.ndarray) -> np.ndarray:
        """Network index for uniforms u in [0, 1), by weight."""
        return np.minimum(np.searchsorted(np.cumsum(self.share), u, side="right"), len(self.networks) - 1)

    def addresses(self, net: np.ndarray, h: np.ndarray) -> np.ndarray:
        """An IPv4 address (as int) inside network `net` for each 64-bit hash h."""
        h = np.asarray(h, dtype=np.uint64)
        block = self._first[net] + (h % self._count[net].astype(np.uint64)).astype(np.int64)
        host = ((h >> np.uint64(20)) % (self._size[block] - 2).astype(np.uint64)).astype(np.int64) + 1
        return self._base[block] + host


def dotted(ips: np.ndarray) -> pa.Array:
    """IPv4 integers as dotted-quad strings."""
    ips = np.asarray(ips, dtype=np.int64)
    octets = [pc.cast(pa.array((ips >> s) & 255), pa.string()) for s in (24, 16, 8, 0)]
    return pc.binary_join_element_wise(*octets, _DOT)
