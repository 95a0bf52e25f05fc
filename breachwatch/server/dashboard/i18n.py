"""The dashboard's words in English and Korean, and times as each reader expects them (UTC, or KST in Korean)."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

LANGS = ("en", "ko")
KST = timezone(timedelta(hours=9), "KST")

WORDS: dict[str, tuple[str, str]] = {
    "overview": ("Overview", "개요"),
    "incidents": ("Incidents", "사고"),
    "datamap": ("Data map", "개인정보 지도"),
    "keys": ("Key hygiene", "키 관리"),
    "drill": ("Drill", "훈련"),
    "audit": ("Audit trail", "감사 기록"),
    "logout": ("Log out", "로그아웃"),
    "login": ("Log in", "로그인"),
    "username": ("User name", "사용자 이름"),
    "password": ("Password", "비밀번호"),
    "login_failed": ("Wrong user name or password.", "사용자 이름 또는 비밀번호가 올바르지 않습니다."),
    "login_limited": ("Too many failed logins. Try again in {s} seconds.",
                      "로그인 실패가 너무 많습니다. {s}초 후에 다시 시도하세요."),
    "ingest_rate": ("Ingest rate (last hour)", "수집 속도 (최근 1시간)"),
    "events_per_s": ("events/s", "건/초"),
    "open_by_severity": ("Open incidents by severity", "심각도별 미해결 사고"),
    "reads_by_ptype": ("Personal-data reads by principal type", "주체 유형별 개인정보 조회"),
    "reads_by_country": ("Personal-data reads by country", "국가별 개인정보 조회"),
    "critical": ("critical", "심각"), "high": ("high", "높음"), "medium": ("medium", "중간"), "low": ("low", "낮음"),
    "open": ("open", "미해결"), "acknowledged": ("acknowledged", "확인됨"), "resolved": ("resolved", "해결됨"),
    "false_positive": ("false positive", "오탐"),
    "severity": ("Severity", "심각도"), "status": ("Status", "상태"), "summary": ("Summary", "요약"),
    "detected_at": ("Detected", "탐지 시각"), "subjects": ("People", "정보주체"), "detectors": ("Detectors", "탐지기"),
    "first_seen": ("First seen", "최초 발생"), "last_seen": ("Last seen", "최근 발생"),
    "timeline": ("Activity over time", "시간별 활동"),
    "entities": ("Entities", "관련 개체"),
    "evidence": ("Evidence", "증거"),
    "more_evidence": ("{n} more findings", "증거 {n}건 더 보기"),
    "blast_radius": ("Blast radius by field", "항목별 유출 범위"),
    "field": ("Field", "항목"), "reads": ("Reads", "조회 수"),
    "scope": ("Scope expansion", "범위 확장"),
    "accept": ("accept", "수용"), "reject": ("reject", "거부"), "undecided": ("undecided", "미결정"),
    "build_manifest": ("Build manifest and reports", "명단 및 보고서 작성"),
    "downloads": ("Manifest and reports", "명단 및 보고서"),
    "version": ("version", "버전"),
    "acknowledge": ("Acknowledge", "확인"), "resolve": ("Resolve", "해결"),
    "mark_fp": ("Mark false positive", "오탐 처리"),
    "suppressions": ("Suppressions", "억제 규칙"),
    "no_suppressions": ("No incident has been marked a false positive.", "오탐 처리된 사고가 없습니다."),
    "sup_active": ("In force", "적용 중"), "sup_lifted": ("Lifted by {who}", "{who} 해제"),
    "sup_expired": ("Expired", "만료"), "sup_until": ("Until", "기한"), "sup_by": ("Set by", "설정자"),
    "sup_hits": ("Alerts hidden", "숨긴 경보"), "sup_entity": ("Entity", "개체"),
    "sup_lift": ("Lift", "해제"), "sup_lift_reason": ("Why it is lifted", "해제 사유"),
    "sup_reason_needed": ("A suppression is lifted only with a reason.", "억제 규칙은 사유를 적어야 해제할 수 있습니다."),
    "fp_scope": ("Suppress", "억제 범위"), "fp_pattern": ("this detector on these entities", "이 탐지기, 이 개체"),
    "fp_entity": ("any detector on these entities", "모든 탐지기, 이 개체"),
    "fp_expires": ("Until (e.g. 30d)", "기한 (예: 30d)"), "fp_reason": ("Reason", "사유"),
    "note": ("Note", "메모"),
    "history": ("History", "처리 이력"),
    "entity": ("Entity", "개체"), "baseline": ("baseline", "기준선"),
    "events": ("events", "이벤트"), "subjects_read": ("subjects read", "조회된 정보주체"),
    "in_incidents": ("In incidents", "관련 사고"),
    "no_incidents": ("No incidents.", "사고가 없습니다."),
    "no_data": ("Nothing recorded yet.", "아직 기록이 없습니다."),
    "forbidden": ("Your roles do not allow this page.", "이 페이지에 대한 권한이 없습니다."),
    "not_found": ("Not found.", "찾을 수 없습니다."),
    "time_zone": ("UTC", "KST"),
    "source": ("Source", "출처"), "table": ("Table", "테이블"), "column": ("Column", "컬럼"),
    "category": ("Category", "분류"), "confidence": ("Confidence", "신뢰도"),
    "finding": ("Finding", "발견 사항"), "key": ("Key", "키"),
    "scenario": ("Scenario", "시나리오"), "detected": ("Detected", "탐지"),
    "time_to_detect": ("Time to detect", "탐지 소요 시간"), "recall": ("Scope recall", "범위 재현율"),
    "precision": ("Scope precision", "범위 정밀도"), "exposed_before": ("People exposed before detection",
                                                                       "탐지 전 노출 인원"),
    "false_positives": ("False-positive incidents", "오탐 사고"),
    "actor": ("Actor", "행위자"), "action": ("Action", "행위"), "resource": ("Resource", "대상"),
    "at": ("Time", "시각"), "outcome": ("Outcome", "결과"), "export": ("Export (NDJSON)", "내보내기 (NDJSON)"),
    "chain_intact": ("Hash chain intact", "해시 체인 정상"), "chain_broken": ("Hash chain broken at row",
                                                                              "해시 체인 손상 위치"),
    "full_check": ("whole trail last checked", "전체 기록 마지막 점검"),
    "yes": ("yes", "예"), "no": ("no", "아니요"),
    "steps_none": ("No expansion step is tied to this incident.", "이 사고와 연결된 확장 단계가 없습니다."),
    "adds": ("adds", "추가"), "people": ("people", "명"),
}


def word(key: str, lang: str) -> str:
    pair = WORDS.get(key)
    if pair is None:
        return key
    return pair[1] if lang == "ko" else pair[0]


def fmt_time(value: Any, lang: str) -> str:
    """An ISO time (UTC) as the reader expects it: UTC in English, KST in Korean."""
    if value is None or value == "":
        return "—"
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return value
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    if lang == "ko":
        return value.astimezone(KST).strftime("%Y-%m-%d %H:%M:%S KST")
    return value.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def chart_time(iso_text: str | None, lang: str) -> str | None:
    """Chart x values: wall-clock text in the reader's zone (plotly has no zones)."""
    if not iso_text:
        return None
    t = datetime.fromisoformat(iso_text.replace("Z", "+00:00"))
    if t.tzinfo is None:
        t = t.replace(tzinfo=timezone.utc)
    return t.astimezone(KST if lang == "ko" else timezone.utc).strftime("%Y-%m-%d %H:%M:%S")
