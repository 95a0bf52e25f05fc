"""The four ways to de-identify one value of a known entity type.

- mask: hide most characters, keep what people need to recognise their own
  data (010-****-5678, 900101-1******, 김*수, ab***@naver.com);
- redact: replace with the entity tag ([PHONE]);
- pseudonymize: a keyed HMAC-SHA256 token, the same for the same value under
  the same key (so joins and counts survive) and irreversible without it;
  values are normalised first, so 010-1234-5678 and 01012345678 agree;
- fpe: a format-preserving token, reversible with the key (see fpe.py).
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import re
from typing import Callable

from breachwatch.discover.deidentify import fpe
from breachwatch.discover.recognizers import checksums as ck
from breachwatch.discover.recognizers.korean_names import COMPOUND_SURNAMES, GIVEN_SYLLABLES

METHODS = ("mask", "redact", "pseudonymize", "fpe")
MASK = "*"
GENERIC = "TEXT"   # the entity of a whole cell in which no recognizer found anything
_DIGIT_ENTITIES = frozenset({"PHONE", "KR_RRN", "KR_FRN", "KR_BRN", "KR_DRIVER_LICENSE", "CREDIT_CARD",
                             "BANK_ACCOUNT"})
_SECRET_ENTITIES = frozenset({"JWT", "API_KEY"})


def _mask_alnum(value: str, keep_head: int, keep_tail: int, *, digits_only: bool = False) -> str:
    """Mask the changeable characters except the first `keep_head` and last `keep_tail` of them."""
    test: Callable[[str], bool] = str.isdigit if digits_only else str.isalnum
    idx = [i for i, c in enumerate(value) if test(c)]
    hide = set(idx[keep_head:len(idx) - keep_tail if keep_tail else None])
    return "".join(MASK if i in hide else c for i, c in enumerate(value))


def _mask_address(value: str) -> str:
    # Keep the area down to the road or neighbourhood; hide the numbers, and
    # everything inside parentheses (building and apartment names).
    m = re.search(r"[가-힣0-9]+(?:로|길|동|리|가)(?=\s|\d|$)", value)
    cut = m.end() if m else len(value) // 2
    out, depth = [], 0
    for c in value[cut:]:
        depth += (c == "(") - (c == ")")
        hide = c.isdigit() or (c.isascii() and c.isalpha()) or (depth > 0 and c.isalnum())
        out.append(MASK if hide else c)
    return value[:cut] + "".join(out)


def mask(value: str, entity: str) -> str:
    if entity == "PHONE":
        digits = sum(c.isdigit() for c in value)
        return _mask_alnum(value, 4 if value.startswith("+") else 3, 4, digits_only=True) if digits > 7 \
            else _mask_alnum(value, 0, 4, digits_only=True)
    if entity in ("KR_RRN", "KR_FRN"):
        return _mask_alnum(value, 7, 0, digits_only=True)
    if entity == "CREDIT_CARD":
        return _mask_alnum(value, 6, 4, digits_only=True)
    if entity == "EMAIL" and "@" in value:
        local, _, domain = value.partition("@")
        keep = 2 if len(local) > 3 else 1
        return local[:keep] + MASK * max(len(local) - keep, 1) + "@" + domain
    if entity == "PERSON_NAME":
        if len(value) <= 2:
            return value[0] + MASK * (len(value) - 1)
        return value[0] + MASK * (len(value) - 2) + value[-1]
    if entity == "ADDRESS":
        return _mask_address(value)
    if entity == "IP_ADDRESS":
        if "." in value:
            parts = value.split(".")
            return ".".join(parts[:2] + [MASK] * (len(parts) - 2))
        return ":".join(value.split(":")[:2]) + ":" + MASK
    if entity == "DATE_OF_BIRTH":
        return _mask_alnum(value, 4, 0, digits_only=True)
    if entity in _SECRET_ENTITIES:
        return value[:4] + MASK * 8
    if entity in _DIGIT_ENTITIES:
        return _mask_alnum(value, 2, 2, digits_only=True)
    return _mask_alnum(value, 1, 0)


def redact(value: str, entity: str) -> str:
    return f"[{entity if entity != GENERIC else 'REDACTED'}]"


def normalise(value: str, entity: str) -> str:
    if entity in _DIGIT_ENTITIES or entity == "IP_ADDRESS" and "." in value:
        digits = "".join(c for c in value if c.isdigit())
        if entity == "PHONE" and digits.startswith("82") and value.lstrip().startswith("+"):
            digits = "0" + digits[2:].lstrip("0")
        return digits
    if entity in ("EMAIL", "IBAN"):
        return value.replace(" ", "").lower()
    return value.strip()


def pseudonymize(value: str, entity: str, key: bytes) -> str:
    digest = hmac.new(key, f"{entity}\x00{normalise(value, entity)}".encode(), hashlib.sha256).digest()
    return f"{entity}_{base64.b32encode(digest[:10]).decode().lower()}"


_GIVEN_ALPHABET = "".join(sorted(GIVEN_SYLLABLES))
_DIGITS = "0123456789"


def _digit_positions(value: str) -> list[int]:
    return [i for i, c in enumerate(value) if c.isdigit()]


def _fpe_plan(value: str, entity: str) -> tuple[frozenset[int], str | None, Callable[[str], str] | None]:
    """What stays (positions), what may change (alphabet) and which check digit to recompute, per entity.

    Tokens keep what makes them recognisable as their entity (a phone's
    prefix, a card's issuer and a valid Luhn digit, a name's surname), so the
    recognizers find them again and --reverse can restore them inside text.
    """
    digits = _digit_positions(value)
    if entity == "PHONE":
        cut = next((i for i, c in enumerate(value) if c in "-)" and i > 1), None)
        head = set(range(cut + 1)) if cut is not None else set(digits[:5 if value.startswith("+") else 3])
        return frozenset(head), _DIGITS, None
    if entity in ("KR_RRN", "KR_FRN"):
        return frozenset(digits[:7]), _DIGITS, None
    if entity == "CREDIT_CARD" and len(digits) >= 12:
        return frozenset(digits[:6] + digits[-1:]), _DIGITS, lambda v: _set_check(v, ck.luhn)
    if entity == "KR_BRN" and len(digits) == 10:
        return frozenset(digits[:5] + digits[-1:]), _DIGITS, lambda v: _set_check(v, ck.brn_checksum)
    if entity == "KR_PASSPORT":
        return frozenset({0}), None, None
    if entity == "KR_DRIVER_LICENSE":
        return frozenset(digits[:2]) if value[:2].isdigit() else frozenset(), _DIGITS, None
    if entity in ("ADDRESS", "BANK_ACCOUNT", "DATE_OF_BIRTH"):
        return frozenset(), _DIGITS, None
    if entity == "PERSON_NAME":
        return frozenset(range(2 if value[:2] in COMPOUND_SURNAMES else 1)), _GIVEN_ALPHABET, None
    return frozenset(), None, None


def _set_check(value: str, check: Callable[[str], bool]) -> str:
    """Replace the last digit with the one that makes the check hold."""
    last = _digit_positions(value)[-1]
    digits = "".join(c for c in value if c.isdigit())
    for d in _DIGITS:
        if check(digits[:-1] + d):
            return value[:last] + d + value[last + 1:]
    return value


def fpe_token(value: str, entity: str, key: bytes) -> str:
    if entity == "EMAIL" and "@" in value:
        local, _, domain = value.partition("@")
        return fpe.encrypt(key, local, entity) + "@" + domain
    keep, alphabet, fix = _fpe_plan(value, entity)
    token = fpe.encrypt(key, value, entity, keep=keep, alphabet=alphabet)
    return fix(token) if fix else token


def fpe_reverse(token: str, entity: str, key: bytes) -> str:
    if entity == "EMAIL" and "@" in token:
        local, _, domain = token.partition("@")
        return fpe.decrypt(key, local, entity) + "@" + domain
    keep, alphabet, fix = _fpe_plan(token, entity)
    value = fpe.decrypt(key, token, entity, keep=keep, alphabet=alphabet)
    return fix(value) if fix else value


def transformer(method: str, key: bytes | None = None, *, reverse: bool = False) -> Callable[[str, str], str]:
    """A function (value, entity) -> replacement for the named method."""
    if method not in METHODS:
        raise ValueError(f"unknown method '{method}'. Fix: use one of {', '.join(METHODS)}.")
    if method in ("pseudonymize", "fpe") and not key:
        raise ValueError(f"--method {method} needs a key. Fix: pass --key-env VAR or --key-file FILE "
                         "(at least 16 bytes).")
    if reverse and method != "fpe":
        raise ValueError("--reverse works only with --method fpe (the other methods cannot be undone).")
    if method == "mask":
        return mask
    if method == "redact":
        return redact
    secret = bytes(key or b"")
    if method == "pseudonymize":
        return lambda value, entity: pseudonymize(value, entity, secret)

    def fn(value: str, entity: str) -> str:
        return fpe_reverse(value, entity, secret) if reverse else fpe_token(value, entity, secret)

    # A whole cell is tokenised as generic text: its token must decrypt under the
    # same tweak, whatever the recognizers make of the token later.
    fn.whole_entity = GENERIC  # type: ignore[attr-defined]
    return fn
