"""Realistic Korean and international personal data, generated, for tests,
benchmarks and demos: valid check digits where real ones have them, the
formats people really type, and decoys that look like personal data but are
not (order numbers shaped like phones, 13-digit product codes, timestamps).

Faker is not used: its ko_KR resident numbers are not valid.

>>> import random
>>> from breachwatch.discover.recognizers.checksums import rrn_checksum
>>> rrn_checksum(resident_number(random.Random(1)).replace("-", ""))
True
"""
from __future__ import annotations

import base64
import datetime as dt
import random
import string
from dataclasses import dataclass

import orjson

from breachwatch.discover.recognizers import checksums as ck
from breachwatch.discover.recognizers.korean import LICENCE_REGIONS
from breachwatch.discover.recognizers.korean_names import GIVEN_SYLLABLES, SURNAME_SHARE

_SURNAMES = list(SURNAME_SHARE)
_SURNAME_WEIGHTS = list(SURNAME_SHARE.values())
_GIVEN = sorted(GIVEN_SYLLABLES)


def person_name(rng: random.Random) -> str:
    given = "".join(rng.choice(_GIVEN) for _ in range(1 if rng.random() < 0.05 else 2))
    return rng.choices(_SURNAMES, _SURNAME_WEIGHTS)[0] + given


def birth_date(rng: random.Random, start: int = 1940, end: int = 2019) -> dt.date:
    first = dt.date(start, 1, 1).toordinal()
    return dt.date.fromordinal(rng.randint(first, dt.date(end, 12, 31).toordinal()))


def _registration(rng: random.Random, born: dt.date, digit: str, check) -> str:  # type: ignore[no-untyped-def]
    body = born.strftime("%y%m%d") + digit + "".join(rng.choice(string.digits) for _ in range(5))
    for last in string.digits:
        if check(body + last):
            return f"{body[:6]}-{body[6:]}{last}"
    raise AssertionError("a check digit always exists")


def resident_number(rng: random.Random, born: dt.date | None = None, *, hyphen: bool = True) -> str:
    """A resident registration number; born on or after October 2020 it ends in random digits, as issued."""
    born = born or birth_date(rng)
    female = rng.random() < 0.5
    digit = {1800: "09", 1900: "12", 2000: "34"}[born.year // 100 * 100][female]
    if born >= ck.CHECKSUM_DROPPED:
        value = born.strftime("%y%m%d") + "-" + digit + "".join(rng.choice(string.digits) for _ in range(6))
    else:
        value = _registration(rng, born, digit, ck.rrn_checksum)
    return value if hyphen else value.replace("-", "")


def foreigner_number(rng: random.Random, born: dt.date | None = None) -> str:
    born = born or birth_date(rng, 1950, 2015)
    digit = {19: "56", 20: "78"}[born.year // 100][rng.random() < 0.5]
    return _registration(rng, born, digit, ck.frn_checksum)


def business_number(rng: random.Random) -> str:
    while True:
        body = str(rng.randint(101, 999)) + f"{rng.randint(1, 99):02d}" + f"{rng.randint(0, 9999):04d}"
        for last in string.digits:
            if ck.brn_checksum(body + last):
                return f"{body[:3]}-{body[3:5]}-{body[5:]}{last}"


def passport_number(rng: random.Random) -> str:
    if rng.random() < 0.6:
        return f"M{rng.randint(0, 999):03d}{rng.choice('ABCDEFGHJKLMNPQRSTUVWXYZ')}{rng.randint(0, 9999):04d}"
    return f"M{rng.randint(0, 99999999):08d}"


def driver_licence(rng: random.Random) -> str:
    region = rng.choice(sorted(LICENCE_REGIONS))
    return f"{region}-{rng.randint(0, 99):02d}-{rng.randint(0, 999999):06d}-{rng.randint(0, 99):02d}"


def phone_number(rng: random.Random, kind: str | None = None) -> str:
    kind = kind or rng.choices(["mobile", "area", "070", "050", "15xx", "+82"], [70, 12, 5, 5, 3, 5])[0]
    if kind == "mobile":
        return f"010-{rng.randint(2000, 9999)}-{rng.randint(0, 9999):04d}"
    if kind == "area":
        code = rng.choice(["02", "031", "032", "051", "053", "062", "042", "064"])
        mid = rng.randint(200, 999) if code == "02" and rng.random() < 0.3 else rng.randint(2000, 9999)
        return f"{code}-{mid}-{rng.randint(0, 9999):04d}"
    if kind == "070":
        return f"070-{rng.randint(2000, 9999)}-{rng.randint(0, 9999):04d}"
    if kind == "050":
        return f"050{rng.choice('4567')}-{rng.randint(100, 9999)}-{rng.randint(0, 9999):04d}"
    if kind == "15xx":
        return f"1{rng.choice('568')}{rng.randint(0, 99):02d}-{rng.randint(0, 9999):04d}"
    return f"+82 10-{rng.randint(2000, 9999)}-{rng.randint(0, 9999):04d}"


_PLACES = [
    ("서울특별시", "강남구", ["테헤란로", "강남대로", "논현로", "도산대로"], ["역삼동", "논현동", "삼성동"]),
    ("서울특별시", "송파구", ["올림픽로", "송파대로", "위례성대로"], ["잠실동", "가락동", "문정동"]),
    ("서울특별시", "마포구", ["월드컵로", "양화로", "독막로"], ["서교동", "합정동", "망원동"]),
    ("부산광역시", "해운대구", ["해운대로", "센텀중앙로"], ["우동", "중동", "좌동"]),
    ("경기도", "성남시 분당구", ["판교역로", "정자일로", "분당로"], ["정자동", "서현동", "삼평동"]),
    ("경기도", "수원시 영통구", ["광교중앙로", "매영로"], ["이의동", "영통동"]),
    ("인천광역시", "연수구", ["컨벤시아대로", "송도과학로"], ["송도동", "연수동"]),
    ("대구광역시", "수성구", ["달구벌대로", "동대구로"], ["범어동", "만촌동"]),
    ("제주특별자치도", "제주시", ["연북로", "노형로"], ["노형동", "연동"]),
    ("경기도", "양평군 양평읍", [], ["양근리", "창대리"]),
]


def address(rng: random.Random) -> str:
    sido, sgg, roads, dongs = rng.choice(_PLACES)
    if roads and rng.random() < 0.75:
        road = rng.choice(roads) + (f"{rng.randint(1, 60)}길" if rng.random() < 0.3 else "")
        base = f"{sido} {sgg} {road} {rng.randint(1, 400)}"
    else:
        base = f"{sido} {sgg} {rng.choice(dongs)} {rng.randint(1, 999)}-{rng.randint(1, 60)}"
    if rng.random() < 0.6:
        base += f", {rng.randint(101, 120)}동 {rng.randint(1, 25)}{rng.randint(1, 4):02d}호"
    return base


def email(rng: random.Random) -> str:
    user = "".join(rng.choice(string.ascii_lowercase) for _ in range(rng.randint(4, 9)))
    if rng.random() < 0.5:
        user += str(rng.randint(1, 999))
    return f"{user}@{rng.choice(['naver.com', 'gmail.com', 'daum.net', 'kakao.com', 'example.co.kr'])}"


def card_number(rng: random.Random, grouped: bool = True) -> str:
    prefix = rng.choice(["4", "51", "52", "53", "54", "55", "9410", "3568"])
    body = prefix + "".join(rng.choice(string.digits) for _ in range(15 - len(prefix)))
    last = next(d for d in string.digits if ck.luhn(body + d))
    digits = body + last
    return "-".join(digits[i:i + 4] for i in range(0, 16, 4)) if grouped else digits


def iban(rng: random.Random) -> str:
    country, length = rng.choice([("DE", 22), ("GB", 22), ("FR", 27), ("NL", 18)])
    if country == "GB":
        bban = "".join(rng.choice(string.ascii_uppercase) for _ in range(4)) + \
            "".join(rng.choice(string.digits) for _ in range(14))
    elif country == "NL":
        bban = "".join(rng.choice(string.ascii_uppercase) for _ in range(4)) + \
            "".join(rng.choice(string.digits) for _ in range(10))
    else:
        bban = "".join(rng.choice(string.digits) for _ in range(length - 4))
    numeric = int("".join(str(int(c, 36)) for c in bban + country + "00"))
    value = f"{country}{98 - numeric % 97:02d}{bban}"
    return " ".join(value[i:i + 4] for i in range(0, len(value), 4))


def ip_address(rng: random.Random) -> str:
    if rng.random() < 0.1:
        return ":".join(f"{rng.randint(0, 0xffff):x}" for _ in range(8))
    return ".".join(str(rng.randint(1, 254)) for _ in range(4))


def jwt(rng: random.Random) -> str:
    def b64(obj: object) -> str:
        return base64.urlsafe_b64encode(orjson.dumps(obj)).rstrip(b"=").decode()
    sig = base64.urlsafe_b64encode(rng.randbytes(32)).rstrip(b"=").decode()
    claims = {"sub": str(rng.randint(1, 10**8)), "jti": rng.randbytes(6).hex()}
    return f"{b64({'alg': 'RS256', 'kid': 'k1'})}.{b64(claims)}.{sig}"


def api_key(rng: random.Random) -> str:
    alnum = string.ascii_letters + string.digits
    return rng.choice([
        "AKIA" + "".join(rng.choice(string.ascii_uppercase + string.digits) for _ in range(16)),
        "ghp_" + "".join(rng.choice(alnum) for _ in range(36)),
        "sk_live_" + "".join(rng.choice(alnum) for _ in range(24)),
    ])


def bank_account(rng: random.Random) -> str:
    return rng.choice([
        f"{rng.randint(100, 999)}-{rng.randint(10, 99)}-{rng.randint(100000, 999999)}",
        f"{rng.randint(100000, 999999)}-{rng.randint(10, 99)}-{rng.randint(100000, 999999)}",
        f"{rng.randint(1000, 9999)}-{rng.randint(100, 999)}-{rng.randint(100000, 999999)}",
    ])


# Decoys: values a careless scanner would call personal data.

def order_number(rng: random.Random, seq: int) -> str:
    """Eleven digits beginning 010, like a mobile number, but a running sequence."""
    return f"010{seq:08d}"


def product_code(rng: random.Random) -> str:
    """An EAN-13 barcode with Korea's 880 prefix: 13 digits, like an unhyphenated resident number."""
    body = "880" + "".join(rng.choice(string.digits) for _ in range(9))
    return body + next(d for d in string.digits if ck.ean13(body + d))


def epoch_millis(rng: random.Random) -> str:
    """A 13-digit millisecond timestamp."""
    return str(rng.randint(1_600_000_000_000, 1_760_000_000_000))


# Labelled text records for measuring recall and precision.

@dataclass(frozen=True)
class Labelled:
    text: str
    spans: tuple[tuple[int, int, str], ...]  # (start, end, entity)


_KO_TEMPLATES = [
    ("고객 {PERSON_NAME}님 연락처 {PHONE}, 배송지 {ADDRESS}", ()),
    ("주민등록번호: {KR_RRN} / 이메일 {EMAIL}", ()),
    ("외국인등록번호 {KR_FRN} 확인 완료, 여권번호 {KR_PASSPORT}", ()),
    ("사업자등록번호 {KR_BRN} 거래처 대표번호 {PHONE}", ()),
    ("운전면허번호 {KR_DRIVER_LICENSE} 로 본인확인", ()),
    ("카드번호 {CREDIT_CARD} 결제 승인, 주문번호 {DECOY_ORDER}", ()),
    ("환불계좌 국민은행 {BANK_ACCOUNT} 예금주 {PERSON_NAME}", ()),
    ("생년월일 {DATE_OF_BIRTH} 회원 가입, 접속 IP {IP_ADDRESS}", ()),
    ("상품코드 {DECOY_PRODUCT} 재고 12개, 처리시각 {DECOY_TS}", ()),
    ("요청 헤더 Authorization: Bearer {JWT}", ()),
    ("배송 메모: 부재시 경비실에 맡겨주세요. 수령인 연락처 {PHONE}", ()),
    ("{ADDRESS} 로 배송 예정입니다. 문의 {PHONE}", ()),
    # Harder: identifiers without labels, unlabelled decoys, numbers without hyphens.
    ("회원 {PERSON_NAME} {PHONE_PLAIN} {KR_RRN}", ()),
    ("ref {DECOY_PRODUCT} / {DECOY_ORDER} / {DECOY_TS}", ()),
    ("{EMAIL} 님이 {DATE_ANY}에 로그인했습니다 ({IP_ADDRESS})", ()),
]
_EN_TEMPLATES = [
    ("Customer {PERSON_NAME_EN} can be reached at {EMAIL} or {PHONE_INTL}.", ()),
    ("Wire refund to IBAN {IBAN} for order {DECOY_ORDER}.", ()),
    ("Card {CREDIT_CARD} was charged; request came from {IP_ADDRESS}.", ()),
    ("Date of birth: {DATE_OF_BIRTH}. Korean RRN {KR_RRN} on file.", ()),
    ("Leaked config: aws key {API_KEY} found in build log", ()),
    ("Shipment scheduled at {DECOY_TS} for product {DECOY_PRODUCT}.", ()),
    ("Passport number {KR_PASSPORT}, business registration number {KR_BRN}.", ()),
]
_EN_NAMES = ["James Smith", "Maria Garcia", "Wei Zhang", "Anna Müller", "John Brown"]


def _value(entity: str, rng: random.Random, seq: int) -> str:
    if entity == "DATE_OF_BIRTH":
        d = birth_date(rng)
        return rng.choice([d.isoformat(), f"{d.year}년 {d.month}월 {d.day}일", d.strftime("%Y.%m.%d")])
    return {
        "PERSON_NAME": lambda: person_name(rng), "PERSON_NAME_EN": lambda: rng.choice(_EN_NAMES),
        "PHONE": lambda: phone_number(rng), "PHONE_INTL": lambda: rng.choice(
            ["+1 650-253-0000", "+44 20 7946 0958", "+49 30 901820", "+81 3-1234-5678", "+82 10-2345-6789"]),
        "ADDRESS": lambda: address(rng), "KR_RRN": lambda: resident_number(rng, hyphen=rng.random() < 0.8),
        "KR_FRN": lambda: foreigner_number(rng), "KR_BRN": lambda: business_number(rng),
        "KR_PASSPORT": lambda: passport_number(rng), "KR_DRIVER_LICENSE": lambda: driver_licence(rng),
        "EMAIL": lambda: email(rng), "CREDIT_CARD": lambda: card_number(rng, grouped=rng.random() < 0.7),
        "BANK_ACCOUNT": lambda: bank_account(rng), "IBAN": lambda: iban(rng),
        "IP_ADDRESS": lambda: ip_address(rng), "JWT": lambda: jwt(rng), "API_KEY": lambda: api_key(rng),
        "DECOY_ORDER": lambda: order_number(rng, seq), "DECOY_PRODUCT": lambda: product_code(rng),
        "DECOY_TS": lambda: rng.choice([epoch_millis(rng), "2024-01-15 09:30:12"]),
        "PHONE_PLAIN": lambda: phone_number(rng, "mobile").replace("-", ""),
        "DATE_ANY": lambda: birth_date(rng, 2023, 2024).isoformat(),
    }[entity]()


def labelled_records(n: int, seed: int = 7) -> list[Labelled]:
    """`n` records, Korean and English mixed 2:1, with the true span of every entity (decoys unlabelled)."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        template = rng.choice(_KO_TEMPLATES if i % 3 else _EN_TEMPLATES)[0]
        text, spans, pos = [], [], 0
        for literal, entity in _split(template):
            text.append(literal)
            pos += len(literal)
            if entity:
                value = _value(entity, rng, i)
                label = {"PERSON_NAME_EN": "PERSON_NAME", "PHONE_INTL": "PHONE", "PHONE_PLAIN": "PHONE"}.get(
                    entity, entity)
                if not label.startswith(("DECOY", "DATE_ANY")):  # a login date is not a birth date
                    spans.append((pos, pos + len(value), label))
                text.append(value)
                pos += len(value)
        out.append(Labelled("".join(text), tuple(spans)))
    return out


def _split(template: str) -> list[tuple[str, str | None]]:
    parts: list[tuple[str, str | None]] = []
    rest = template
    while "{" in rest:
        literal, _, tail = rest.partition("{")
        entity, _, rest = tail.partition("}")
        parts.append((literal, entity))
    parts.append((rest, None))
    return parts


def customer_rows(n: int, seed: int = 11) -> list[dict[str, object]]:
    """Rows of a Korean retailer's customer table, decoy columns included."""
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        born = birth_date(rng)
        rows.append({
            "cust_no": 100000 + i,
            "cust_nm": person_name(rng),
            "jumin_no": resident_number(rng, born),
            "cust_hp_no": phone_number(rng, "mobile"),
            "email_addr": email(rng),
            "rcv_addr": address(rng),
            "brth_dt": born.isoformat(),
            "memo": rng.choice(["", "", "부재시 경비실", f"다른 연락처 {phone_number(rng)}", "빠른 배송 부탁"]),
            "ord_no": order_number(rng, 1_000_000 + i),
            "prod_cd": product_code(rng),
            "reg_ts": epoch_millis(rng),
            "grade": rng.choice(["VIP", "GOLD", "SILVER"]),
        })
    return rows
