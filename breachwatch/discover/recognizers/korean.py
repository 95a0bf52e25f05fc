"""Korean identifiers and personal data: registration numbers, passports,
driver's licences, phones, addresses and bank accounts.

Patterns are written for how these values really appear in Korean systems:
with or without hyphens, in columns named in romanised abbreviations, next
to Korean labels such as 주민번호 or 연락처.
"""
from __future__ import annotations

import datetime as _dt

from breachwatch.discover.recognizers import checksums as ck
from breachwatch.discover.recognizers.base import NUMBER_LABELS, Pattern, Recognizer, digits_only

_MMDD = r"(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01])"


def _registration_validator(centuries: dict[str, int]):
    def validate(text: str) -> float | None:
        digits = digits_only(text)
        if len(digits) != 13 or digits[6] not in centuries:
            return None
        born = ck.registration_birth_date(digits)
        if born is None or born > _dt.date.today():
            return None
        return 0.0
    return validate


def _registration_checksum(check):
    def checksum(text: str) -> bool | None:
        digits = digits_only(text)
        born = ck.registration_birth_date(digits)
        if born is not None and born >= ck.CHECKSUM_DROPPED:
            return None  # issued with random final digits: nothing to check
        return check(digits)
    return checksum


RESIDENT_REGISTRATION = Recognizer(
    name="kr_rrn", entity="KR_RRN", field="resident_registration_number", category="unique_identifier",
    description="주민등록번호 YYMMDD-GNNNNNN; G is 1-4, or 9/0 for the 1800s; check digit boosts, never rejects",
    patterns=(
        Pattern("hyphenated", rf"(?<![\d-])\d\d{_MMDD}-[0-49]\d{{6}}(?![\d-])", 0.6, numeric=True),
        Pattern("plain", rf"(?<![\d-])\d\d{_MMDD}[0-49]\d{{6}}(?![\d-])", 0.35, numeric=True),
    ),
    negative_context=NUMBER_LABELS,
    context=("주민등록번호", "주민번호", "주민", "resident registration", "resident number", "rrn", "jumin",
             "ssn", "national id", "실명번호"),
    validate=_registration_validator(ck.RRN_CENTURY),
    checksum=_registration_checksum(ck.rrn_checksum),
)

FOREIGNER_REGISTRATION = Recognizer(
    name="kr_frn", entity="KR_FRN", field="foreigner_registration_number", category="unique_identifier",
    description="외국인등록번호 YYMMDD-GNNNNNN with G 5-8; check digit boosts, never rejects",
    patterns=(
        Pattern("hyphenated", rf"(?<![\d-])\d\d{_MMDD}-[5-8]\d{{6}}(?![\d-])", 0.6, numeric=True),
        Pattern("plain", rf"(?<![\d-])\d\d{_MMDD}[5-8]\d{{6}}(?![\d-])", 0.35, numeric=True),
    ),
    negative_context=NUMBER_LABELS,
    context=("외국인등록번호", "외국인번호", "외국인", "등록번호", "foreigner registration", "alien registration",
             "frn", "arc"),
    validate=_registration_validator(ck.FRN_CENTURY),
    checksum=_registration_checksum(ck.frn_checksum),
)


def _brn_structure(text: str) -> float | None:
    # Tax-office codes start at 101: a leading zero is a phone number, not a business.
    return None if digits_only(text)[0] == "0" else 0.0


BUSINESS_REGISTRATION = Recognizer(
    name="kr_brn", entity="KR_BRN", field="business_registration_number", category="personal",
    description="사업자등록번호 NNN-NN-NNNNN with its check digit (weights 1,3,7,1,3,7,1,3,5)",
    patterns=(
        Pattern("hyphenated", r"(?<![\d-])\d{3}-\d{2}-\d{5}(?![\d-])", 0.5, numeric=True),
        Pattern("plain", r"(?<![\d-])\d{10}(?![\d-])", 0.1, numeric=True),
    ),
    negative_context=NUMBER_LABELS,
    context=("사업자등록번호", "사업자번호", "사업자", "business registration", "business number", "brn",
             "biz no", "tax id"),
    validate=_brn_structure,
    checksum=lambda text: ck.brn_checksum(digits_only(text)),
    checksum_rejects=True,
)

PASSPORT = Recognizer(
    name="kr_passport", entity="KR_PASSPORT", field="passport_number", category="unique_identifier",
    description="여권번호: new M123A4567 and old M12345678 (M, S, R, O, D, G types)",
    patterns=(
        Pattern("current", r"(?<![A-Za-z0-9])[MSRODG]\d{3}[A-Z]\d{4}(?![A-Za-z0-9])", 0.5),
        Pattern("previous", r"(?<![A-Za-z0-9])[MSRODG]\d{8}(?![A-Za-z0-9])", 0.3),
    ),
    negative_context=NUMBER_LABELS,
    context=("여권번호", "여권", "passport", "패스포트"),
)

# Licence region codes; 27 was never issued, 28 is northern Gyeonggi.
LICENCE_REGIONS = {
    "11": "서울", "12": "부산", "13": "경기", "14": "강원", "15": "충북", "16": "충남", "17": "전북",
    "18": "전남", "19": "경북", "20": "경남", "21": "제주", "22": "대구", "23": "인천", "24": "광주",
    "25": "대전", "26": "울산", "28": "경기북부",
}
_REGION_NAMES = "|".join(sorted(set(LICENCE_REGIONS.values()), key=len, reverse=True))


def _licence_region(text: str) -> float | None:
    head = text[:4]
    if not head[:2].isdigit():
        return 0.0 if any(head.startswith(n) for n in LICENCE_REGIONS.values()) else None
    return 0.0 if head[:2] in LICENCE_REGIONS else None


DRIVER_LICENCE = Recognizer(
    name="kr_driver_licence", entity="KR_DRIVER_LICENSE", field="driver_license_number",
    category="unique_identifier",
    description="운전면허번호 RR-YY-NNNNNN-CC; RR is a region code (11-26, 28) or a region name",
    patterns=(
        Pattern("hyphenated", r"(?<![\d-])\d{2}-\d{2}-\d{6}-\d{2}(?![\d-])", 0.55, numeric=True),
        Pattern("region name", rf"(?<![가-힣])(?:{_REGION_NAMES})\s?\d{{2}}-\d{{6}}-\d{{2}}(?![\d-])",
                0.7, anchors=tuple(LICENCE_REGIONS.values()), window=(0, 24)),
        Pattern("plain", r"(?<![\d-])\d{12}(?![\d-])", 0.15, numeric=True),
    ),
    negative_context=NUMBER_LABELS,
    context=("운전면허번호", "운전면허", "면허번호", "driver licence", "driver license", "driver's license",
             "driving licence", "licence", "license"),
    validate=_licence_region,
)

_SEP = r"[-. ]"
PHONE_KR = Recognizer(
    name="kr_phone", entity="PHONE", field="phone", category="personal",
    description="010 mobiles, area codes, 070, 050x safe numbers, 15xx/16xx/18xx and +82",
    patterns=(
        Pattern("+82", rf"(?<![\d+])\+82{_SEP}?(?:\(0\))?0?(?:1[016789]|2|[3-6]\d|70){_SEP}?\d{{3,4}}{_SEP}?"
                       rf"\d{{4}}(?![\d-])", 0.8, numeric=True),
        Pattern("mobile separated", rf"(?<![\d-])01[016789]{_SEP}\d{{3,4}}{_SEP}\d{{4}}(?![\d-])", 0.7, numeric=True),
        Pattern("mobile plain", r"(?<![\d-])010\d{8}(?![\d-])", 0.5, numeric=True),
        Pattern("old mobile plain", r"(?<![\d-])01[16789]\d{7,8}(?![\d-])", 0.4, numeric=True),
        Pattern("area separated", rf"(?<![\d-])\(?0(?:2|3[1-3]|4[1-4]|5[1-5]|6[1-4])\)?{_SEP}?\d{{3,4}}{_SEP}"
                                  rf"\d{{4}}(?![\d-])", 0.6, numeric=True),
        Pattern("070 / 050x separated", rf"(?<![\d-])0(?:70|50[2-8]){_SEP}\d{{3,4}}{_SEP}\d{{4}}(?![\d-])",
                0.6, numeric=True),
        Pattern("area plain", r"(?<![\d-])0(?:2|3[1-3]|4[1-4]|5[1-5]|6[1-4])\d{7,8}(?![\d-])", 0.3, numeric=True),
        Pattern("070 / 050x plain", r"(?<![\d-])0(?:70|50[2-8])\d{7,8}(?![\d-])", 0.35, numeric=True),
        Pattern("15xx/16xx/18xx", r"(?<![\d-])1[568]\d\d-\d{4}(?![\d-])", 0.5, numeric=True),
        Pattern("15xx/16xx/18xx plain", r"(?<![\d-])1[568]\d{6}(?![\d-])", 0.1, numeric=True),
    ),
    negative_context=NUMBER_LABELS,
    context=("전화번호", "전화", "휴대폰", "핸드폰", "휴대전화", "연락처", "폰번호", "안심번호", "대표번호", "phone",
             "mobile", "tel", "cell", "contact", "hp"),
    context_boost=0.3,
)

_SIDO = ("서울특별시|서울시|서울|부산광역시|부산|대구광역시|대구|인천광역시|인천|광주광역시|광주|대전광역시|대전|"
         "울산광역시|울산|세종특별자치시|세종시|세종|경기도|경기|강원특별자치도|강원도|강원|충청북도|충북|"
         "충청남도|충남|전북특별자치도|전라북도|전북|전라남도|전남|경상북도|경북|경상남도|경남|"
         "제주특별자치도|제주도|제주")
_SGG = r"[가-힣]{1,5}(?:시|군|구)"
_ROAD = r"[가-힣0-9]{1,12}(?:로|길)\s?(?:지하\s?)?\d{1,4}(?:-\d{1,4})?"
_LOT = r"(?:[가-힣0-9]{1,6}(?:읍|면)\s)?[가-힣0-9]{1,8}(?:동|리|가)\s?(?:산\s?)?\d{1,4}(?:-\d{1,4})?(?:번지)?"
_DETAIL = (r"(?:,?\s?[가-힣A-Za-z0-9]{0,10}\d{1,4}동)?(?:\s?\d{1,5}호)?(?:\s?\d{1,3}층)?"
           r"(?:\s?\([가-힣0-9A-Za-z, ]{1,30}\))?")

# An address always names a district (…시, …구, …군) or a province (…도) followed by a space.
_ADDRESS_ANCHORS = ("시 ", "구 ", "군 ", "도 ")

ADDRESS_KR = Recognizer(
    name="kr_address", entity="ADDRESS", field="address", category="personal",
    description="도로명 (…로/길 number) and 지번 (…동/리 number) addresses, with unit details",
    patterns=(
        Pattern("with province", rf"(?<![가-힣])(?:{_SIDO})\s+(?:{_SGG}\s+){{0,2}}(?:{_ROAD}|{_LOT}){_DETAIL}",
                0.8, anchors=_ADDRESS_ANCHORS, window=(24, 120)),
        Pattern("district first", rf"(?<![가-힣])(?:{_SGG}\s+){{1,2}}(?:{_ROAD}|{_LOT}){_DETAIL}",
                0.6, anchors=_ADDRESS_ANCHORS, window=(24, 120)),
    ),
    context=("주소", "배송지", "도로명", "지번", "거주지", "자택", "address", "addr", "ship to"),
    context_boost=0.2,
)


def _account_digits(text: str) -> float | None:
    n = len(digits_only(text))
    return 0.0 if 10 <= n <= 14 else None


BANK_ACCOUNT_KR = Recognizer(
    name="kr_bank_account", entity="BANK_ACCOUNT", field="bank_account", category="personal",
    description="계좌번호: 10-14 digits in bank groupings; only reported next to context",
    patterns=(
        Pattern("grouped", r"(?<![\d-])\d{2,6}-\d{2,6}-\d{1,7}(?:-\d{1,3})?(?![\d-])", 0.35, numeric=True),
        Pattern("plain", r"(?<![\d-])\d{10,14}(?![\d-])", 0.3, numeric=True),
    ),
    negative_context=NUMBER_LABELS,
    context=("계좌번호", "계좌", "입금", "예금주", "환불계좌", "은행", "국민", "신한", "우리", "하나", "농협", "기업",
             "카카오뱅크", "토스뱅크", "케이뱅크", "새마을", "우체국", "수협", "account number", "bank account",
             "acct", "iban", "bank"),
    validate=_account_digits,
    requires_context=True,
)

KOREAN = (RESIDENT_REGISTRATION, FOREIGNER_REGISTRATION, BUSINESS_REGISTRATION, PASSPORT, DRIVER_LICENCE,
          PHONE_KR, ADDRESS_KR, BANK_ACCOUNT_KR)
