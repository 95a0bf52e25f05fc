"""Format-preserving tokens: a keyed, reversible permutation of a value that
keeps its shape. Digits stay digits, Latin letters stay letters of the same
case, Hangul syllables stay Hangul syllables, and every other character
(hyphens, dots, spaces, @) stays where it is.

Construction: the changeable characters are read as one number in mixed
radix (10, 26, 26 or 11,172 per position); that number is enciphered with a
10-round Feistel network over the smallest power of two that holds the
domain, with HMAC-SHA256 as round function and the value's shape plus a
caller's tweak (the entity type) as tweak; results outside the domain are
enciphered again (cycle walking) until they fall inside. Decryption runs the
rounds backwards. The structure follows NIST FF1 but the round function is
HMAC, so this is not a certified FF1 implementation: use it to make
realistic test and analytics data, and keep the key as secret as the data.

>>> key = b"k" * 32
>>> token = encrypt(key, "010-1234-5678", "PHONE")
>>> len(token) == 13 and token[3] == "-" and decrypt(key, token, "PHONE")
'010-1234-5678'
"""
from __future__ import annotations

import hashlib
import hmac

ROUNDS = 10  # even, so the halves end at their starting sizes
HANGUL_FIRST, HANGUL_COUNT = 0xAC00, 11172


def _radix(c: str) -> tuple[int, int, int] | None:
    """(radix, digit value, class base codepoint) for a changeable character."""
    o = ord(c)
    if 48 <= o <= 57:
        return 10, o - 48, 48
    if 97 <= o <= 122:
        return 26, o - 97, 97
    if 65 <= o <= 90:
        return 26, o - 65, 65
    if HANGUL_FIRST <= o < HANGUL_FIRST + HANGUL_COUNT:
        return HANGUL_COUNT, o - HANGUL_FIRST, HANGUL_FIRST
    return None


def _shape(value: str, keep: frozenset[int], alphabet: str | None
           ) -> tuple[list[int], list[tuple[int, int]], str]:
    """Positions of changeable characters, their (radix, base), and the shape used as tweak.

    With an `alphabet`, only its characters change, and only into each other
    (radix = its size, base = -1 marks "index into the alphabet").
    """
    positions, classes, shape = [], [], []
    for i, c in enumerate(value):
        if i in keep:
            # A placeholder, not the character: a kept check digit is recomputed
            # after encryption and must not change the tweak.
            shape.append("_")
            continue
        if alphabet is not None:
            if c in alphabet:
                positions.append(i)
                classes.append((len(alphabet), -1))
                shape.append("#")
            else:
                shape.append(c)
            continue
        r = _radix(c)
        if r is None:
            shape.append(c)
        else:
            positions.append(i)
            classes.append((r[0], r[2]))
            shape.append({10: "9", 26: "a" if r[2] == 97 else "A"}.get(r[0], "가"))
    return positions, classes, "".join(shape)


def _to_int(value: str, positions: list[int], classes: list[tuple[int, int]], alphabet: str | None) -> int:
    n = 0
    for p, (radix, base) in zip(positions, classes):
        n = n * radix + (alphabet.index(value[p]) if base < 0 else ord(value[p]) - base)  # type: ignore[union-attr]
    return n


def _from_int(n: int, value: str, positions: list[int], classes: list[tuple[int, int]],
              alphabet: str | None) -> str:
    chars = list(value)
    for p, (radix, base) in zip(reversed(positions), reversed(classes)):
        n, d = divmod(n, radix)
        chars[p] = alphabet[d] if base < 0 else chr(base + d)  # type: ignore[index]
    return "".join(chars)


def _round(key: bytes, tweak: bytes, i: int, half: int, out_bits: int) -> int:
    message = tweak + bytes([i]) + half.to_bytes(max(1, (half.bit_length() + 7) // 8), "big")
    digest = hmac.new(key, message, hashlib.sha256).digest()
    while len(digest) * 8 < out_bits:  # domains wider than 256 bits (long Hangul text)
        digest += hmac.new(key, digest, hashlib.sha256).digest()
    return int.from_bytes(digest, "big") >> (len(digest) * 8 - out_bits) if out_bits else 0


def _feistel(key: bytes, tweak: bytes, x: int, bits: int, decrypt: bool) -> int:
    u = bits // 2
    v = bits - u
    a, b = x >> v, x & ((1 << v) - 1)
    sizes = [(u, v) if i % 2 == 0 else (v, u) for i in range(ROUNDS)]
    if not decrypt:
        for i in range(ROUNDS):
            size_a = sizes[i][0]
            c = (a + _round(key, tweak, i, b, size_a)) & ((1 << size_a) - 1)
            a, b = b, c
        return (a << v) | b  # an even number of rounds leaves the halves at their starting sizes
    for i in reversed(range(ROUNDS)):
        size_a = sizes[i][0]
        a, b = (b - _round(key, tweak, i, a, size_a)) & ((1 << size_a) - 1), a
    return (a << v) | b


def _permute(key: bytes, value: str, tweak: str, decrypt: bool, keep: frozenset[int],
             alphabet: str | None) -> str:
    positions, classes, shape = _shape(value, keep, alphabet)
    domain = 1
    for radix, _ in classes:
        domain *= radix
    if domain <= 1:
        return value
    bits = max(2, (domain - 1).bit_length())
    t = f"{tweak}|{shape}".encode()
    x = _to_int(value, positions, classes, alphabet)
    x = _feistel(key, t, x, bits, decrypt)
    while x >= domain:  # cycle walking: a permutation of [0, 2^bits) restricted to [0, domain)
        x = _feistel(key, t, x, bits, decrypt)
    return _from_int(x, value, positions, classes, alphabet)


def encrypt(key: bytes, value: str, tweak: str = "", *, keep: frozenset[int] = frozenset(),
            alphabet: str | None = None) -> str:
    """The token for `value`; positions in `keep` stay as they are; with `alphabet`, only its characters change."""
    return _permute(key, value, tweak, False, keep, alphabet)


def decrypt(key: bytes, token: str, tweak: str = "", *, keep: frozenset[int] = frozenset(),
            alphabet: str | None = None) -> str:
    return _permute(key, token, tweak, True, keep, alphabet)
