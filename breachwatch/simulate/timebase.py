"""Simulated time: integer microseconds since the epoch (UTC), Korean-time helpers, RFC 3339 text."""
from __future__ import annotations

from datetime import datetime, timezone

import numpy as np
import pyarrow as pa

SECOND = 1_000_000
MINUTE = 60 * SECOND
HOUR = 60 * MINUTE
DAY = 24 * HOUR
KST_OFFSET = 9 * HOUR  # Korea has no daylight saving time

# Share of a day's customer activity by KST hour: night trough around 04:00,
# a lunch bump, and the evening peak around 21:00-23:00 typical of Korean
# online shopping.
KST_HOURLY_ACTIVITY = np.array([
    5.0, 3.0, 1.7, 1.1, 0.9, 1.1, 1.9, 3.3, 4.6, 5.4, 5.9, 6.3,
    6.9, 6.4, 5.9, 5.8, 5.9, 6.1, 6.3, 7.0, 8.4, 9.6, 10.0, 8.2,
])
KST_HOURLY_SHARE = KST_HOURLY_ACTIVITY / KST_HOURLY_ACTIVITY.sum()


def to_us(dt: datetime) -> int:
    if dt.tzinfo is None:
        raise ValueError(f"time {dt.isoformat()} has no UTC offset. Fix: give an offset, e.g. 2025-06-01T15:00:00Z.")
    delta = dt.astimezone(timezone.utc) - datetime(1970, 1, 1, tzinfo=timezone.utc)
    return (delta.days * 86_400 + delta.seconds) * SECOND + delta.microseconds


def parse_time(text: str) -> int:
    try:
        dt = datetime.fromisoformat(text.strip())
    except ValueError as e:
        raise ValueError(f"start time '{text}' is not RFC 3339. Fix: write e.g. 2025-06-01T15:00:00Z.") from e
    return to_us(dt)


def rfc3339(us: int) -> str:
    return str(rfc3339_array(np.array([us], dtype=np.int64))[0])


def kst_hour(us: np.ndarray | int) -> np.ndarray | int:
    return ((np.asarray(us) + KST_OFFSET) // HOUR) % 24


def kst_day(us: np.ndarray | int) -> np.ndarray | int:
    """Days since the epoch in Korean time (a day starts at 00:00 KST)."""
    return (np.asarray(us) + KST_OFFSET) // DAY


def kst_weekday(us: int) -> int:
    """0 = Monday ... 6 = Sunday, in Korean time."""
    return int((kst_day(us) + 3) % 7)  # 1970-01-01 was a Thursday


def kst_midnight(us: int) -> int:
    return int(kst_day(us)) * DAY - KST_OFFSET


def next_kst_hour(us: int, hour: float) -> int:
    """The first instant at or after `us` whose Korean wall-clock time is `hour` (e.g. 22.5 = 22:30)."""
    t = kst_midnight(us) + int(hour * HOUR)
    return t if t >= us else t + DAY


_COLON, _DASH, _T, _DOT, _Z = (ord(c) for c in ":-T.Z")


def rfc3339_array(us: np.ndarray) -> pa.Array:
    """Microsecond UTC instants as 'YYYY-MM-DDTHH:MM:SS.ffffffZ' strings, vectorised.

    Arrow's strftime is an order of magnitude slower and the NDJSON writer
    formats every event's time, so the digits are laid out with numpy.
    """
    us = np.asarray(us, dtype=np.int64)
    n = len(us)
    days, rem = np.divmod(us, DAY)
    secs, micro = np.divmod(rem, SECOND)
    hh, rest = np.divmod(secs, 3600)
    mm, ss = np.divmod(rest, 60)
    udays, inverse = np.unique(days, return_inverse=True)
    dates = np.datetime_as_string(udays.astype("datetime64[D]"))
    if any(len(d) != 10 for d in dates):
        raise ValueError("a simulated time falls outside years 0000-9999. Fix: use a realistic --start.")
    dmat = np.frombuffer("".join(dates).encode("ascii"), dtype=np.uint8).reshape(len(udays), 10)
    out = np.empty((n, 27), dtype=np.uint8)
    out[:, :10] = dmat[inverse]
    out[:, 10] = _T
    out[:, 13] = out[:, 16] = _COLON
    out[:, 19] = _DOT
    out[:, 26] = _Z
    for col, value, width in ((11, hh, 2), (14, mm, 2), (17, ss, 2), (20, micro, 6)):
        v = value.copy()
        for k in range(width):
            out[:, col + width - 1 - k] = 48 + v % 10
            v //= 10
    offsets = (np.arange(n + 1, dtype=np.int64) * 27).astype(np.int32)
    return pa.Array.from_buffers(pa.string(), n, [None, pa.py_buffer(offsets), pa.py_buffer(out.tobytes())])
