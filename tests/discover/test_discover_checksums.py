"""Check digits: published vectors for every validator, and properties over generated values."""
from __future__ import annotations

import random
import string

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from breachwatch.discover import samples
from breachwatch.discover.recognizers import checksums as ck


@pytest.mark.parametrize("number, valid", [
    ("9601211021413", True), ("0509122000019", True),     # valid check digits (public test vectors)
    ("9601211234567", False), ("0509122000010", False),
])
def test_resident_registration_checksum_vectors(number: str, valid: bool) -> None:
    assert ck.rrn_checksum(number) is valid


@pytest.mark.parametrize("number, valid", [
    ("9111245678906", True), ("0509126000012", True),
    ("9111245678901", False),
])
def test_foreigner_registration_checksum_vectors(number: str, valid: bool) -> None:
    assert ck.frn_checksum(number) is valid


@pytest.mark.parametrize("number, valid", [
    # Registration numbers that companies publish on their own websites.
    ("1248100998", True), ("1208147521", True), ("2208162517", True), ("1208800767", True),
    ("1048656659", True), ("1048213138", True),
    ("1048656658", False), ("1234567890", False),
])
def test_business_registration_checksum_vectors(number: str, valid: bool) -> None:
    assert ck.brn_checksum(number) is valid


@pytest.mark.parametrize("number, valid", [
    ("4111111111111111", True), ("5555555555554444", True), ("378282246310005", True), ("4012888888881881", True),
    ("4111111111111112", False), ("378282246310006", False),
])
def test_luhn_vectors(number: str, valid: bool) -> None:
    assert ck.luhn(number) is valid


@pytest.mark.parametrize("iban, valid", [
    ("GB82WEST12345698765432", True), ("DE89370400440532013000", True), ("FR1420041010050500013M02606", True),
    ("NL91ABNA0417164300", True),
    ("GB82WEST12345698765433", False), ("DE8937040044053201300", False),   # wrong digit; wrong length
])
def test_iban_vectors(iban: str, valid: bool) -> None:
    assert ck.iban_valid(iban) is valid


@pytest.mark.parametrize("code, valid", [("4006381333931", True), ("8801043014809", True), ("4006381333932", False)])
def test_ean13_vectors(code: str, valid: bool) -> None:
    assert ck.ean13(code) is valid


def test_birth_dates_cover_every_century_digit() -> None:
    assert ck.registration_birth_date("8501019").year == 1885   # 9: man born in the 1800s
    assert ck.registration_birth_date("8501010").year == 1885   # 0: woman born in the 1800s
    assert ck.registration_birth_date("8501011").year == 1985
    assert ck.registration_birth_date("0501014").year == 2005
    assert ck.registration_birth_date("8501015").year == 1985   # foreigner
    assert ck.registration_birth_date("9902301") is None        # 30 February


@settings(max_examples=200, deadline=None, derandomize=True, database=None)
@given(st.integers(min_value=0, max_value=2**32))
def test_generated_numbers_pass_their_own_checks(seed: int) -> None:
    rng = random.Random(seed)
    rrn = samples.resident_number(rng, samples.birth_date(rng, 1900, 2019))
    assert ck.rrn_checksum(rrn.replace("-", ""))
    assert ck.frn_checksum(samples.foreigner_number(rng).replace("-", ""))
    assert ck.brn_checksum(samples.business_number(rng).replace("-", ""))
    assert ck.luhn(samples.card_number(rng, grouped=False))
    assert ck.iban_valid(samples.iban(rng).replace(" ", ""))
    assert ck.ean13(samples.product_code(rng))


@settings(max_examples=200, deadline=None, derandomize=True, database=None)
@given(st.text(alphabet=string.digits, min_size=12, max_size=12))
def test_exactly_one_check_digit_completes_a_body(body: str) -> None:
    assert sum(ck.rrn_checksum(body + d) for d in string.digits) == 1
    assert sum(ck.frn_checksum(body + d) for d in string.digits) == 1
    assert sum(ck.brn_checksum(body[:9] + d) for d in string.digits) == 1
    assert sum(ck.luhn(body + d) for d in string.digits) == 1


@settings(max_examples=300, deadline=None, derandomize=True, database=None)
@given(st.integers(min_value=0, max_value=2**32), st.data())
def test_luhn_brn_and_iban_catch_every_single_substitution(seed: int, data: st.DataObject) -> None:
    rng = random.Random(seed)
    for value, check in ((samples.card_number(rng, grouped=False), ck.luhn),
                         (samples.business_number(rng).replace("-", ""), ck.brn_checksum)):
        pos = data.draw(st.integers(min_value=0, max_value=len(value) - 1))
        new = data.draw(st.sampled_from([d for d in string.digits if d != value[pos]]))
        assert not check(value[:pos] + new + value[pos + 1:])
    iban = samples.iban(rng).replace(" ", "")
    pos = data.draw(st.integers(min_value=4, max_value=len(iban) - 1))
    alphabet = string.digits if iban[pos].isdigit() else string.ascii_uppercase
    new = data.draw(st.sampled_from([c for c in alphabet if c != iban[pos]]))
    assert not ck.iban_valid(iban[:pos] + new + iban[pos + 1:])


@settings(deadline=None, derandomize=True, database=None)
@given(st.text(max_size=40))
def test_validators_never_raise(text: str) -> None:
    for fn in (ck.rrn_checksum, ck.frn_checksum, ck.brn_checksum, ck.luhn, ck.iban_valid, ck.ean13):
        assert fn(text) in (True, False)
    assert ck.registration_birth_date(text) is None or ck.registration_birth_date(text).year >= 1800
