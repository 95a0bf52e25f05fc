"""Scanning real PostgreSQL and MariaDB, seeded with Korean customer tables and decoys.

Each test creates its own uniquely named schema or database (and role or
user) and drops them afterwards, since others use the same servers.
"""
from __future__ import annotations

import datetime as dt
import random

import psycopg
import pymysql
import pytest
from discover_helpers import CLOSED_PORT, MARIADB, POSTGRES_URL, findings_by_column, unique

from breachwatch.discover import datamap, samples
from breachwatch.discover.scan import Budget, scan_sources
from breachwatch.discover.scanners.postgres import PostgresSource
from breachwatch.store.db import connect

COLUMNS = ("cust_no", "cust_nm", "jumin_no", "cust_hp_no", "email_addr", "rcv_addr", "brth_dt", "memo", "ord_no",
           "prod_cd", "reg_ts", "grade")
EXPECTED = {"cust_nm": "PERSON_NAME", "jumin_no": "KR_RRN", "cust_hp_no": "PHONE", "email_addr": "EMAIL",
            "rcv_addr": "ADDRESS", "brth_dt": "DATE_OF_BIRTH", "memo": "PHONE"}
DECOYS = ("cust_no", "ord_no", "prod_cd", "reg_ts", "grade")


def _rows(n: int) -> list[tuple]:
    rows = samples.customer_rows(n, seed=5)
    # Some customers born after October 2020: their numbers carry no check digit.
    rng = random.Random(9)
    for r in rows[::25]:
        r["jumin_no"] = samples.resident_number(rng, dt.date(2021, rng.randint(1, 12), rng.randint(1, 28)))
    return [tuple(str(r[c]) for c in COLUMNS) for r in rows]


@pytest.fixture()
def store(tmp_path):
    con = connect(tmp_path / "store.duckdb")
    yield con
    con.close()


@pytest.fixture()
def pg_schema():
    schema, role = unique("bw_disc"), unique("bw_disc_ro")
    admin = psycopg.connect(POSTGRES_URL, autocommit=True)
    try:
        yield from _seed_postgres(admin, schema, role)
    finally:
        admin.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
        admin.execute(f"DROP ROLE IF EXISTS {role}")
        admin.close()


def _seed_postgres(admin: psycopg.Connection, schema: str, role: str):
    admin.execute(f"CREATE SCHEMA {schema}")
    cols = ", ".join(f"{c} text" for c in COLUMNS)
    admin.execute(f"CREATE TABLE {schema}.customers ({cols})")
    with admin.cursor() as cur:
        cur.executemany(f"INSERT INTO {schema}.customers VALUES ({', '.join(['%s'] * len(COLUMNS))})", _rows(1500))
    # Large enough that the scanner samples with TABLESAMPLE; phones built by SQL so seeding stays fast.
    admin.execute(f"""CREATE TABLE {schema}.delivery_log AS
        SELECT g AS id,
               '010-' || lpad(((g * 7919) % 9000 + 1000)::text, 4, '0') || '-'
                 || lpad(((g * 104729) % 10000)::text, 4, '0') AS rcv_tel,
               'ORD' || lpad(g::text, 10, '0') AS order_ref,
               now() - (g || ' minutes')::interval AS created_at
        FROM generate_series(1::bigint, 60000::bigint) g""")
    admin.execute(f"CREATE TABLE {schema}.staff_secrets (emp_nm text, jumin_no text)")
    admin.execute(f"INSERT INTO {schema}.staff_secrets VALUES ('김민수', '960121-1021413')")
    admin.execute(f"ANALYZE {schema}.delivery_log")
    admin.execute(f"CREATE ROLE {role} LOGIN")
    admin.execute(f"GRANT USAGE ON SCHEMA {schema} TO {role}")
    admin.execute(f"GRANT SELECT ON {schema}.customers, {schema}.delivery_log TO {role}")
    yield schema, role


@pytest.fixture()
def maria_db():
    name, user = unique("bw_disc"), unique("bwd")
    admin = pymysql.connect(**MARIADB, autocommit=True, charset="utf8mb4")
    cur = admin.cursor()
    try:
        yield from _seed_mariadb(cur, name, user)
    finally:
        cur.execute(f"DROP DATABASE IF EXISTS {name}")
        for host in ("%", "localhost", "127.0.0.1"):
            cur.execute(f"DROP USER IF EXISTS '{user}'@'{host}'")
        admin.close()


def _seed_mariadb(cur, name: str, user: str):
    cur.execute(f"CREATE DATABASE {name} CHARACTER SET utf8mb4")
    cols = ", ".join(f"{c} VARCHAR(200)" for c in COLUMNS)
    cur.execute(f"CREATE TABLE {name}.customers (id INT AUTO_INCREMENT PRIMARY KEY, {cols})")
    cur.executemany(f"INSERT INTO {name}.customers ({', '.join(COLUMNS)}) VALUES ({', '.join(['%s'] * len(COLUMNS))})",
                    _rows(1500))
    cur.execute(f"CREATE TABLE {name}.staff_secrets (emp_nm VARCHAR(20), jumin_no VARCHAR(20))")
    for host in ("%", "localhost", "127.0.0.1"):
        cur.execute(f"CREATE USER '{user}'@'{host}'")
        cur.execute(f"GRANT SELECT ON {name}.customers TO '{user}'@'{host}'")
        # Visible to the user (it may insert) but not readable.
        cur.execute(f"GRANT INSERT ON {name}.staff_secrets TO '{user}'@'{host}'")
    yield name, user


def _check_customers(found: dict[tuple[str, str], set[str]], table: str) -> None:
    for column, entity in EXPECTED.items():
        assert entity in found.get((table, column), set()), (column, found.get((table, column)))
    for column in DECOYS:
        assert (table, column) not in found, (column, found[(table, column)])


def test_postgres_scan_classifies_columns_and_skips_what_it_cannot_read(store, pg_schema) -> None:
    schema, role = pg_schema
    url = f"postgresql://{role}@127.0.0.1:5432/test"
    closed = f"postgresql://postgres@127.0.0.1:{CLOSED_PORT}/test"
    reports = scan_sources(store, [closed, url], budget=Budget(sample=2000), tables=[f"{schema}.*"])
    assert reports[0].status == "failed" and "cannot connect" in reports[0].message
    report = reports[1]
    assert report.status == "complete"
    by_table = {t.table: t for t in report.tables}
    _check_customers(findings_by_column(report), f"{schema}.customers")
    skipped = by_table[f"{schema}.staff_secrets"]
    assert skipped.status == "skipped" and "no SELECT privilege" in skipped.reason
    log = by_table[f"{schema}.delivery_log"]
    assert log.sample_method.startswith("TABLESAMPLE") and log.estimated_rows == 60000
    log_findings = {f.column: f for f in log.findings}
    assert set(log_findings) == {"rcv_tel"} and log_findings["rcv_tel"].entity == "PHONE"
    assert 50000 < log_findings["rcv_tel"].estimated_rows <= 60000
    # The data map persisted, and the failed source is on record.
    mapped = {(r["table_name"], r["column_name"]) for r in datamap.list_datamap(store, source=url)}
    assert (f"{schema}.customers", "jumin_no") in mapped
    runs = {r["source"]: r["status"] for r in datamap.list_runs(store)}
    assert runs[closed] == "failed" and runs[url] == "complete"


def test_postgres_source_reads_in_read_only_transactions(pg_schema) -> None:
    schema, _ = pg_schema
    source = PostgresSource(POSTGRES_URL)
    try:
        assert source.con.execute("SHOW default_transaction_read_only").fetchone()[0] == "on"
        with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
            source.con.execute(f"INSERT INTO {schema}.staff_secrets VALUES ('x', 'y')")
    finally:
        source.close()


def test_mariadb_scan_classifies_columns_and_skips_unreadable_table(store, maria_db) -> None:
    name, user = maria_db
    url = f"mysql://{user}@127.0.0.1:3306/{name}"
    closed = f"mysql://root@127.0.0.1:{CLOSED_PORT}/{name}"
    reports = scan_sources(store, [url, closed], budget=Budget(sample=1000))
    report = reports[0]
    assert report.status == "complete"
    _check_customers(findings_by_column(report), f"{name}.customers")
    by_table = {t.table: t for t in report.tables}
    assert by_table[f"{name}.customers"].sampled_rows == 1000
    assert by_table[f"{name}.staff_secrets"].status == "skipped"
    assert "permission denied" in by_table[f"{name}.staff_secrets"].reason
    assert reports[1].status == "failed" and "cannot connect" in reports[1].message


def test_mariadb_large_table_is_sampled_across_its_key_range(store, maria_db) -> None:
    name, _ = maria_db
    admin = pymysql.connect(**MARIADB, autocommit=True)
    with admin.cursor() as cur:
        cur.execute(f"ANALYZE TABLE {name}.customers")
    admin.close()
    reports = scan_sources(store, [f"mariadb://root@127.0.0.1:3306/{name}"], budget=Budget(sample=200),
                           tables=["customers"])
    table = reports[0].tables[0]
    assert table.sample_method.startswith("10 key-range slices") and table.sampled_rows == 200
    assert "KR_RRN" in findings_by_column(reports[0])[(f"{name}.customers", "jumin_no")]


def test_mariadb_key_range_sample_tops_up_short_slices_without_repeats(maria_db) -> None:
    """A key range with a far outlier: every random slice lands past the dense keys and reads the one
    outlying row, so the sample must top up from the start of the range and count each row once."""
    from breachwatch.discover.scanners.mysql import MySQLSource
    name, _ = maria_db
    admin = pymysql.connect(**MARIADB, autocommit=True, charset="utf8mb4")
    with admin.cursor() as cur:
        cur.execute(f"CREATE TABLE {name}.skewed (id BIGINT PRIMARY KEY, note VARCHAR(20))")
        cur.executemany(f"INSERT INTO {name}.skewed VALUES (%s, %s)",
                        [(i, f"n{i}") for i in range(1, 101)] + [(10**12, "far")])
    admin.close()
    source = MySQLSource(f"mariadb://root@127.0.0.1:3306/{name}")
    try:
        got, method = source._spread("CAST(note AS CHAR)", f"{name}.skewed", "id", 40)
    finally:
        source.close()
    assert method == "10 key-range slices of 4 rows"
    assert len(got) == 40 and len(set(got)) == 40 and ("far",) in got
