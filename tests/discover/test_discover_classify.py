"""Column classification: names, values, check-digit statistics and decoys."""
from __future__ import annotations

import base64
import random

import pytest

from breachwatch.discover import samples
from breachwatch.discover.classify import classify_column
from breachwatch.discover.column_names import name_signal
from breachwatch.discover.engine import Analyzer

A = Analyzer()
ROWS = samples.customer_rows(1200, seed=17)


def entities(column: str, values: list, **kw) -> dict[str, float]:
    return {f.entity: f.confidence for f in classify_column(A, column, values, **kw)}


@pytest.mark.parametrize("column, entity", [
    ("cust_hp_no", "PHONE"), ("jumin_no", "KR_RRN"), ("rcv_addr", "ADDRESS"), ("cust_nm", "PERSON_NAME"),
    ("email_addr", "EMAIL"), ("ip_addr", "IP_ADDRESS"), ("brth_dt", "DATE_OF_BIRTH"), ("bizr_no", "KR_BRN"),
    ("acct_no", "BANK_ACCOUNT"), ("custPhoneNo", "PHONE"), ("휴대폰번호", "PHONE"), ("주민등록번호", "KR_RRN"),
    ("passport_no", "KR_PASSPORT"), ("ihidnum", "KR_RRN"),
])
def test_column_names_in_korean_english_and_abbreviations(column: str, entity: str) -> None:
    assert name_signal(column).entity == entity


@pytest.mark.parametrize("column", ["prod_nm", "ord_no", "reg_ts", "phone_type_cd", "email_agree_yn", "card_company"])
def test_names_about_the_thing_not_the_value(column: str) -> None:
    assert name_signal(column).entity is None


def test_values_alone_classify_renamed_columns() -> None:
    assert set(entities("c1", [r["jumin_no"] for r in ROWS])) == {"KR_RRN"}
    assert set(entities("c2", [r["cust_hp_no"] for r in ROWS])) == {"PHONE"}
    assert set(entities("c3", [r["cust_nm"] for r in ROWS])) == {"PERSON_NAME"}
    assert set(entities("c4", [r["rcv_addr"] for r in ROWS])) == {"ADDRESS"}


@pytest.mark.parametrize("column", ["ord_no", "prod_cd", "reg_ts", "c5"])
def test_decoys_are_not_personal_data(column: str) -> None:
    source = {"c5": "ord_no"}.get(column, column)
    assert entities(column, [r[source] for r in ROWS], table_rows=len(ROWS)) == {}


def test_chance_level_check_digits_sink_resident_number_shaped_codes() -> None:
    rng = random.Random(1)
    # 13-digit codes shaped like unhyphenated resident numbers, about 10% passing the check digit by chance.
    codes = []
    while len(codes) < 800:
        body = f"{rng.randint(50, 99)}{rng.randint(1, 12):02d}{rng.randint(1, 28):02d}{rng.choice('12')}"
        codes.append(body + "".join(rng.choice("0123456789") for _ in range(6)))
    assert "KR_RRN" not in entities("c6", codes)
    assert "KR_RRN" in entities("c7", [r["jumin_no"].replace("-", "") for r in ROWS])


def test_encrypted_column_is_reported_by_its_name() -> None:
    rng = random.Random(2)
    blobs = [base64.b64encode(rng.randbytes(24)).decode() for _ in range(200)]
    [finding] = classify_column(A, "jumin_no_enc", blobs, table_rows=5000)
    assert finding.entity == "KR_RRN" and finding.hits == 0 and finding.estimated_rows == 5000
    assert "not recognised" in finding.signals[-1]


def test_free_text_column_reports_each_entity_with_estimated_rows() -> None:
    memo = ["배송 전 연락 바랍니다"] * 900 + [f"다른 연락처 {samples.phone_number(random.Random(i))}" for i in range(100)]
    [finding] = classify_column(A, "memo", memo, table_rows=100_000)
    assert finding.entity == "PHONE" and finding.hits == 100 and finding.sampled == 1000
    assert finding.estimated_rows == 10_000
