"""Recognizers that are not Korea-specific: email, international phones
(libphonenumber), payment cards (Luhn), IBAN, IP addresses, dates of birth,
and the JWTs and API keys that must never sit in logs.
"""
from __future__ import annotations

import base64
import binascii
import datetime as _dt
import ipaddress
import math
import re

import orjson
import phonenumbers

from breachwatch.discover.recognizers import checksums as ck
from breachwatch.discover.recognizers.base import NUMBER_LABELS, Pattern, Recognizer, digits_only

EMAIL = Recognizer(
    name="email", entity="EMAIL", field="email", category="personal",
    description="local@domain.tld",
    patterns=(
        Pattern("address", r"(?<![\w.+%-])[A-Za-z0-9][A-Za-z0-9._%+-]{0,63}@(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}"
                           r"[A-Za-z0-9])?\.)+[A-Za-z]{2,24}(?![\w-])", 0.85, anchors=("@",), window=(64, 260)),
    ),
    context=("이메일", "메일", "전자우편", "email", "e-mail", "mail"),
    validate=lambda text: None if ".." in text else 0.0,
    context_boost=0.15,
)


def _valid_international_number(text: str) -> float | None:
    try:
        number = phonenumbers.parse(text, None)
    except phonenumbers.NumberParseException:
        return None
    return 0.2 if phonenumbers.is_valid_number(number) else None


PHONE_INTERNATIONAL = Recognizer(
    name="intl_phone", entity="PHONE", field="phone", category="personal",
    description="+CC numbers outside Korea, validated by libphonenumber",
    patterns=(
        Pattern("e164", r"(?<![\w+])\+(?!82)[1-9]\d{0,2}[-. ]?(?:\(\d{1,4}\)[-. ]?)?\d{1,4}"
                        r"(?:[-. ]?\d{2,4}){1,4}(?![\d-])",
                0.5, numeric=True),
    ),
    negative_context=NUMBER_LABELS,
    context=("phone", "mobile", "tel", "cell", "contact", "전화", "연락처"),
    validate=_valid_international_number,
    context_boost=0.2,
)

# Issuer prefixes of the card networks seen in Korea; a 15-16 digit run with
# none of them is an order or product number, not a card.
_IIN = re.compile(r"4|5[1-5]|2(?:2[2-9]|[3-6]\d|7[01]|720)|3[47]|6(?:011|5|4[4-9]|2)|35|9[0-9]")


def _card_structure(text: str) -> float | None:
    digits = digits_only(text)
    if not 13 <= len(digits) <= 19 or not _IIN.match(digits):
        return None
    return 0.0


PAYMENT_CARD = Recognizer(
    name="payment_card", entity="CREDIT_CARD", field="payment_card", category="credential",
    description="13-19 digit card numbers with a known issuer prefix and a Luhn check digit",
    patterns=(
        Pattern("grouped", r"(?<![\d-])\d{4}[- ]\d{4}[- ]\d{4}[- ]\d{1,4}(?![\d-])", 0.5, numeric=True),
        Pattern("amex grouped", r"(?<![\d-])3[47]\d\d[- ]\d{6}[- ]\d{5}(?![\d-])", 0.5, numeric=True),
        Pattern("plain", r"(?<![\d-])\d{15,16}(?![\d-])", 0.3, numeric=True),
    ),
    negative_context=NUMBER_LABELS,
    context=("카드번호", "카드", "신용카드", "체크카드", "결제", "card", "credit", "visa", "mastercard", "amex", "pan"),
    validate=_card_structure,
    checksum=lambda text: ck.luhn(digits_only(text)),
    checksum_rejects=True,
    checksum_boost=0.35,
    context_boost=0.2,
)

IBAN = Recognizer(
    name="iban", entity="IBAN", field="bank_account", category="personal",
    description="International bank account numbers, ISO 13616 length and mod-97 check",
    patterns=(
        Pattern("iban", r"(?<![A-Z0-9])[A-Z]{2}\d\d(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,4})?(?![A-Z0-9])", 0.5),
    ),
    context=("iban", "계좌", "bank", "account"),
    checksum=lambda text: ck.iban_valid(text.replace(" ", "")),
    checksum_rejects=True,
    checksum_boost=0.4,
    context_boost=0.1,
)


def _ip_valid(text: str) -> float | None:
    try:
        addr = ipaddress.ip_address(text)
    except ValueError:
        return None
    if addr.is_unspecified:
        return None
    return 0.0


IP_ADDRESS = Recognizer(
    name="ip_address", entity="IP_ADDRESS", field="ip_address", category="personal",
    description="IPv4 dotted quads and IPv6 addresses, validated by the ipaddress module",
    patterns=(
        Pattern("ipv4", r"(?<![\d.])(?:(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)"
                        r"(?!\.?\d)", 0.6, numeric=True),
        Pattern("ipv6", r"(?<![\w:.])(?:[0-9A-Fa-f]{1,4}:){1,7}:?(?::?[0-9A-Fa-f]{1,4}){1,7}(?![\w:]|\.\d)",
                0.55, anchors=(":",), window=(40, 48)),
    ),
    context=("아이피", "접속ip", "ip주소", "ip address", "ip", "client", "remote", "src"),
    validate=_ip_valid,
    context_boost=0.25,
)

_MONTHS = ("Jan(?:uary)?|Feb(?:ruary)?|Mar(?:ch)?|Apr(?:il)?|May|June?|July?|Aug(?:ust)?|Sep(?:t(?:ember)?)?|"
           "Oct(?:ober)?|Nov(?:ember)?|Dec(?:ember)?")
_MONTH_NUMBER = {m[:3].lower(): i + 1 for i, m in enumerate(
    ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"])}


def _parse_date(text: str) -> _dt.date | None:
    nums = [int(x) for x in re.findall(r"\d+", text)]
    month_word = re.search(r"[A-Za-z]{3}", text)
    try:
        if month_word:
            month = _MONTH_NUMBER[month_word.group().lower()]
            day, year = (nums[0], nums[1]) if nums[1] > 31 else (nums[1], nums[0])
            return _dt.date(year, month, day)
        if len(nums) == 1:  # YYYYMMDD
            s = str(nums[0]).zfill(8)
            return _dt.date(int(s[:4]), int(s[4:6]), int(s[6:]))
        if nums[0] > 31:  # year first
            return _dt.date(nums[0], nums[1], nums[2])
        year = nums[2]
        try:  # day/month/year, as most of the world writes it
            return _dt.date(year, nums[1], nums[0])
        except ValueError:
            return _dt.date(year, nums[0], nums[1])
    except (ValueError, IndexError, KeyError):
        return None


def _birth_date(text: str) -> float | None:
    born = _parse_date(text)
    if born is None or born.year < 1900 or born > _dt.date.today():
        return None
    return 0.0


DATE_OF_BIRTH = Recognizer(
    name="date_of_birth", entity="DATE_OF_BIRTH", field="birth_date", category="personal",
    description="Dates next to a birth-date label (YYYY-MM-DD, 1990년 3월 5일, 5 March 1990, YYYYMMDD)",
    patterns=(
        Pattern("iso", r"(?<![\d-])(?:19|20)\d\d[-./] ?(?:0?[1-9]|1[0-2])[-./] ?(?:0?[1-9]|[12]\d|3[01])"
                       r"(?![\d:])(?! ?T?\d{1,2}:\d\d)", 0.35, numeric=True),
        Pattern("korean", r"(?:19|20)\d\d년 ?(?:0?[1-9]|1[0-2])월 ?(?:0?[1-9]|[12]\d|3[01])일", 0.4),
        Pattern("day first", r"(?<![\d/.-])(?:0?[1-9]|[12]\d|3[01])[/.-](?:0?[1-9]|1[0-2])[/.-](?:19|20)\d\d(?![\d:])",
                0.3, numeric=True),
        Pattern("month first", r"(?<![\d/.-])(?:0?[1-9]|1[0-2])/(?:0?[1-9]|[12]\d|3[01])/(?:19|20)\d\d(?![\d:])",
                0.3, numeric=True),
        Pattern("words", rf"(?:(?:{_MONTHS})\.? \d{{1,2}},? (?:19|20)\d\d|\d{{1,2}} (?:{_MONTHS})\.?,? (?:19|20)\d\d)",
                0.35),
        Pattern("compact", r"(?<!\d)(?:19|20)\d\d(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01])(?!\d)", 0.25, numeric=True),
    ),
    context=("생년월일", "생일", "출생", "출생일", "birth", "birthday", "date of birth", "dob", "born", "bday"),
    validate=_birth_date,
    requires_context=True,
    context_boost=0.35,
)


def _jwt_header(text: str) -> float | None:
    head = text.split(".", 1)[0]
    try:
        decoded = orjson.loads(base64.urlsafe_b64decode(head + "=" * (-len(head) % 4)))
    except (binascii.Error, orjson.JSONDecodeError, ValueError):
        return None
    return 0.3 if isinstance(decoded, dict) and "alg" in decoded else None


JWT = Recognizer(
    name="jwt", entity="JWT", field="secret_token", category="credential",
    description="JSON Web Tokens (header.payload.signature, both JSON parts base64url)",
    patterns=(Pattern("jws", r"(?<![\w-])eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*",
                      0.65, anchors=("eyJ",), window=(0, 8192)),),
    context=("bearer", "token", "authorization", "jwt", "토큰"),
    validate=_jwt_header,
    context_boost=0.05,
)

API_KEY = Recognizer(
    name="api_key", entity="API_KEY", field="secret_token", category="credential",
    description="Vendor keys with a fixed prefix: AWS, GitHub, GitLab, Slack, Google, Stripe, OpenAI-style sk-",
    patterns=(
        Pattern("aws access key", r"(?<![A-Z0-9])(?:AKIA|ASIA)[0-9A-Z]{16}(?![A-Z0-9])",
                0.9, anchors=("AKIA", "ASIA"), window=(0, 24)),
        Pattern("github", r"(?<![\w])(?:gh[pousr]_[A-Za-z0-9]{36,255}|github_pat_[A-Za-z0-9_]{60,255})(?!\w)",
                0.95, anchors=("ghp_", "gho_", "ghu_", "ghs_", "ghr_", "github_pat_"), window=(0, 300)),
        Pattern("gitlab", r"(?<![\w-])glpat-[A-Za-z0-9_-]{20,}(?![\w-])", 0.95, anchors=("glpat-",), window=(0, 300)),
        Pattern("slack", r"(?<![\w-])xox[abposr]-[A-Za-z0-9-]{10,}(?![\w-])", 0.9, anchors=("xox",), window=(0, 300)),
        Pattern("google", r"(?<![\w-])AIza[0-9A-Za-z_-]{35}(?![\w-])", 0.9, anchors=("AIza",), window=(0, 48)),
        Pattern("stripe", r"(?<![\w])(?:sk|rk)_live_[0-9A-Za-z]{20,}(?!\w)",
                0.95, anchors=("_live_",), window=(3, 300)),
        Pattern("sk-", r"(?<![\w-])sk-(?:proj-)?[A-Za-z0-9_-]{32,}(?![\w-])", 0.75, anchors=("sk-",), window=(0, 300)),
    ),
    context=("api_key", "apikey", "api key", "secret", "token", "key"),
    context_boost=0.1,
)


def _entropy_bits_per_char(text: str) -> float:
    counts: dict[str, int] = {}
    for c in text:
        counts[c] = counts.get(c, 0) + 1
    n = len(text)
    return -sum(k / n * math.log2(k / n) for k in counts.values())


def _looks_random(text: str) -> float | None:
    if not (any(c.isdigit() for c in text) and any(c.isalpha() for c in text)):
        return None
    return 0.0 if _entropy_bits_per_char(text) >= 3.5 else None


SECRET_ASSIGNMENT = Recognizer(
    name="secret_value", entity="API_KEY", field="secret_token", category="credential",
    description="High-entropy strings right after api_key=, secret:, Bearer and the like",
    patterns=(Pattern("opaque", r"(?<![A-Za-z0-9_+/-])[A-Za-z0-9_+/-]{20,200}={0,2}(?![A-Za-z0-9_+/=-])", 0.3),),
    context=("api_key", "apikey", "api-key", "x-api-key", "access_token", "access-token", "auth_token",
             "client_secret", "secret_key", "secret", "bearer", "password", "passwd"),
    validate=_looks_random,
    requires_context=True,
    context_boost=0.4,
)

INTERNATIONAL = (EMAIL, PHONE_INTERNATIONAL, PAYMENT_CARD, IBAN, IP_ADDRESS, DATE_OF_BIRTH, JWT, API_KEY,
                 SECRET_ASSIGNMENT)
