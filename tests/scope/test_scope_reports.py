"""Reports and notices: generated, parsed back (PDF text, Hangul), deadlines, staged updates, mail-merge."""
from __future__ import annotations

import csv
import re
from datetime import datetime, timezone
from pathlib import Path

import pytest
from pypdf import PdfReader
from scope_world import build, incident_of

from breachwatch.ingest.pipeline import ingest_records
from breachwatch.scope.deadlines import record_duty_done, set_aware_at
from breachwatch.scope.reports.render import DOCUMENTS
from breachwatch.scope.run import run_scope
from breachwatch.store.db import connect

NOW = datetime(2025, 4, 3, 0, 0, tzinfo=timezone.utc)  # 42 h after aware_at 2025-04-01 06:00 UTC
HANGUL = re.compile(r"[\uac00-\ud7a3]")


def _pdf_text(path: str) -> str:
    return "\n".join(page.extract_text() for page in PdfReader(path).pages)


@pytest.fixture(scope="module")
def scoped(tmp_path_factory: pytest.TempPathFactory):
    """One full scope run with PDFs, shared by the read-only checks (a PDF with Hangul takes about a second)."""
    tmp = tmp_path_factory.mktemp("reports")
    path = str(tmp / "store.duckdb")
    con = connect(path)
    w = build()
    ingest_records(con, w.events, "fixture", db_path=path)
    inc, seed = incident_of(w, "forged_token")
    contacts = tmp / "contacts.csv"
    contacts.write_text("subject_id,name,email,phone\n1000011,김민수,minsu@example.test,010-1111-2222\n"
                        "r-10,이영희,,010-3333-4444\n")
    res = run_scope(con, {**inc, "event_ids": seed}, tmp / "out", accept_all=True, contacts=contacts,
                    created_by="analyst", now=NOW)
    yield con, w, inc, seed, res, tmp
    con.close()


def test_every_report_in_both_languages_and_three_formats_with_the_counts(scoped) -> None:
    _, w, _, _, res, _ = scoped
    subjects = len({s for s, _ in w.truth["forged_token"]})
    non_members = len({s for s, _ in w.truth["forged_token"] if s.startswith("r")})
    for doc in DOCUMENTS:
        for lang in ("ko", "en"):
            stem = f"{doc.id}.{lang}"
            md = Path(res.files[f"{stem}.md"]).read_text("utf-8")
            html = Path(res.files[f"{stem}.html"]).read_text("utf-8")
            text = _pdf_text(res.files[f"{stem}.pdf"])
            assert f"<html lang=\"{lang}\">" in html and "<table>" in html
            for body in (md, text):
                assert str(subjects) in body and str(non_members) in body, stem
            if lang == "ko":
                assert len(HANGUL.findall(text)) > 100, stem  # Hangul survives into the PDF
                assert "KST" in text and "UTC" not in md, stem  # Korean reports use Korea time
            else:
                assert not HANGUL.search(md), stem
    reg = _pdf_text(res.files["pipa_regulator.ko.pdf"])
    for item in ("유출등이 된 개인정보의 항목", "시점과 그 경위", "정보주체가 할 수 있는 방법", "대응조치",
                 "피해 구제절차", "담당부서 및 연락처", "예시리테일 주식회사"):
        assert item in reg
    assert "공동현관 출입번호" in reg and "2025-04-01 15:00 KST" in reg  # aware_at 06:00 UTC in Korea time


def test_deadlines_say_which_duties_apply_and_flag_the_missed(scoped) -> None:
    _, _, _, _, res, _ = scoped
    duties = {d["id"]: d for d in res.duties}
    # Access from outside (foreign forged-token reads): regulator report and Network Act report apply.
    assert duties["pipa_regulator"]["applies"] and "access from outside" in duties["pipa_regulator"]["why"]
    assert duties["network_act_intrusion"]["state"] == "missed"  # 24 h passed at NOW (42 h)
    assert duties["pipa_notice"]["state"] == "pending" and duties["pipa_notice"]["deadline"].startswith("2025-04-04T06")
    assert duties["gdpr_art33"]["state"] == "not_required"
    text = _pdf_text(res.files["pipa_regulator.en.pdf"])
    assert "MISSED" in text and "1 deadline(s) missed" in text


def test_aware_at_moves_only_with_a_reason_and_reports_show_the_record(world_store, tmp_path: Path) -> None:
    con, _, w = world_store
    inc, seed = incident_of(w, "forged_token")
    with pytest.raises(ValueError, match="reason"):
        set_aware_at(con, inc, "2025-04-01T03:00:00+09:00", reason=" ", by="regulator")
    set_aware_at(con, inc, "2025-03-31T16:00:00+09:00", reason="PIPC finding: customer complaint on 03-31",
                 by="legal team")
    record_duty_done(con, inc["id"], "pipa_regulator", "2025-04-02T09:00:00+09:00", by="legal team")
    res = run_scope(con, {**inc, "event_ids": seed}, tmp_path / "again", accept_all=True, now=NOW, pdf=False)
    duties = {d["id"]: d for d in res.duties}
    assert duties["pipa_regulator"]["state"] == "done"  # 24 h after the new aware_at (07:00 UTC 03-31 + 72 h)
    assert duties["pipa_notice"]["state"] == "pending"
    md = Path(res.files["pipa_regulator.ko.md"]).read_text("utf-8")
    assert "PIPC finding" in md and "2025-03-31 16:00 KST" in md and "legal team" in md


def test_staged_update_notice_after_the_scope_grows(world_store, tmp_path: Path) -> None:
    con, _, w = world_store
    inc, seed = incident_of(w, "forged_token")
    first = run_scope(con, {**inc, "event_ids": seed}, tmp_path / "v1", reject=["unissued-key:k-2019-07"],
                      pdf=False, now=NOW)
    contacts = tmp_path / "c.csv"
    contacts.write_text("subject_id,name,email,phone\n")
    second = run_scope(con, {**inc, "event_ids": seed}, tmp_path / "v2", accept_all=True, contacts=contacts,
                       pdf=False, now=NOW)
    assert (first.version, second.version) == (1, 2)
    added = second.manifest.summary["subjects"] - first.manifest.summary["subjects"]
    assert added > 0
    md = Path(second.files["pipa_notice.en.md"]).read_text("utf-8")
    assert f"by {added:,} people" in md and "Update 1" in md
    with open(second.files["mail_merge.csv"], newline="") as f:
        notices = {r["subject_id"]: r["notice"] for r in csv.DictReader(f)}
    before = set(first.manifest.subjects())
    assert {s for s, n in notices.items() if n == "first"} == set(notices) - before
    assert all(notices[s] in ("unchanged", "update") for s in before)


def test_mail_merge_lists_exactly_each_persons_own_fields(scoped) -> None:
    _, w, _, _, res, _ = scoped
    with open(res.files["mail_merge.csv"], newline="") as f:
        rows = {r["subject_id"]: r for r in csv.DictReader(f)}
    mine: dict[str, set[str]] = {}
    for s, fld in w.truth["forged_token"]:
        mine.setdefault(s, set()).add(fld)
    assert set(rows) == set(mine)
    labels = {"name": ("name", "이름"), "email": ("email address", "이메일"), "phone": ("phone number", "전화번호"),
              "address": ("delivery address", "배송지 주소"),
              "entrance_code_masked": ("masked entrance code", "공동현관 출입번호(일부 가림)")}
    for s, r in rows.items():
        assert set(r["fields"].split("|")) == mine[s]
        listed_en = r["notice_en"].split("Exactly these items of yours were exposed: ")[1].split(".\n")[0]
        assert set(listed_en.split(", ")) == {labels[f][0] for f in mine[s]}, s
        for f, (en, ko) in labels.items():
            if f not in mine[s] and f != "entrance_code_masked":
                assert en not in listed_en and ko not in r["notice_ko"], (s, f)
    kim, lee = rows["1000011"], rows["r-10"]
    assert kim["name"] == "김민수" and kim["notice_ko"].startswith("김민수 고객님께")
    assert lee["phone"] == "010-3333-4444" and "전화번호" in lee["fields_ko"] and "phone" not in kim["fields"]
    assert res.mail_merge["with_contact"] == 2 and res.mail_merge["rows"] == len(mine)


def test_exposure_table_for_the_member_service(scoped) -> None:
    _, w, _, _, res, _ = scoped
    with open(res.files["exposures.csv"], newline="") as f:
        rows = list(csv.DictReader(f))
    assert {(r["subject_id"], r["field"]) for r in rows} == w.truth["forged_token"]
    assert {r["incident_id"] for r in rows} == {"INC-forged_token"}
