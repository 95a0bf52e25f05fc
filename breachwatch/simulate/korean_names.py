"""Korean names, e-mail addresses and mobile numbers, generated from embedded lists.

Surname shares follow the 2015 Korean census (김 21.5 %, 이 14.7 %, 박 8.4 %,
최 4.7 %, 정 4.3 % ...); given names are two syllables from common pools.
Faker is not used: its ko_KR provider's resident registration numbers are not
valid, and a fixed embedded list keeps every run reproducible offline.
"""
from __future__ import annotations

import numpy as np

# (surname, romanisation, % of population, 2015 census, rounded)
SURNAMES: tuple[tuple[str, str, float], ...] = (
    ("김", "kim", 21.5), ("이", "lee", 14.7), ("박", "park", 8.4), ("최", "choi", 4.7), ("정", "jung", 4.3),
    ("강", "kang", 2.3), ("조", "cho", 2.1), ("윤", "yoon", 2.1), ("장", "jang", 2.0), ("임", "lim", 1.7),
    ("한", "han", 1.5), ("오", "oh", 1.5), ("서", "seo", 1.5), ("신", "shin", 1.5), ("권", "kwon", 1.4),
    ("황", "hwang", 1.4), ("안", "ahn", 1.4), ("송", "song", 1.4), ("전", "jeon", 1.3), ("홍", "hong", 1.1),
    ("유", "yoo", 1.9), ("고", "ko", 0.9), ("문", "moon", 0.9), ("양", "yang", 0.9), ("손", "son", 0.9),
    ("배", "bae", 0.8), ("백", "baek", 0.8), ("허", "heo", 0.7), ("남", "nam", 0.5), ("심", "shim", 0.5),
    ("노", "noh", 0.4), ("하", "ha", 0.5), ("곽", "kwak", 0.4), ("성", "sung", 0.4), ("차", "cha", 0.4),
    ("주", "joo", 0.5), ("우", "woo", 0.4), ("구", "koo", 0.4), ("민", "min", 0.3), ("류", "ryu", 0.3),
    ("나", "na", 0.3), ("진", "jin", 0.3), ("지", "ji", 0.3), ("엄", "eom", 0.3), ("채", "chae", 0.3),
    ("원", "won", 0.3), ("천", "cheon", 0.25), ("방", "bang", 0.25), ("공", "kong", 0.2), ("현", "hyun", 0.2),
    ("변", "byun", 0.3), ("염", "yeom", 0.15), ("여", "yeo", 0.15), ("추", "choo", 0.1), ("도", "do", 0.1),
    ("소", "so", 0.1), ("석", "seok", 0.1), ("선", "sun", 0.1), ("설", "seol", 0.1), ("마", "ma", 0.1),
    ("길", "gil", 0.1), ("연", "yeon", 0.1), ("위", "wi", 0.1), ("표", "pyo", 0.1), ("명", "myung", 0.1),
    ("기", "ki", 0.1), ("반", "ban", 0.1), ("왕", "wang", 0.05), ("금", "geum", 0.05), ("옥", "ok", 0.05),
    ("육", "yook", 0.05), ("인", "in", 0.05), ("맹", "maeng", 0.05), ("제", "je", 0.05), ("모", "mo", 0.05),
    ("탁", "tak", 0.05), ("국", "kook", 0.05), ("남궁", "namgoong", 0.04), ("황보", "hwangbo", 0.03),
    ("제갈", "jegal", 0.01), ("선우", "sunwoo", 0.01), ("독고", "dokgo", 0.005),
)

_MALE_FIRST = "민min 서seo 도do 준jun 현hyun 성sung 영young 정jung 동dong 상sang 재jae 승seung 진jin 우woo 태tae " \
              "건geon 시si 지ji 은eun 예ye 주ju 하ha 윤yoon 경kyung 병byung 종jong 용yong 명myung 광kwang 철chul"
_MALE_SECOND = "준jun 호ho 우woo 민min 현hyun 수soo 훈hoon 혁hyuk 진jin 석seok 빈bin 원won 재jae 철chul 규kyu " \
               "환hwan 영young 식sik 욱wook 성sung 기ki 윤yoon 한han 택taek"
_FEMALE_FIRST = "서seo 지ji 수soo 민min 하ha 예ye 윤yoon 채chae 은eun 유yu 혜hye 미mi 정jung 소so 다da 가ga 나na " \
                "현hyun 영young 숙suk 경kyung 명myung 순soon 연yeon 선sun"
_FEMALE_SECOND = "연yeon 윤yoon 은eun 아a 진jin 영young 희hee 현hyun 서seo 민min 린rin 원won 경kyung 지ji 정jung " \
                 "숙suk 자ja 미mi 주ju 빈bin 율yul 우woo"


def _pool(spec: str) -> tuple[np.ndarray, np.ndarray]:
    items = [(s[0], s[1:]) for s in spec.split()]
    return np.array([h for h, _ in items]), np.array([r for _, r in items])


SYLLABLES = {("m", 0): _pool(_MALE_FIRST), ("m", 1): _pool(_MALE_SECOND),
             ("f", 0): _pool(_FEMALE_FIRST), ("f", 1): _pool(_FEMALE_SECOND)}
SURNAME_HANGUL = np.array([s for s, _, _ in SURNAMES])
SURNAME_ROMAN = np.array([r for _, r, _ in SURNAMES])
SURNAME_SHARE = np.array([p for _, _, p in SURNAMES]) / sum(p for _, _, p in SURNAMES)

# Where Korean consumers' mailboxes are: Naver first, then Gmail, Daum/Hanmail, Kakao, Nate.
EMAIL_DOMAINS = np.array(["naver.com", "gmail.com", "daum.net", "hanmail.net", "kakao.com", "nate.com",
                          "hotmail.com", "icloud.com"])
EMAIL_DOMAIN_SHARE = np.array([0.42, 0.25, 0.10, 0.08, 0.06, 0.05, 0.02, 0.02])


def surname_index(r: np.random.Generator, n: int) -> np.ndarray:
    return r.choice(len(SURNAMES), size=n, p=SURNAME_SHARE)


def people(r: np.random.Generator, n: int) -> dict[str, np.ndarray]:
    """n people: Hangul name, gender, a romanised form for e-mail local parts, a birth year."""
    sur = surname_index(r, n)
    female = r.random(n) < 0.51
    hangul = np.empty(n, dtype=object)
    roman = np.empty(n, dtype=object)
    given_roman = np.empty(n, dtype=object)
    for g, mask in (("f", female), ("m", ~female)):
        k = int(mask.sum())
        h1, r1 = SYLLABLES[(g, 0)]
        h2, r2 = SYLLABLES[(g, 1)]
        a = r.integers(0, len(h1), k)
        b = r.integers(0, len(h2), k)
        given_h = np.char.add(h1[a], h2[b])
        hangul[mask] = np.char.add(SURNAME_HANGUL[sur[mask]], given_h)
        given_roman[mask] = np.char.add(r1[a], r2[b])
    roman[:] = SURNAME_ROMAN[sur]
    birth = r.integers(1955, 2007, n)
    return {"name": hangul, "gender": np.where(female, "F", "M"), "surname_roman": roman,
            "given_roman": given_roman, "birth_year": birth}


def emails(r: np.random.Generator, p: dict[str, np.ndarray]) -> list[str]:
    n = len(p["name"])
    dom = EMAIL_DOMAINS[r.choice(len(EMAIL_DOMAINS), size=n, p=EMAIL_DOMAIN_SHARE)]
    style = r.integers(0, 4, n)
    num = r.integers(0, 10000, n)
    out = []
    for i in range(n):
        s, g, y, d = p["surname_roman"][i], p["given_roman"][i], int(p["birth_year"][i]) % 100, dom[i]
        st = style[i]
        if st == 0:
            local = f"{g}{s}{y:02d}"
        elif st == 1:
            local = f"{s}.{g}{num[i] % 100}"
        elif st == 2:
            local = f"{s}{g[:1]}{num[i]:04d}"
        else:
            local = f"{g}_{num[i] % 1000}"
        out.append(f"{local}@{d}")
    return out


def mobile_numbers(r: np.random.Generator, n: int) -> list[str]:
    mid = r.integers(2000, 10000, n)
    last = r.integers(0, 10000, n)
    return [f"010-{a:04d}-{b:04d}" for a, b in zip(mid, last)]
