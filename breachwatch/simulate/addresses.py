"""Korean road-name delivery addresses and apartment entrance codes.

Regions are weighted by population (thousands, rounded); an address reads like
"서울특별시 강남구 테헤란로 152, 101동 1203호". About two thirds of Koreans live
in apartments, whose shared front door has a keypad code: the code couriers
need, and one of the fields exposed in the 2025 retailer breach.
"""
from __future__ import annotations

import numpy as np

REGIONS: tuple[tuple[str, int], ...] = (
    ("서울특별시 강남구", 530), ("서울특별시 송파구", 650), ("서울특별시 강서구", 560), ("서울특별시 노원구", 500),
    ("서울특별시 관악구", 490), ("서울특별시 은평구", 460), ("서울특별시 강동구", 470), ("서울특별시 양천구", 440),
    ("서울특별시 성북구", 430), ("서울특별시 구로구", 400), ("서울특별시 서초구", 410), ("서울특별시 중랑구", 380),
    ("서울특별시 동작구", 380), ("서울특별시 영등포구", 380), ("서울특별시 광진구", 340), ("서울특별시 마포구", 370),
    ("서울특별시 동대문구", 340), ("서울특별시 도봉구", 300), ("서울특별시 강북구", 290), ("서울특별시 금천구", 230),
    ("서울특별시 서대문구", 310), ("서울특별시 성동구", 280), ("서울특별시 용산구", 220), ("서울특별시 종로구", 140),
    ("서울특별시 중구", 120),
    ("경기도 수원시 영통구", 360), ("경기도 성남시 분당구", 480), ("경기도 고양시 일산동구", 300),
    ("경기도 용인시 수지구", 380), ("경기도 부천시", 800), ("경기도 화성시", 900), ("경기도 남양주시", 730),
    ("경기도 안산시 단원구", 300), ("경기도 평택시", 580), ("경기도 안양시 동안구", 300), ("경기도 시흥시", 510),
    ("경기도 파주시", 490), ("경기도 김포시", 480), ("경기도 의정부시", 460), ("경기도 광주시", 390),
    ("경기도 하남시", 330),
    ("인천광역시 연수구", 390), ("인천광역시 남동구", 500), ("인천광역시 부평구", 480), ("인천광역시 서구", 600),
    ("부산광역시 해운대구", 380), ("부산광역시 부산진구", 360), ("부산광역시 동래구", 270), ("부산광역시 남구", 260),
    ("부산광역시 사하구", 300), ("대구광역시 수성구", 410), ("대구광역시 달서구", 530), ("대구광역시 북구", 420),
    ("광주광역시 북구", 420), ("광주광역시 광산구", 400), ("대전광역시 서구", 470), ("대전광역시 유성구", 350),
    ("울산광역시 남구", 310), ("울산광역시 북구", 220), ("세종특별자치시", 390),
    ("충청북도 청주시 흥덕구", 280), ("충청남도 천안시 서북구", 400), ("전북특별자치도 전주시 완산구", 350),
    ("전라남도 순천시", 280), ("경상북도 포항시 남구", 240), ("경상남도 창원시 성산구", 230), ("경상남도 김해시", 530),
    ("제주특별자치도 제주시", 490), ("강원특별자치도 원주시", 360), ("강원특별자치도 춘천시", 290),
)
REGION_NAMES = np.array([r for r, _ in REGIONS])
REGION_SHARE = np.array([w for _, w in REGIONS], dtype=float) / sum(w for _, w in REGIONS)

ROADS = np.array([
    "테헤란로", "강남대로", "올림픽로", "송파대로", "도산대로", "봉은사로", "양재대로", "남부순환로", "시흥대로",
    "중앙로", "번영로", "문화로", "평화로", "세종대로", "공항대로", "동일로", "노해로", "월드컵로", "신촌로",
    "독립문로", "한강대로", "서초대로", "반포대로", "해운대로", "수영로", "달구벌대로", "상무대로", "대덕대로",
    "삼산로", "경수대로", "분당로", "판교역로", "호수로", "일산로", "중부대로", "동탄대로", "한누리대로",
    "연무로", "광교중앙로", "청라대로", "송도과학로", "충장로", "백제대로", "창원대로", "노형로",
])


def addresses(r: np.random.Generator, n: int) -> tuple[list[str], list[str], list[str]]:
    """n addresses with their entrance codes in clear and masked ('' where there is no keypad)."""
    region = REGION_NAMES[r.choice(len(REGIONS), size=n, p=REGION_SHARE)]
    road = ROADS[r.integers(0, len(ROADS), n)]
    lane = r.integers(1, 60, n)
    use_lane = r.random(n) < 0.35
    bldg = r.integers(1, 400, n)
    apartment = r.random(n) < 0.65
    dong = r.integers(101, 121, n)
    floor = r.integers(1, 31, n)
    unit = r.integers(1, 7, n)
    code_n = r.integers(0, 1_000_000, n)
    code_style = r.integers(0, 3, n)
    addr, code, masked = [], [], []
    for i in range(n):
        street = f"{road[i]}{lane[i]}길" if use_lane[i] else road[i]
        line = f"{region[i]} {street} {bldg[i]}"
        if apartment[i]:
            line += f", {dong[i]}동 {floor[i]}{unit[i]:02d}호"
            digits = f"{code_n[i] % 10000:04d}" if code_style[i] < 2 else f"{code_n[i]:06d}"
            c = f"#{digits}" if code_style[i] == 0 else (f"{digits}*" if code_style[i] == 1 else digits)
            code.append(c)
            masked.append(c[:2] + "*" * (len(c) - 2))
        else:
            code.append("")
            masked.append("")
        addr.append(line)
    return addr, code, masked
