"""Encryption at rest: a store written encrypted cannot be opened without its key and holds no plaintext."""
from __future__ import annotations

import os

import duckdb
import pytest
from server_helpers import event

from breachwatch.ingest.pipeline import ingest_records
from breachwatch.server.store import ServerStore
from breachwatch.store import encryption
from breachwatch.store.db import StoreError, connect

SECRET = "kim.minji.secret-mail@example.co.kr"


@pytest.fixture(autouse=True)
def _fallback(monkeypatch):
    # DuckDB writes encrypted files with OpenSSL from its httpfs extension when installed,
    # else only with this explicit opt-in (the machine running the tests may have either).
    monkeypatch.setenv(encryption.ALLOW_MBEDTLS_ENV, "1")


def test_encrypted_store_needs_its_key_and_leaks_no_plaintext(tmp_path, monkeypatch):
    db = tmp_path / "enc.duckdb"
    key = "k" * 8 + os.urandom(16).hex()
    con = encryption.connect_encrypted(db, key)
    ingest_records(con, [event(1, subject_ids=["7001"], attributes={"email": SECRET})], "test", db_path=str(db))
    assert con.execute("SELECT count(*) FROM events").fetchone()[0] == 1
    cur = encryption.store_cursor(con)
    assert cur.execute("SELECT count(*) FROM audit_log").fetchone()[0] == 0  # the cursor is on the store too
    cur.close()
    con.execute("CHECKPOINT")
    con.close()
    for p in tmp_path.iterdir():
        if p.name.startswith("enc.duckdb"):
            assert SECRET.encode() not in p.read_bytes(), p.name
            assert b"kim.minji" not in p.read_bytes(), p.name
    assert oct(db.stat().st_mode & 0o777) == "0o600"
    with pytest.raises((StoreError, duckdb.Error)):
        plain = connect(db)
        plain.execute("SELECT * FROM events").fetchall()
    with pytest.raises(StoreError, match="key"):
        encryption.connect_encrypted(db, "wrong-key-" + "x" * 16)
    monkeypatch.setenv(encryption.KEY_ENV, key)
    store = ServerStore(db)  # the server takes the key from the environment
    assert store.encrypted
    with store.reading() as cur:
        assert cur.execute("SELECT attributes->>'$.email' FROM events").fetchone()[0] == SECRET
    store.close()


def test_key_file_must_be_owner_only(tmp_path):
    f = tmp_path / "db.key"
    f.write_text("a" * 32)
    f.chmod(0o644)
    with pytest.raises(StoreError, match="chmod 600"):
        encryption.load_key(f)
    f.chmod(0o600)
    assert encryption.load_key(f) == "a" * 32
    short = tmp_path / "short.key"
    short.write_text("abc")
    short.chmod(0o600)
    with pytest.raises(StoreError, match="at least"):
        encryption.load_key(short)


def test_plain_store_converts_to_encrypted(tmp_path):
    plain = tmp_path / "plain.duckdb"
    con = connect(plain)
    ingest_records(con, [event(2, attributes={"email": SECRET})], "test")
    con.close()
    enc = tmp_path / "enc.duckdb"
    encryption.encrypt_store(plain, enc, "z" * 32)
    assert SECRET.encode() not in enc.read_bytes()
    con = encryption.connect_encrypted(enc, "z" * 32)
    assert con.execute("SELECT count(*) FROM events").fetchone()[0] == 1
    con.close()
