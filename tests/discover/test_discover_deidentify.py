"""De-identification: each method, the round trips, files, streams and the CLI."""
from __future__ import annotations

import csv
import json
import random
import os

import orjson
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

import breachwatch.cli.discover  # noqa: F401  (registers the discover and deidentify commands)
from breachwatch.cli.main import app
from breachwatch.discover import samples
from breachwatch.discover.deidentify import Deidentifier, load_key, run_file, transformer
from breachwatch.discover.deidentify import fpe
from breachwatch.discover.deidentify.apply import _line_blocks
from breachwatch.discover.deidentify.methods import mask, pseudonymize

KEY = b"0123456789abcdef0123456789abcdef"
LINE = "고객 김민수님 연락처 010-1234-5678, 주민번호 960121-1021413, 메일 minsu.kim@naver.com"


@pytest.mark.parametrize("value, entity, masked", [
    ("010-1234-5678", "PHONE", "010-****-5678"),
    ("+82 10-1234-5678", "PHONE", "+82 10-****-5678"),
    ("960121-1021413", "KR_RRN", "960121-1******"),
    ("4111-1111-1111-1111", "CREDIT_CARD", "4111-11**-****-1111"),
    ("minsu.kim@naver.com", "EMAIL", "mi*******@naver.com"),
    ("김민수", "PERSON_NAME", "김*수"),
    ("이솔", "PERSON_NAME", "이*"),
    ("서울특별시 강남구 테헤란로 123, 101동 1203호", "ADDRESS", "서울특별시 강남구 테헤란로 ***, ***동 ****호"),
    ("203.0.113.7", "IP_ADDRESS", "203.0.*.*"),
    ("1990-03-05", "DATE_OF_BIRTH", "1990-**-**"),
])
def test_mask_keeps_what_people_recognise(value: str, entity: str, masked: str) -> None:
    assert mask(value, entity) == masked


def test_each_method_on_a_log_line() -> None:
    masked = Deidentifier(transformer("mask")).texts([LINE])[0]
    assert masked == "고객 김*수님 연락처 010-****-5678, 주민번호 960121-1******, 메일 mi*******@naver.com"
    redacted = Deidentifier(transformer("redact")).texts([LINE])[0]
    assert redacted == "고객 [PERSON_NAME]님 연락처 [PHONE], 주민번호 [KR_RRN], 메일 [EMAIL]"
    pseudo = Deidentifier(transformer("pseudonymize", KEY)).texts([LINE])[0]
    assert "010-1234-5678" not in pseudo and pseudo.count("PHONE_") == 1
    token = Deidentifier(transformer("fpe", KEY)).texts([LINE])[0]
    assert len(token) == len(LINE) and "010-1234-5678" not in token
    restored = Deidentifier(transformer("fpe", KEY, reverse=True)).texts([token])[0]
    assert restored == LINE


def test_pseudonyms_are_keyed_deterministic_and_normalised() -> None:
    a = pseudonymize("010-1234-5678", "PHONE", KEY)
    assert a == pseudonymize("01012345678", "PHONE", KEY) == pseudonymize("+82 10-1234-5678", "PHONE", KEY)
    assert a != pseudonymize("010-1234-5679", "PHONE", KEY)
    assert a != pseudonymize("010-1234-5678", "PHONE", b"another key of 16+ bytes")
    assert pseudonymize("Kim@Naver.com", "EMAIL", KEY) == pseudonymize("kim@naver.com", "EMAIL", KEY)


_FPE_TEXT = st.text(alphabet=st.sampled_from("0123456789abcxyzABCXYZ가김민수힣-. @"), max_size=30)


@settings(max_examples=300, deadline=None, derandomize=True, database=None)
@given(_FPE_TEXT, st.sampled_from(["PHONE", "KR_RRN", "EMAIL", "TEXT"]))
def test_fpe_round_trip_preserves_format(value: str, tweak: str) -> None:
    token = fpe.encrypt(KEY, value, tweak)
    assert fpe.decrypt(KEY, token, tweak) == value
    assert len(token) == len(value)
    for a, b in zip(value, token):
        assert (a.isdigit(), a.islower() and a.isascii(), a.isupper() and a.isascii(), "가" <= a <= "힣") == \
            (b.isdigit(), b.islower() and b.isascii(), b.isupper() and b.isascii(), "가" <= b <= "힣")
        if not a.isalnum():
            assert a == b


@settings(max_examples=100, deadline=None, derandomize=True, database=None)
@given(st.lists(st.text(alphabet="0123456789", min_size=6, max_size=6), min_size=2, max_size=30, unique=True))
def test_fpe_is_a_permutation(values: list[str]) -> None:
    tokens = [fpe.encrypt(KEY, v, "T") for v in values]
    assert len(set(tokens)) == len(values)


@settings(max_examples=100, deadline=None, derandomize=True, database=None)
@given(st.integers(min_value=0, max_value=2**32))
def test_identifier_round_trips_through_spans(seed: int) -> None:
    rng = random.Random(seed)
    line = (f"주민번호 {samples.resident_number(rng)} 연락처 {samples.phone_number(rng)} "
            f"카드 {samples.card_number(rng)} 이메일 {samples.email(rng)}")
    forward = Deidentifier(transformer("fpe", KEY)).texts([line])[0]
    assert forward != line and len(forward) == len(line)
    # Tokens keep what makes them recognisable, so reversal finds and restores every one inside the text.
    assert Deidentifier(transformer("fpe", KEY, reverse=True)).texts([forward])[0] == line
    pseudo = Deidentifier(transformer("pseudonymize", KEY))
    assert pseudo.texts([line]) == pseudo.texts([line])


def test_columns_mode_replaces_whole_cells_in_records() -> None:
    deid = Deidentifier(transformer("redact"), columns=["name", "note"])
    out = list(deid.records([{"name": "김민수", "note": "아무 내용", "phone": "010-1234-5678"}]))
    assert out == [{"name": "[PERSON_NAME]", "note": "[REDACTED]", "phone": "010-1234-5678"}]


def test_csv_ndjson_parquet_files(tmp_path) -> None:
    rows = samples.customer_rows(50, seed=3)
    src = tmp_path / "c.csv"
    with open(src, "w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    masker = Deidentifier(transformer("mask"), columns=["cust_nm", "jumin_no"])
    run_file(masker, str(src), str(tmp_path / "o.csv"), "csv")
    out = list(csv.DictReader(open(tmp_path / "o.csv", encoding="utf-8")))
    assert out[0]["jumin_no"] == rows[0]["jumin_no"][:8] + "******"
    assert out[0]["cust_nm"].startswith(rows[0]["cust_nm"][0]) and "*" in out[0]["cust_nm"]
    assert out[0]["cust_hp_no"] == rows[0]["cust_hp_no"]  # not a named column

    nd = tmp_path / "c.ndjson"
    nd.write_bytes(b"".join(orjson.dumps({"who": {"phone": r["cust_hp_no"]}, "n": 1}) + b"\n" for r in rows))
    run_file(Deidentifier(transformer("redact")), str(nd), str(tmp_path / "o.ndjson"), "ndjson")
    first = json.loads((tmp_path / "o.ndjson").read_text("utf-8").splitlines()[0])
    assert first == {"who": {"phone": "[PHONE]"}, "n": 1}

    pqf = tmp_path / "c.parquet"
    pq.write_table(pa.Table.from_pylist([{"email": r["email_addr"], "n": i} for i, r in enumerate(rows)]), pqf)
    run_file(Deidentifier(transformer("pseudonymize", KEY)), str(pqf), str(tmp_path / "o.parquet"), "parquet")
    got = pq.read_table(tmp_path / "o.parquet").to_pylist()
    assert got[0]["email"].startswith("EMAIL_") and got[0]["n"] == 0


def test_key_comes_from_environment_or_file(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("MY_DEID_KEY", "short")
    with pytest.raises(ValueError, match="at least 16"):
        load_key(env="MY_DEID_KEY")
    with pytest.raises(ValueError, match="not set"):
        load_key(env="NOT_SET_ANYWHERE_X")
    key_file = tmp_path / "k"
    key_file.write_text("a-long-enough-secret-key\n")
    assert load_key(file=str(key_file)) == b"a-long-enough-secret-key"
    with pytest.raises(ValueError, match="needs a key"):
        transformer("pseudonymize", None)
    with pytest.raises(ValueError, match="only with --method fpe"):
        transformer("mask", None, reverse=True)


runner = CliRunner()


def test_cli_streams_stdin_to_stdout_and_reverses(tmp_path) -> None:
    env = {"BREACHWATCH_DEID_KEY": KEY.decode()}
    result = runner.invoke(app, ["deidentify", "-", "--out", "-", "--method", "fpe"], input=LINE + "\n", env=env)
    assert result.exit_code == 0, result.output
    token = result.stdout.splitlines()[0]
    assert token != LINE and len(token) == len(LINE)
    back = runner.invoke(app, ["deidentify", "-", "--out", "-", "--method", "fpe", "--reverse"], input=token + "\n",
                         env=env)
    assert back.stdout.splitlines()[0] == LINE
    missing_key = runner.invoke(app, ["deidentify", "-", "--out", "-", "--method", "pseudonymize",
                                      "--key-env", "NO_SUCH_VAR_X"], input="x\n")
    assert missing_key.exit_code == 2
    bad = runner.invoke(app, ["deidentify", "-", "--out", "-", "--method", "shred"], input="x\n")
    assert bad.exit_code == 2


def test_cli_file_with_json_summary(tmp_path) -> None:
    src = tmp_path / "app.log"
    src.write_text("\n".join([LINE, "nothing personal", LINE]) + "\n", "utf-8")
    out = tmp_path / "app.masked.log"
    result = runner.invoke(app, ["deidentify", str(src), "--out", str(out), "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["values_replaced"] == 8
    lines = out.read_text("utf-8").splitlines()
    assert lines[1] == "nothing personal" and "010-****-5678" in lines[0]
    assert runner.invoke(app, ["deidentify", str(src), "--out", str(src)]).exit_code == 2


def test_live_stream_emits_a_partial_block_when_input_pauses() -> None:
    read_fd, write_fd = os.pipe()
    with os.fdopen(read_fd, "r", encoding="utf-8") as reader, os.fdopen(write_fd, "w", encoding="utf-8") as writer:
        writer.write(LINE + "\n")
        writer.flush()
        blocks = _line_blocks(reader, live=True)
        # The writer stays open: a batch-only reader would wait here for more lines or for EOF.
        assert next(blocks) == [LINE + "\n"]
