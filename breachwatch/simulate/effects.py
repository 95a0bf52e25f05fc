"""How benign surprises reshape customers' own sessions (where they come from, with which client).

Customer sessions ask these hooks at three points: who is abroad, which
address a session comes from, which client build it shows. A surprise that
changes sessions (travel, a carrier renumbering, an app release) overrides
the hook it needs; with no surprise selected every hook hands its input back
untouched and draws no randomness, so runs without surprises are byte-identical
to runs made before surprises existed.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import pyarrow as pa

from breachwatch.simulate.network import Network


class SessionEffect:
    """One surprise's changes to sessions; each hook gets per-session arrays and returns the changed one."""

    def abroad(self, member: np.ndarray, start: np.ndarray, away: np.ndarray) -> np.ndarray:
        """Which sessions' members are abroad (`away`: the world's own travellers)."""
        return away

    def addresses(self, networks: Sequence[Network], net: np.ndarray, ip: np.ndarray, home: np.ndarray,
                  member: np.ndarray, start: np.ndarray, h: np.ndarray) -> np.ndarray:
        """Source addresses (IPv4 as int) of sessions from network `net` (an index into `networks`);
        `home` marks home broadband, `h` is each session's own 64-bit hash."""
        return ip

    def clients(self, client: np.ndarray, start: np.ndarray, ua: pa.Array, fp: pa.Array) -> tuple[pa.Array, pa.Array]:
        """User agents and TLS fingerprints of sessions whose client (clients.ALL_CUSTOMER_CLIENTS) is `client`."""
        return ua, fp


class SessionEffects(SessionEffect):
    """All selected surprises' effects, applied in turn (none: sessions as the world makes them)."""

    def __init__(self, effects: Sequence[SessionEffect] = ()) -> None:
        self.effects = list(effects)

    def abroad(self, member: np.ndarray, start: np.ndarray, away: np.ndarray) -> np.ndarray:
        for e in self.effects:
            away = e.abroad(member, start, away)
        return away

    def addresses(self, networks: Sequence[Network], net: np.ndarray, ip: np.ndarray, home: np.ndarray,
                  member: np.ndarray, start: np.ndarray, h: np.ndarray) -> np.ndarray:
        for e in self.effects:
            ip = e.addresses(networks, net, ip, home, member, start, h)
        return ip

    def clients(self, client: np.ndarray, start: np.ndarray, ua: pa.Array, fp: pa.Array) -> tuple[pa.Array, pa.Array]:
        for e in self.effects:
            ua, fp = e.clients(client, start, ua, fp)
        return ua, fp
