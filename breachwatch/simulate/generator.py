"""The one interface every source of events implements, benign or malicious."""
from __future__ import annotations

from typing import Protocol

import pyarrow as pa

from breachwatch.simulate.context import Window


class Generator(Protocol):
    # Distinct small integer per generator: the domain of its event, token and session ids.
    code: int
    name: str

    def window(self, w: Window) -> list[pa.Table]:
        """Events that start in window w (times >= w.start; a session may run past w.end)."""
        ...

    def peak_rate(self) -> float:
        """Events per second at the busiest moment, used to size windows so memory stays bounded."""
        ...
