"""What a recognizer is: patterns, a validator, a check digit and context words.

The shape follows Presidio's pattern recognizers (a regex with a base score,
`validate_result`, context words that raise the score), but a recognizer here
is plain data: the engine (engine.py) compiles all of them together and runs
them over a whole column or block of text at once instead of value by value.

Scoring of one candidate span:

    base score of the pattern that matched
    + validate(text)          structural check; None rejects the candidate
    + checksum_boost          when the check digit holds
    + context_boost           when a context word is near, or the column is named for it
    - negative_penalty        when the nearest label before it names something else (주문번호)

A check digit that fails rejects the candidate only when `checksum_rejects`
is set: identifiers whose newer issues carry no check digit (resident
registration numbers since October 2020) merely miss the boost.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

Validator = Callable[[str], "float | None"]
Checksum = Callable[[str], "bool | None"]


@dataclass(frozen=True)
class Pattern:
    """A regex with its base score, and how the engine finds places worth trying it.

    `numeric`: the pattern starts with a digit (or + or a parenthesis before
    one); the engine tries it only on runs of digits and separators, found in
    one pass for all numeric patterns. `anchors`: literals the match contains
    (such as "@"); the engine tries the pattern only in `window` (characters
    before, after) around each occurrence. Otherwise it scans the whole text.
    """

    name: str
    regex: str
    score: float
    numeric: bool = False
    anchors: tuple[str, ...] = ()
    window: tuple[int, int] = (64, 64)


@dataclass(frozen=True)
class Recognizer:
    """One kind of personal data, as data the engine can run in bulk."""

    name: str                     # unique, e.g. "kr_rrn"
    entity: str                   # what it finds, e.g. "KR_RRN"; several recognizers may share one
    field: str                    # the catalog field it fills, e.g. "resident_registration_number"
    category: str                 # the catalog category of that field
    patterns: tuple[Pattern, ...]
    context: tuple[str, ...] = ()
    validate: Validator | None = None
    checksum: Checksum | None = None
    checksum_boost: float = 0.3
    checksum_rejects: bool = False
    context_boost: float = 0.35
    requires_context: bool = False   # never reported without a context word or a column named for it
    # Labels that, written right before a match, say it is something else
    # ("주문번호 01012345678" is an order number shaped like a phone).
    negative_context: tuple[str, ...] = ()
    negative_penalty: float = 0.35
    flags: int = 0
    description: str = ""


# Labels of the numbers that most often look like personal identifiers.
NUMBER_LABELS = ("주문번호", "주문", "송장번호", "운송장", "송장", "상품코드", "상품번호", "바코드", "모델번호", "제품번호",
                 "재고", "처리시각", "타임스탬프", "일련번호", "order", "order no", "invoice", "tracking", "product",
                 "sku", "barcode", "ean", "timestamp", "serial")


def digits_only(text: str) -> str:
    return "".join(c for c in text if c.isdigit())
