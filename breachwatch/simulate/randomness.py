"""Seeded randomness that does not depend on how the run is cut into chunks.

Every stream is keyed by (seed, stream name, ...), so a window's events are the
same whichever windows came before it, and a per-entity choice (a member's
phone model, an order's buyer) is a pure function of its id.
"""
from __future__ import annotations

import zlib

import numpy as np
import pyarrow as pa

_U64 = np.uint64
_MASK = (1 << 64) - 1


def key_of(name: str) -> int:
    """A stable integer for a stream name (Python's own hash() changes between processes)."""
    return zlib.crc32(name.encode("utf-8"))


def rng(seed: int, *keys: int | str) -> np.random.Generator:
    """A generator for one stream; keys are names or non-negative integers."""
    parts = [seed & _MASK] + [key_of(k) if isinstance(k, str) else int(k) & _MASK for k in keys]
    return np.random.default_rng(parts)


def mix64(x: np.ndarray) -> np.ndarray:
    """SplitMix64's finaliser: a bijection on uint64, so distinct inputs give distinct outputs."""
    z = np.asarray(x, dtype=_U64).copy()
    with np.errstate(over="ignore"):
        z ^= z >> _U64(30)
        z *= _U64(0xBF58476D1CE4E5B9)
        z ^= z >> _U64(27)
        z *= _U64(0x94D049BB133111EB)
        z ^= z >> _U64(31)
    return z


def stream_key(seed: int, name: str) -> np.uint64:
    return mix64(np.array([(seed * 0x9E3779B97F4A7C15 + key_of(name)) & _MASK], dtype=_U64))[0]


def hash64(seed: int, name: str, values: np.ndarray) -> np.ndarray:
    """Per-value pseudo-random uint64, a pure function of (seed, name, value)."""
    v = np.asarray(values).astype(np.int64).view(_U64)
    return mix64(v ^ stream_key(seed, name))


def unit(seed: int, name: str, values: np.ndarray) -> np.ndarray:
    """Per-value uniform floats in [0, 1)."""
    return (hash64(seed, name, values) >> _U64(11)).astype(np.float64) / float(1 << 53)


# Two hex digits per byte value, so a 64-bit word becomes 16 digits in one indexing step.
_HEX_PAIRS = np.frombuffer("".join(f"{b:02x}" for b in range(256)).encode("ascii"), dtype=np.uint8).reshape(256, 2)


def hex_strings(words: np.ndarray, prefix: str = "") -> pa.Array:
    """Each uint64 as 16 lowercase hex digits (optionally prefixed), built without a Python loop."""
    w = np.asarray(words, dtype=_U64)
    n = len(w)
    p = prefix.encode("ascii")
    digits = _HEX_PAIRS[w.astype(">u8").view(np.uint8).reshape(n, 8)].reshape(n, 16)
    if p:
        digits = np.concatenate([np.broadcast_to(np.frombuffer(p, dtype=np.uint8), (n, len(p))), digits], axis=1)
    width = len(p) + 16
    offsets = (np.arange(n + 1, dtype=np.int64) * width).astype(np.int32)
    return pa.Array.from_buffers(pa.string(), n, [None, pa.py_buffer(offsets),
                                                  pa.py_buffer(np.ascontiguousarray(digits).tobytes())])


def unique_ids(seed: int, domain: int, block: int, start: int, n: int, prefix: str = "") -> pa.Array:
    """n distinct opaque ids for (domain, block, start..start+n).

    The packed input (8-bit domain, 28-bit block, 28-bit counter) is unique, and
    mix64 is a bijection, so ids never collide within a run; they reveal nothing
    about which generator or scenario made them.
    """
    if not (0 <= domain < 256 and 0 <= block < (1 << 28) and start + n <= (1 << 28)):
        raise ValueError(f"id space exceeded (domain {domain}, block {block}, counter {start + n}). "
                         "Fix: shorten the run or raise the window count per day.")
    words = (np.uint64(domain) << np.uint64(56)) | (np.uint64(block) << np.uint64(28)) \
        | np.arange(start, start + n, dtype=_U64)
    return hex_strings(mix64(words ^ stream_key(seed, "event-id")), prefix)


def ids_for(seed: int, domain: int, values: np.ndarray, prefix: str = "") -> pa.Array:
    """A distinct opaque id per distinct non-negative value (< 2**56) within a domain."""
    v = np.asarray(values, dtype=np.int64)
    if len(v) and (v.min() < 0 or v.max() >= (1 << 56)):
        raise ValueError("ids_for: values must be in [0, 2**56)")
    words = (np.uint64(domain) << np.uint64(56)) | v.astype(_U64)
    return hex_strings(mix64(words ^ stream_key(seed, "event-id")), prefix)
