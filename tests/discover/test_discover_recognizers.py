"""Recognizers through the analyzer: formats, validators, context words and decoys."""
from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from breachwatch.discover import samples
from breachwatch.discover.engine import Analyzer
from breachwatch.discover.recognizers.registry import RecognizerConfigError, load_recognizers

A = Analyzer()


def found(text: str, **kw) -> list[tuple[str, str]]:
    return [(h.entity, h.text) for h in A.analyze_text(text, **kw)]


@pytest.mark.parametrize("text, entity, span", [
    ("주민등록번호 960121-1021413", "KR_RRN", "960121-1021413"),
    ("9601211021413", "KR_RRN", "9601211021413"),                       # plain, check digit holds
    ("주민번호: 850101-9123458", "KR_RRN", "850101-9123458"),              # 9: born in the 1800s
    ("jumin 850101-0123453", "KR_RRN", "850101-0123453"),                # 0: born in the 1800s
    ("외국인등록번호 911124-5678906", "KR_FRN", "911124-5678906"),
    ("사업자등록번호 124-81-00998", "KR_BRN", "124-81-00998"),
    ("여권번호 M123A4567", "KR_PASSPORT", "M123A4567"),
    ("passport M12345678", "KR_PASSPORT", "M12345678"),
    ("운전면허번호 11-92-123456-01", "KR_DRIVER_LICENSE", "11-92-123456-01"),
    ("면허 서울 92-123456-01", "KR_DRIVER_LICENSE", "서울 92-123456-01"),
    ("010-1234-5678", "PHONE", "010-1234-5678"),
    ("연락처 01012345678", "PHONE", "01012345678"),
    ("02-123-4567", "PHONE", "02-123-4567"),
    ("(031) 234-5678", "PHONE", "(031) 234-5678"),
    ("070-1234-5678", "PHONE", "070-1234-5678"),
    ("안심번호 0504-1234-5678", "PHONE", "0504-1234-5678"),
    ("대표번호 1588-1234", "PHONE", "1588-1234"),
    ("+82 10-1234-5678", "PHONE", "+82 10-1234-5678"),
    ("call +44 20 7946 0958 today", "PHONE", "+44 20 7946 0958"),
    ("서울특별시 강남구 테헤란로 123, 101동 1203호", "ADDRESS", "서울특별시 강남구 테헤란로 123, 101동 1203호"),
    ("경기도 양평군 양평읍 양근리 123-4", "ADDRESS", "경기도 양평군 양평읍 양근리 123-4"),
    ("송파구 올림픽로35길 12", "ADDRESS", "송파구 올림픽로35길 12"),
    ("수령인 김민수 님", "PERSON_NAME", "김민수"),
    ("환불계좌 국민은행 123456-01-123456", "BANK_ACCOUNT", "123456-01-123456"),
    ("mail me: hong.gildong@example.co.kr", "EMAIL", "hong.gildong@example.co.kr"),
    ("card 4111-1111-1111-1111", "CREDIT_CARD", "4111-1111-1111-1111"),
    ("IBAN DE89 3704 0044 0532 0130 00", "IBAN", "DE89 3704 0044 0532 0130 00"),
    ("from 203.0.113.7", "IP_ADDRESS", "203.0.113.7"),
    ("client 2001:db8:85a3:0:0:8a2e:370:7334.", "IP_ADDRESS", "2001:db8:85a3:0:0:8a2e:370:7334"),
    ("생년월일 1990-03-05", "DATE_OF_BIRTH", "1990-03-05"),
    ("생일: 1990년 3월 5일", "DATE_OF_BIRTH", "1990년 3월 5일"),
    ("born 5 March 1990", "DATE_OF_BIRTH", "5 March 1990"),
    ("key AKIAIOSFODNN7EXAMPLE", "API_KEY", "AKIAIOSFODNN7EXAMPLE"),
    ("api_key=Zx8Kq2Lm9Pw4Rt7Yv1Bn6Cd3", "API_KEY", "Zx8Kq2Lm9Pw4Rt7Yv1Bn6Cd3"),
])
def test_recognizes(text: str, entity: str, span: str) -> None:
    assert (entity, span) in found(text)


@pytest.mark.parametrize("text", [
    "001332-1234567",                                      # month 13: no such birth date
    "123-45-67890",                                        # business number with a wrong check digit
    "4111-1111-1111-1112",                                 # card failing Luhn
    "GB82 WEST 1234 5698 7654 33",                         # IBAN failing mod 97
    "M12345678",                                           # old passport shape without context
    "김민수",                                               # a name without context
    "123456-01-123456",                                    # an account without context
    "1990-03-05",                                          # a date is not a birth date without context
    "created 2024-01-15 09:30:12",
    "version 1.2.3.4.5",
    "99-92-123456-01",                                     # licence with an unknown region code
])
def test_rejects(text: str) -> None:
    assert found(text) == [], found(text)


def test_seventh_digit_separates_residents_from_foreigners() -> None:
    assert found("760413-5212134") == [("KR_FRN", "760413-5212134")]
    assert found("760413-1212134") == [("KR_RRN", "760413-1212134")]


def test_post_2020_resident_number_needs_no_check_digit() -> None:
    rng = random.Random(3)
    import datetime as dt
    rrn = samples.resident_number(rng, dt.date(2021, 5, 4))
    hits = A.analyze_text(f"주민등록번호 {rrn}")
    assert [(h.entity, h.checked) for h in hits] == [("KR_RRN", None)]


def test_failed_check_digit_lowers_but_does_not_reject() -> None:
    valid = A.analyze_text("주민번호 960121-1021413")[0]
    invalid = A.analyze_text("주민번호 960121-1021415")[0]
    assert valid.entity == invalid.entity == "KR_RRN"
    assert valid.checked is True and invalid.checked is False
    assert invalid.score < valid.score


def test_context_raises_the_score() -> None:
    bare = A.analyze_text("9601211021413")[0]
    labelled = A.analyze_text("주민등록번호 9601211021413")[0]
    assert labelled.score > bare.score and labelled.context and not bare.context


def test_negative_labels_suppress_decoys() -> None:
    assert found("주문번호 01000000023") == []
    assert found("상품코드 8809290324597") == []
    assert ("PHONE", "01012345678") in found("주문번호 123, 연락처 01012345678")


def test_column_context_enables_context_only_recognizers() -> None:
    assert [h.entity for h in A.analyze(["김민수", "이서연"], context_entities={"PERSON_NAME"})] == \
        ["PERSON_NAME", "PERSON_NAME"]
    assert A.analyze(["김민수", "이서연"]) == []


def test_hits_map_back_to_rows_and_offsets() -> None:
    values = ["nothing here", "전화 010-1111-2222 그리고 a@b.co", None, "x 02-123-4567"]
    hits = A.analyze(values)
    assert [(h.row, h.entity) for h in hits] == [(1, "PHONE"), (1, "EMAIL"), (3, "PHONE")]
    for h in hits:
        assert values[h.row][h.start:h.end] == h.text


def test_overlaps_keep_the_stronger_reading() -> None:
    # A 13-digit resident number also fits the bank-account shape next to "계좌"; one span stays.
    hits = A.analyze_text("계좌 주민번호 960121-1021413")
    assert [(h.entity, h.text) for h in hits] == [("KR_RRN", "960121-1021413")]


@settings(max_examples=100, deadline=None, derandomize=True, database=None)
@given(st.integers(min_value=0, max_value=2**32))
def test_generated_identifiers_are_found_in_labelled_text(seed: int) -> None:
    rng = random.Random(seed)
    cases = {
        "KR_RRN": f"주민등록번호 {samples.resident_number(rng)}",
        "KR_FRN": f"외국인등록번호 {samples.foreigner_number(rng)}",
        "KR_BRN": f"사업자등록번호 {samples.business_number(rng)}",
        "KR_PASSPORT": f"여권번호 {samples.passport_number(rng)}",
        "KR_DRIVER_LICENSE": f"운전면허 {samples.driver_licence(rng)}",
        "PHONE": f"연락처 {samples.phone_number(rng)}",
        "ADDRESS": f"배송지: {samples.address(rng)}",
        "EMAIL": f"이메일 {samples.email(rng)}",
        "CREDIT_CARD": f"카드번호 {samples.card_number(rng)}",
        "IBAN": f"IBAN {samples.iban(rng)}",
        "JWT": f"Authorization: Bearer {samples.jwt(rng)}",
        "PERSON_NAME": f"고객명: {samples.person_name(rng)}",
    }
    for entity, text in cases.items():
        value = text.split(" ", 1)[1] if entity not in ("ADDRESS", "JWT", "PERSON_NAME") else \
            text.rsplit(" ", 1)[-1] if entity != "ADDRESS" else text.split(": ", 1)[1]
        assert (entity, value) in found(text), (entity, text, found(text))


def test_recognizer_file_disables_and_adds(tmp_path) -> None:
    cfg = tmp_path / "recognizers.yaml"
    cfg.write_text("disable: [kr_passport]\nrecognizers:\n  - name: member_no\n    entity: MEMBER_NO\n"
                   "    field: member_id\n    patterns: [{regex: 'MB-\\d{8}', score: 0.7}]\n", "utf-8")
    analyzer = Analyzer(load_recognizers(cfg))
    assert [h.entity for h in analyzer.analyze_text("여권번호 M123A4567 MB-12345678")] == ["MEMBER_NO"]
    cfg.write_text("disable: [no_such]\n", "utf-8")
    with pytest.raises(RecognizerConfigError, match="unknown recognizers"):
        load_recognizers(cfg)
