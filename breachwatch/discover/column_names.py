"""What a column's name says about its contents, in Korean, English and the
romanised abbreviations of Korean schemas (`cust_hp_no`, `jumin_no`, `rcv_addr`).

>>> name_signal("cust_hp_no").entity
'PHONE'
>>> name_signal("jumin_no").entity
'KR_RRN'
>>> name_signal("prod_nm").negative
True
"""
from __future__ import annotations

import re
from dataclasses import dataclass

# Tokens (after splitting on _, -, spaces and camelCase) that name an entity.
TOKENS: dict[str, str] = {}
for _entity, _words in {
    "PERSON_NAME": "name nm fname lname firstname lastname fullname irum sungmyung seongmyeong",
    "PHONE": "phone hp tel telno hpno mobile mobl mbl mob cell cellphone handphone phn fax mphone mbtlnum telnum",
    "ADDRESS": "addr address adr adres adrs juso road jibun roadaddr",
    "EMAIL": "email eml mail emailaddr",
    "KR_RRN": "jumin juminno jmno rrn rrno resno ssn ihidnum residentno resident",
    "KR_FRN": "frn alien foreigner frgnr fgnno frnno",
    "KR_BRN": "brn bizno bizrno bizr bsnsno bizregno brno",
    "KR_PASSPORT": "passport psprt pspt ppno passportno",
    "KR_DRIVER_LICENSE": "drv driver drvlic dlno licence license lcns",
    "BANK_ACCOUNT": "acct acnt accnt actno acctno acntno bankacct dpstr iban",
    "CREDIT_CARD": "card cardno crdno ccno ccnum pan",
    "IP_ADDRESS": "ip ipaddr ipv4 ipv6 clientip remoteaddr srcip",
    "DATE_OF_BIRTH": "birth brth bday birthday dob birthdt brthdy brdt bthdy birthymd",
    "JWT": "jwt",
    "API_KEY": "apikey secret token accesstoken refreshtoken clientsecret",
}.items():
    for _w in _words.split():
        TOKENS[_w] = _entity

# Korean words in column names (matched as substrings: Korean compounds have no separators).
KOREAN_WORDS: tuple[tuple[str, str], ...] = (
    ("주민등록번호", "KR_RRN"), ("주민번호", "KR_RRN"), ("외국인등록번호", "KR_FRN"), ("사업자등록번호", "KR_BRN"),
    ("사업자번호", "KR_BRN"), ("여권번호", "KR_PASSPORT"), ("운전면허", "KR_DRIVER_LICENSE"), ("면허번호", "KR_DRIVER_LICENSE"),
    ("계좌", "BANK_ACCOUNT"), ("카드번호", "CREDIT_CARD"), ("생년월일", "DATE_OF_BIRTH"), ("생일", "DATE_OF_BIRTH"),
    ("이메일", "EMAIL"), ("메일", "EMAIL"), ("휴대폰", "PHONE"), ("핸드폰", "PHONE"), ("전화", "PHONE"),
    ("연락처", "PHONE"), ("주소", "ADDRESS"), ("배송지", "ADDRESS"), ("이름", "PERSON_NAME"), ("성명", "PERSON_NAME"),
    ("고객명", "PERSON_NAME"), ("회원명", "PERSON_NAME"), ("수령인", "PERSON_NAME"), ("예금주", "PERSON_NAME"),
    ("아이피", "IP_ADDRESS"), ("접속ip", "IP_ADDRESS"),
)

# Words that, next to an entity word, say the column is about the thing and
# not the value (phone_type, card_company, email_agree_yn, product_name).
QUALIFIERS_AGAINST = frozenset(
    "type tp kind cd code yn flag agree agr consent cnt count verified vrfy yn status stat div gb se cls "
    "company co corp brand issuer bank len length".split())
NOT_PERSON_NAMES = frozenset(
    "prod product goods item store shop brand file table category ctg cate company corp bank event menu option "
    "opt sku city street road dept team col column host server svc service app device model tag group grp role "
    "page site domain schema db index idx key field sheet course class".split())

# Names of columns that hold identifiers, codes and times: numbers shaped like
# personal data but not personal data.
NEGATIVE_TOKENS = frozenset(
    "order ord ordr orderno ordno product prod goods item sku ean barcode barcd invoice tracking trk waybill "
    "seq idx serial created updated modified reg upd ts timestamp dtm time datetime epoch millis tid txid txn "
    "trx trace span request req session sess uuid guid hash checksum version ver".split())
NEGATIVE_KOREAN = ("주문", "상품", "송장", "바코드", "일시", "등록일", "수정일", "시각", "일련번호", "코드")


@dataclass(frozen=True)
class NameSignal:
    entity: str | None     # the entity the name points to, if any
    negative: bool         # the name says "identifier, code or time", not personal data
    tokens: tuple[str, ...]


def tokens(column: str) -> tuple[str, ...]:
    spaced = re.sub(r"([a-z0-9])([A-Z])", r"\1 \2", column)
    parts = [p for p in re.split(r"[^0-9A-Za-z가-힣]+", spaced.lower()) if p]
    # Also try adjacent pairs glued ("hp" "no" -> "hpno", "birth" "dt" -> "birthdt").
    glued = [a + b for a, b in zip(parts, parts[1:])]
    return tuple(parts + glued)


def name_signal(column: str) -> NameSignal:
    toks = tokens(column)
    lowered = column.lower()
    entity = None
    for t in toks:
        if t in TOKENS:
            candidate = TOKENS[t]
            # email_addr is an email, ip_addr an IP: the more specific word wins over "addr".
            if entity is None or entity == "ADDRESS":
                entity = candidate
    if entity is None:
        for word, ent in KOREAN_WORDS:
            if word in lowered:
                entity = ent
                break
    token_set = set(toks)
    if entity is not None and token_set & QUALIFIERS_AGAINST:
        entity = None
    if entity == "PERSON_NAME" and token_set & NOT_PERSON_NAMES:
        entity = None
    negative = entity is None and (bool(token_set & NEGATIVE_TOKENS | token_set & NOT_PERSON_NAMES)
                                   or any(w in lowered for w in NEGATIVE_KOREAN))
    return NameSignal(entity, negative, toks)
