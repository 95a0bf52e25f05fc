"""PII recognition benchmark: breachwatch against Microsoft Presidio, side by side.

Both engines read the same generated corpus of Korean and English records
(identifiers with valid check digits, labelled and unlabelled, and decoys:
order numbers shaped like phones, 13-digit product codes, timestamps).
Presidio runs pattern-only (no spaCy model can be installed offline) with its
Korean recognizers (RRN, FRN, BRN, passport, driver's licence) enabled and
Korea added to its phone regions, at its default score threshold (its pattern scores are
lower than ours: a phone scores 0.4 there).

Reported: throughput (MB/s of UTF-8 text) and precision, recall and F1 per
entity type. A prediction counts when its type matches and it covers at
least half of a true span. Then, unless --skip-pg, a PostgreSQL table of
--pg-rows rows is generated with SQL, classified by sampling, and dropped.

    .venv/bin/python bench/pii.py                 # 4,000 records, 10M-row table
    .venv/bin/python bench/pii.py --records 1000 --pg-rows 1000000 --json
"""
from __future__ import annotations

import argparse
import json
import sys
import time
import uuid
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from breachwatch.discover.classify import classify_column  # noqa: E402
from breachwatch.discover.engine import Analyzer  # noqa: E402
from breachwatch.discover.samples import Labelled, labelled_records  # noqa: E402

# Presidio's entity names -> breachwatch's.
PRESIDIO_TO_OURS = {
    "PHONE_NUMBER": "PHONE", "EMAIL_ADDRESS": "EMAIL", "CREDIT_CARD": "CREDIT_CARD", "IBAN_CODE": "IBAN",
    "IP_ADDRESS": "IP_ADDRESS", "KR_RRN": "KR_RRN", "KR_FRN": "KR_FRN", "KR_BRN": "KR_BRN",
    "KR_PASSPORT": "KR_PASSPORT", "KR_DRIVER_LICENSE": "KR_DRIVER_LICENSE", "DATE_TIME": "DATE_OF_BIRTH",
}
STRUCTURED = ("KR_RRN", "KR_FRN", "KR_BRN", "KR_PASSPORT", "KR_DRIVER_LICENSE", "PHONE", "EMAIL", "CREDIT_CARD",
              "IBAN", "IP_ADDRESS")


def presidio_engine():
    import tldextract
    from presidio_analyzer import AnalyzerEngine, RecognizerRegistry
    from presidio_analyzer.nlp_engine import NlpEngineProvider
    from presidio_analyzer.predefined_recognizers import (CreditCardRecognizer, DateRecognizer, EmailRecognizer,
                                                          IbanRecognizer, IpRecognizer, KrBrnRecognizer,
                                                          KrDriverLicenseRecognizer, KrPassportRecognizer,
                                                          KrRrnRecognizer, PhoneRecognizer)
    from presidio_analyzer.predefined_recognizers.country_specific.korea.kr_frn_recognizer import KrFrnRecognizer

    # The email validator's public-suffix list: the bundled snapshot, never a download.
    tldextract.tldextract.TLD_EXTRACTOR = tldextract.TLDExtract(suffix_list_urls=(), cache_dir=None)
    nlp = NlpEngineProvider(nlp_configuration={"nlp_engine_name": "no_op",
                                               "models": [{"lang_code": "en", "model_name": "no_op"}]}).create_engine()
    registry = RecognizerRegistry(supported_languages=["en"])
    for rec in (EmailRecognizer(), CreditCardRecognizer(), IbanRecognizer(), IpRecognizer(), DateRecognizer(),
                PhoneRecognizer(supported_regions=("KR", "US", "GB", "DE", "JP")),
                KrRrnRecognizer(supported_language="en"), KrFrnRecognizer(supported_language="en"),
                KrBrnRecognizer(supported_language="en"), KrPassportRecognizer(supported_language="en"),
                KrDriverLicenseRecognizer(supported_language="en")):
        registry.add_recognizer(rec)
    return AnalyzerEngine(registry=registry, nlp_engine=nlp, supported_languages=["en"])


def run_presidio(records: list[Labelled]) -> tuple[list[list[tuple[int, int, str]]], float]:
    engine = presidio_engine()
    entities = list(PRESIDIO_TO_OURS)
    engine.analyze("warm up 010-1234-5678", language="en", entities=entities)
    started = time.perf_counter()
    out = []
    for r in records:
        res = engine.analyze(r.text, language="en", entities=entities)  # its default threshold
        out.append([(x.start, x.end, PRESIDIO_TO_OURS[x.entity_type]) for x in res])
    return out, time.perf_counter() - started


def run_breachwatch(records: list[Labelled], block: int) -> tuple[list[list[tuple[int, int, str]]], float, float]:
    analyzer = Analyzer()
    texts = [r.text for r in records]
    analyzer.analyze(texts[:10])
    started = time.perf_counter()
    out: list[list[tuple[int, int, str]]] = [[] for _ in records]
    for i in range(0, len(texts), block):
        for h in analyzer.analyze(texts[i:i + block]):
            out[i + h.row].append((h.start, h.end, h.entity))
    blocked = time.perf_counter() - started
    started = time.perf_counter()
    for t in texts:
        analyzer.analyze_text(t)
    per_record = time.perf_counter() - started
    return out, blocked, per_record


def score(records: list[Labelled], predicted: list[list[tuple[int, int, str]]]) -> dict[str, dict[str, float]]:
    tp, fp, fn = Counter(), Counter(), Counter()
    for r, preds in zip(records, predicted):
        unmatched = list(r.spans)
        for s, e, ent in preds:
            match = next((g for g in unmatched if g[2] == ent and
                          min(e, g[1]) - max(s, g[0]) >= 0.5 * (g[1] - g[0])), None)
            if match:
                tp[ent] += 1
                unmatched.remove(match)
            else:
                fp[ent] += 1
        for g in unmatched:
            fn[g[2]] += 1
    out = {}
    for ent in sorted(set(tp) | set(fp) | set(fn)):
        p = tp[ent] / (tp[ent] + fp[ent]) if tp[ent] + fp[ent] else 0.0
        rc = tp[ent] / (tp[ent] + fn[ent]) if tp[ent] + fn[ent] else 0.0
        f1 = 2 * p * rc / (p + rc) if p + rc else 0.0
        out[ent] = {"precision": round(p, 3), "recall": round(rc, 3), "f1": round(f1, 3),
                    "support": tp[ent] + fn[ent]}
    return out


def postgres_table(rows: int, url: str) -> dict[str, object]:
    """Generate a customer table with SQL, classify it by sampling, drop it."""
    import psycopg

    from breachwatch.discover.scanners.postgres import PostgresSource

    table = f"bench_pii_{uuid.uuid4().hex[:8]}"
    admin = psycopg.connect(url, autocommit=True)
    try:
        started = time.perf_counter()
        admin.execute(f"""
            CREATE UNLOGGED TABLE public.{table} AS
            SELECT g AS cust_no,
                   (ARRAY['김','이','박','최','정','강','조','윤','장','임'])[1 + g % 10]
                     || (ARRAY['민','서','지','현','우','영','수','진','은','희'])[1 + (g / 10) % 10]
                     || (ARRAY['준','연','호','아','윤','빈','혁','정','원','훈'])[1 + (g / 100) % 10] AS cust_nm,
                   '010-' || lpad(((g * 7919) % 9000 + 1000)::text, 4, '0') || '-'
                     || lpad(((g * 104729) % 10000)::text, 4, '0') AS cust_hp_no,
                   'user' || g || '@' || (ARRAY['naver.com','gmail.com','daum.net'])[1 + g % 3] AS email_addr,
                   (ARRAY['서울특별시 강남구 테헤란로 ','경기도 성남시 분당구 판교역로 ','부산광역시 해운대구 해운대로 '])[1 + g % 3]
                     || (1 + g % 400) || ', ' || (101 + g % 20) || '동 ' || (100 + g % 1500) || '호' AS rcv_addr,
                   'ORD' || lpad(g::text, 12, '0') AS ord_no,
                   timestamp '2024-01-01' + (g || ' seconds')::interval AS reg_dtm
            FROM generate_series(1::bigint, {rows}::bigint) g""")
        admin.execute(f"ANALYZE public.{table}")
        generated = time.perf_counter() - started
        analyzer = Analyzer()
        started = time.perf_counter()
        source = PostgresSource(url)
        try:
            [meta] = [t for t in source.tables() if t.name == f"public.{table}"]
            sample = source.sample(meta, 10_000, 60)
        finally:
            source.close()
        findings = []
        for i, col in enumerate(sample.columns):
            findings += classify_column(analyzer, col, sample.values(i), table_rows=meta.estimated_rows)
        classified = time.perf_counter() - started
    finally:
        admin.execute(f"DROP TABLE IF EXISTS public.{table}")
        admin.close()
    return {"rows": rows, "estimated_rows": meta.estimated_rows, "sample_method": sample.method,
            "sampled_rows": len(sample.rows), "generate_s": round(generated, 1), "classify_s": round(classified, 2),
            "findings": {f.column: f.entity for f in findings}}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--records", type=int, default=4000)
    ap.add_argument("--block", type=int, default=2000, help="records per analyzer call for breachwatch")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--pg-rows", type=int, default=10_000_000)
    ap.add_argument("--pg-url", default="postgresql://postgres@127.0.0.1:5432/test")
    ap.add_argument("--skip-pg", action="store_true")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()

    records = labelled_records(args.records, seed=args.seed)
    mb = sum(len(r.text.encode("utf-8")) for r in records) / 1e6
    ours, ours_s, ours_record_s = run_breachwatch(records, args.block)
    theirs, theirs_s = run_presidio(records)
    result: dict[str, object] = {
        "records": len(records), "megabytes": round(mb, 3),
        "throughput_mb_s": {"breachwatch_blocks": round(mb / ours_s, 3),
                            "breachwatch_per_record": round(mb / ours_record_s, 3),
                            "presidio_pattern_only": round(mb / theirs_s, 3)},
        "speedup_blocks": round(theirs_s / ours_s, 1), "speedup_per_record": round(theirs_s / ours_record_s, 1),
        "breachwatch": score(records, ours), "presidio": score(records, theirs),
    }
    if not args.skip_pg:
        result["postgres"] = postgres_table(args.pg_rows, args.pg_url)
    if args.json:
        print(json.dumps(result, ensure_ascii=False, indent=2))
        return
    t = result["throughput_mb_s"]
    print(f"corpus: {len(records):,} records, {mb:.2f} MB (Korean and English, with decoys)")
    print(f"throughput MB/s: breachwatch {t['breachwatch_blocks']} (blocks of {args.block}), "
          f"{t['breachwatch_per_record']} (one call per record); presidio {t['presidio_pattern_only']}")
    print(f"speed-up: x{result['speedup_blocks']} (blocks), x{result['speedup_per_record']} (per record)\n")
    print(f"{'entity':18} {'support':>7}  {'breachwatch P/R/F1':>22}  {'presidio P/R/F1':>22}")
    bw, pr = result["breachwatch"], result["presidio"]
    for ent in sorted(set(bw) | set(pr)):
        a, b = bw.get(ent), pr.get(ent)
        fmt = (lambda m: f"{m['precision']:.3f}/{m['recall']:.3f}/{m['f1']:.3f}" if m else "n/a")
        support = (a or b)["support"]
        mark = " *" if ent in STRUCTURED else ""
        print(f"{ent + mark:18} {support:>7}  {fmt(a):>22}  {fmt(b):>22}")
    print("(* structured identifier)")
    if "postgres" in result:
        pg = result["postgres"]
        print(f"\npostgres: {pg['rows']:,}-row table generated in {pg['generate_s']}s; classified in "
              f"{pg['classify_s']}s by {pg['sample_method']} ({pg['sampled_rows']} rows); "
              f"findings {pg['findings']}")


if __name__ == "__main__":
    main()
