"""Korean personal names, by surname frequency plus context.

A Korean name is a one-syllable surname (two for a few families) and a
one- to three-syllable given name. Any two-to-four-syllable Hangul word has
that shape, so the recognizer only reports names next to a context word or in
a column that is named for names or whose values are overwhelmingly
name-shaped (see `name_likeness` and the column classifier).
"""
from __future__ import annotations

from breachwatch.discover.recognizers.base import Pattern, Recognizer

# Approximate shares of the population (%), 2015 census; the long tail is
# lumped at 0.05 so that rare but real surnames still count.
SURNAME_SHARE: dict[str, float] = {
    "김": 21.5, "이": 14.7, "박": 8.4, "최": 4.7, "정": 4.3, "강": 2.4, "조": 2.1, "윤": 2.1, "장": 2.0,
    "임": 1.7, "한": 1.5, "오": 1.5, "서": 1.5, "신": 1.4, "권": 1.4, "황": 1.4, "안": 1.4, "송": 1.3,
    "전": 1.1, "홍": 1.1, "유": 1.1, "고": 0.9, "문": 0.9, "양": 0.9, "손": 0.9, "배": 0.8, "백": 0.7,
    "허": 0.6, "남": 0.6, "심": 0.5, "노": 0.5, "하": 0.5, "곽": 0.4, "성": 0.4, "차": 0.4, "주": 0.4,
    "우": 0.4, "구": 0.4, "민": 0.3, "류": 0.3, "나": 0.3, "진": 0.3, "지": 0.3, "엄": 0.3, "채": 0.3,
    "원": 0.3, "천": 0.2, "방": 0.2, "공": 0.2, "현": 0.2, "함": 0.2, "변": 0.2, "염": 0.1, "여": 0.1,
    "추": 0.1, "도": 0.1, "소": 0.1, "석": 0.1, "선": 0.1, "설": 0.1, "마": 0.1, "길": 0.1, "연": 0.1,
    "위": 0.1, "표": 0.1, "명": 0.1, "기": 0.1, "반": 0.1, "라": 0.05, "왕": 0.05, "금": 0.05, "옥": 0.05,
    "육": 0.05, "인": 0.05, "맹": 0.05, "제": 0.05, "모": 0.05, "탁": 0.05, "국": 0.05, "어": 0.05,
    "은": 0.05, "편": 0.05, "용": 0.05, "예": 0.05, "봉": 0.05, "경": 0.05, "사": 0.05, "부": 0.05,
    "가": 0.05, "복": 0.05, "태": 0.05, "목": 0.05, "형": 0.05, "피": 0.05, "두": 0.05, "감": 0.05,
    "음": 0.05, "빈": 0.05, "동": 0.05, "온": 0.05, "호": 0.05, "범": 0.05, "좌": 0.05, "승": 0.05,
}
COMPOUND_SURNAMES = frozenset({"남궁", "황보", "제갈", "선우", "독고", "사공", "서문", "동방", "어금", "망절"})

# Syllables that make up the large majority of given names across generations.
GIVEN_SYLLABLES = frozenset(
    "민서준지현우영수진은희정혜호성경연미숙자순옥철동훈석재윤아하예도주원유태상승한기용혁인빈채나규건형선"
    "소다시율린람겸찬환종명광남일길국병창춘덕만식봉택근완범열웅섭욱휘화향란애임분녀례실금효솔결온별슬봄담"
    "설빛새늘가라보비세여이해안엽중학충표필홍탁헌균량배권평운양심복갑무신묵산강송림랑래련로루름리"
)


# Everyday words of name shape that sit next to names in forms and messages.
NOT_NAMES = frozenset("""
배송지 배송 배송비 배송일 배송중 주문자 수령인 수취인 연락처 전화 전화번호 주소 이름 성명 성함 담당자 이메일 생년월일
휴대폰 우편번호 정보 주문 상품 결제 감사 안녕 문의 확인 변경 요청 고객 회원 고객님 회원님 주문번호 배송메모 부재시
문앞 경비실 택배 택배함 정상 완료 취소 환불 반품 교환 입금 계좌 은행 예금주 사용 사용자 관리자 기사 기사님 선생님
사장님 이사 부장 과장 대리 사원 주임 팀장 실장 원장 기본 기본값 신규 기존 전체 일반 개인 법인 남성 여성 남자 여자
이상 이하 이번 이전 이후 정기 정산 정보변경 조회 조건 주의 지급 지역 지번 도로명 동의 미동의 수신 수신동의 거부
""".split())


def name_likeness(word: str) -> float:
    """How name-like a 2-4 syllable Hangul word is, 0 (not at all) to 1.

    The surname's census share gives the prior; each given-name syllable that
    is common in names keeps it, each one that is not halves it.
    """
    if not 2 <= len(word) <= 4 or word in NOT_NAMES:
        return 0.0
    if word[:2] in COMPOUND_SURNAMES and len(word) >= 3:
        surname_weight, given = 0.6, word[2:]
    elif word[0] in SURNAME_SHARE:
        share = SURNAME_SHARE[word[0]]
        surname_weight, given = (1.0 if share >= 1.0 else 0.8 if share >= 0.3 else 0.6), word[1:]
    else:
        return 0.0
    if len(given) > 3:
        return 0.0
    common = sum(1 for c in given if c in GIVEN_SYLLABLES)
    if common == 0:
        return 0.0
    return surname_weight * (0.5 ** (len(given) - common))


def _validate_name(text: str) -> float | None:
    likeness = name_likeness(text)
    if likeness < 0.5:
        return None
    return 0.2 * likeness


PERSON_NAME_KR = Recognizer(
    name="kr_person_name", entity="PERSON_NAME", field="name", category="personal",
    description="2-4 syllable Hangul names with a known surname; only next to context (이름, 고객, …님)",
    patterns=(
        # Lazy so that an honorific (님, 씨) after the name stays outside the span.
        Pattern("hangul name", r"(?<![가-힣])[가-힣]{2,4}?(?=(?:님|씨|고객|회원)?(?![가-힣]))", 0.3),
    ),
    context=("이름", "성명", "성함", "고객명", "회원명", "수령인", "수취인", "받는분", "받는 분", "보내는분", "주문자",
             "예금주", "담당자", "님", "씨", "고객", "회원", "name", "customer", "recipient"),
    validate=_validate_name,
    requires_context=True,
    context_boost=0.3,
)
