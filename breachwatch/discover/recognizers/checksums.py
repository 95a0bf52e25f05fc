"""Check digits and structural validators for the identifiers breachwatch recognizes.

Every function takes the bare characters (separators already removed) and
returns a bool; none raises on malformed input, so a recognizer can call them
on any regex candidate.
"""
from __future__ import annotations

import datetime as _dt

_RRN_WEIGHTS = (2, 3, 4, 5, 6, 7, 8, 9, 2, 3, 4, 5)
_BRN_WEIGHTS = (1, 3, 7, 1, 3, 7, 1, 3, 5)

# The 7th digit of a resident or foreigner registration number gives sex and century.
RRN_CENTURY = {"9": 1800, "0": 1800, "1": 1900, "2": 1900, "3": 2000, "4": 2000}
FRN_CENTURY = {"5": 1900, "6": 1900, "7": 2000, "8": 2000}

# Numbers issued from this day on end in random digits instead of a check digit.
CHECKSUM_DROPPED = _dt.date(2020, 10, 1)


def _weighted_rrn_sum(digits: str) -> int:
    return sum(int(d) * w for d, w in zip(digits[:12], _RRN_WEIGHTS))


def rrn_checksum(digits: str) -> bool:
    """Resident registration number check digit: (11 - weighted sum mod 11) mod 10."""
    if len(digits) != 13 or not digits.isdigit():
        return False
    return (11 - _weighted_rrn_sum(digits) % 11) % 10 == int(digits[12])


def frn_checksum(digits: str) -> bool:
    """Foreigner registration number check digit: (13 - weighted sum mod 11) mod 10."""
    if len(digits) != 13 or not digits.isdigit():
        return False
    return (13 - _weighted_rrn_sum(digits) % 11) % 10 == int(digits[12])


def registration_birth_date(digits: str) -> _dt.date | None:
    """The birth date encoded in a resident or foreigner registration number, or None if impossible."""
    if len(digits) < 7 or not digits[:7].isdigit():
        return None
    century = RRN_CENTURY.get(digits[6]) or FRN_CENTURY.get(digits[6])
    if century is None:
        return None
    try:
        return _dt.date(century + int(digits[:2]), int(digits[2:4]), int(digits[4:6]))
    except ValueError:
        return None


def brn_checksum(digits: str) -> bool:
    """Business registration number (NNN-NN-NNNNN) check digit.

    Weights 1,3,7,1,3,7,1,3,5; the ninth product also adds its tens digit;
    the check digit is (10 - sum mod 10) mod 10.
    """
    if len(digits) != 10 or not digits.isdigit():
        return False
    d = [int(c) for c in digits]
    total = sum(x * w for x, w in zip(d[:9], _BRN_WEIGHTS))
    total += d[8] * 5 // 10
    return (10 - total % 10) % 10 == d[9]


def luhn(digits: str) -> bool:
    """Payment card check digit (ISO/IEC 7812 Luhn)."""
    if not digits.isdigit() or len(digits) < 2:
        return False
    total = 0
    for i, c in enumerate(reversed(digits)):
        n = int(c)
        if i % 2 == 1:
            n *= 2
            if n > 9:
                n -= 9
        total += n
    return total % 10 == 0


# ISO 13616 lengths for the countries whose IBANs are most often seen; others
# are accepted when they fall in the standard's 15-34 range.
IBAN_LENGTHS = {
    "AD": 24, "AE": 23, "AT": 20, "BE": 16, "BG": 22, "BH": 22, "BR": 29, "CH": 21, "CY": 28,
    "CZ": 24, "DE": 22, "DK": 18, "EE": 20, "ES": 24, "FI": 18, "FR": 27, "GB": 22, "GR": 27,
    "HR": 21, "HU": 28, "IE": 22, "IL": 23, "IS": 26, "IT": 27, "KW": 30, "LT": 20, "LU": 20,
    "LV": 21, "MC": 27, "MT": 31, "NL": 18, "NO": 15, "PL": 28, "PT": 25, "QA": 29, "RO": 24,
    "SA": 24, "SE": 24, "SI": 19, "SK": 24, "TR": 26, "UA": 29,
}


def iban_valid(chars: str) -> bool:
    """IBAN: known length for the country and ISO 7064 mod 97 == 1."""
    s = chars.upper()
    if len(s) < 15 or len(s) > 34 or not s.isalnum() or not s[:2].isalpha() or not s[2:4].isdigit():
        return False
    expected = IBAN_LENGTHS.get(s[:2])
    if expected is not None and len(s) != expected:
        return False
    rearranged = s[4:] + s[:4]
    try:
        number = int("".join(str(int(c, 36)) for c in rearranged))
    except ValueError:
        return False
    return number % 97 == 1


def ean13(digits: str) -> bool:
    """EAN-13 product barcode check digit; used to recognise product codes, not personal data."""
    if len(digits) != 13 or not digits.isdigit():
        return False
    total = sum(int(c) * (3 if i % 2 else 1) for i, c in enumerate(digits[:12]))
    return (10 - total % 10) % 10 == int(digits[12])
