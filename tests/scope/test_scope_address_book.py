"""Plain gateway logs of address-book pages, expanded to the recipients each book held at that moment."""
from __future__ import annotations

from pathlib import Path

import pytest

from breachwatch.contract.catalog import load_catalog
from breachwatch.ingest.pipeline import ingest_records
from breachwatch.scope import build_manifest
from breachwatch.scope.address_book import load_snapshots

SNAPSHOT = """member_id,recipient_id,entry_id,fields,valid_from,valid_to
1000001,1000001,a-1,name|phone|address|entrance_code,2025-01-01T00:00:00+09:00,
1000001,r-1,a-2,name|phone|address,2025-01-01T00:00:00+09:00,2025-04-01T12:00:00+09:00
1000001,r-2,a-3,,2025-04-01T12:00:00+09:00,
"""


def _plain(i: int, member: str, path: str, at: str) -> dict:
    # What an API gateway logs: who called which path; no subjects, no fields.
    return {"event_id": f"gw{i}", "time": at, "kind": "access", "principal_id": member,
            "principal_type": "customer", "token_id": f"t-{member}", "src_ip": "121.130.0.1",
            "endpoint": f"GET {path}", "status": 200}


@pytest.fixture
def books(store, tmp_path: Path):
    con, path = store
    events = [_plain(1, "1000001", "/api/me/addresses", "2025-04-01T10:00:00+09:00"),
              _plain(2, "1000001", "/api/me/addresses", "2025-04-01T13:00:00+09:00"),
              _plain(3, "1000001", "/api/me/addresses/a-3", "2025-04-01T14:00:00+09:00"),
              _plain(4, "1000002", "/api/me/addresses", "2025-04-01T10:00:00+09:00")]
    summary = ingest_records(con, events, "gateway", db_path=path, catalog=load_catalog(None))
    assert summary.loaded == 4
    snap = tmp_path / "books.csv"
    snap.write_text(SNAPSHOT)
    assert load_snapshots(con, snap) == 3
    return con


def _pairs(con, ids: list[str]) -> set[tuple[str, str]]:
    return build_manifest(con, {"id": "INC-ab"}, [], event_ids=ids).pairs()


BOOK = ("name", "phone", "address", "entrance_code_masked")


def test_a_read_exposes_the_recipients_held_then_each_with_their_own_fields(books) -> None:
    assert _pairs(books, ["gw1"]) == {
        # the member: their name as the book's owner, and their own entry
        *{("1000001", f) for f in BOOK},
        # r-1's entry holds no entrance code, so no masked one either; r-2 was added later
        ("r-1", "name"), ("r-1", "phone"), ("r-1", "address")}
    assert _pairs(books, ["gw2"]) == {*{("1000001", f) for f in BOOK}, *{("r-2", f) for f in BOOK}}


def test_the_detail_page_exposes_only_the_entry_its_path_names(books) -> None:
    assert _pairs(books, ["gw3"]) == {("1000001", "name"),
                                      *{("r-2", f) for f in ("name", "phone", "address", "entrance_code")}}


def test_a_book_never_loaded_keeps_every_field_on_the_member(books) -> None:
    assert _pairs(books, ["gw4"]) == {("1000002", f) for f in BOOK}


def test_recipients_only_known_from_snapshots_are_non_members(books) -> None:
    m = build_manifest(books, {"id": "INC-ab"}, [], event_ids=["gw1", "gw2"])
    types = {s: v["subject_type"] for s, v in m.subjects().items()}
    assert types == {"1000001": "member", "r-1": "non_member", "r-2": "non_member"}


def test_snapshot_times_without_an_offset_are_refused(store, tmp_path: Path) -> None:
    con, _ = store
    bad = tmp_path / "bad.csv"
    bad.write_text("member_id,recipient_id,valid_from\n1,r-1,2025-01-01T00:00:00\n")
    with pytest.raises(ValueError, match="no UTC offset.*--tz"):
        load_snapshots(con, bad)
    assert load_snapshots(con, bad, tz="Asia/Seoul") == 1
    assert str(con.execute("SELECT valid_from FROM address_book_snapshots").fetchone()[0]) == "2024-12-31 15:00:00"
    missing = tmp_path / "missing.csv"
    missing.write_text("member,recipient_id,valid_from\n1,r-1,2025-01-01T00:00:00Z\n")
    with pytest.raises(ValueError, match="missing column.*member_id"):
        load_snapshots(con, missing)
