"""Catalog suggestions from the data map (`breachwatch discover --suggest-catalog`).

Two kinds of evidence link data to an endpoint:

- observed: captured responses of the endpoint were scanned (data map tables
  named `endpoint:GET /api/...`), so the fields are what it really returns;
- possible: a scanned table whose name matches a word of the endpoint's path
  (`/api/members/{id}` and `tb_member`, `/api/me/addresses` and `cust_addr`),
  so the endpoint may return the table's fields: a lead to check, not a fact.

Fields the catalog does not declare are proposed with their category, and
personal data found in breachwatch's own event store is listed apart: it
should not be in logs at all.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Iterable

from breachwatch.contract.catalog import Catalog
from breachwatch.discover.scanners.files import ENDPOINT_PREFIX, file_format

LABELS = {
    "name": ("name", "이름"), "email": ("email address", "이메일"), "phone": ("phone number", "전화번호"),
    "address": ("address", "주소"), "birth_date": ("date of birth", "생년월일"),
    "resident_registration_number": ("resident registration number", "주민등록번호"),
    "foreigner_registration_number": ("foreigner registration number", "외국인등록번호"),
    "business_registration_number": ("business registration number", "사업자등록번호"),
    "passport_number": ("passport number", "여권번호"), "driver_license_number": ("driver's licence number", "운전면허번호"),
    "bank_account": ("bank account number", "계좌번호"), "payment_card": ("payment card number", "결제 카드 번호"),
    "ip_address": ("IP address", "IP 주소"), "secret_token": ("access token or API key", "접근 토큰·API 키"),
}
# Abbreviations Korean schemas use for the nouns of API paths.
SYNONYMS = {
    "customer": {"cust", "cst", "client"}, "member": {"mbr", "mem", "user", "usr"}, "address": {"addr", "adr", "dlvr"},
    "order": {"ord", "ordr"}, "recipient": {"rcv", "rcvr", "rcpt"}, "shipping": {"ship", "dlvr", "delivery"},
    "label": {"lbl"}, "profile": {"prfl"},
}
_PREFIXES = ("tb", "tbl", "t", "v", "vw", "mst", "his")


def _singular(word: str) -> str:
    if word.endswith("ies"):
        return word[:-3] + "y"
    if word.endswith(("sses", "shes", "ches", "xes")):
        return word[:-2]
    if word.endswith("s") and not word.endswith("ss"):
        return word[:-1]
    return word


def _path_words(route: str) -> set[str]:
    path = route.split(" ", 1)[-1]
    words = set()
    for seg in path.strip("/").split("/"):
        if not seg or seg.startswith("{") or seg in ("api", "v1", "v2", "me", "internal", "admin", "partner"):
            continue
        w = _singular(seg.lower())
        words.add(w)
        words |= SYNONYMS.get(w, set())
    return words


def _table_words(table: str) -> set[str]:
    name = table.lower().replace("\\", "/").rsplit("/", 1)[-1]
    if file_format(Path(name)):
        base = name.split(".")[0]          # customers.csv.gz -> customers
    else:
        base = name.split(".")[-1]         # schema.table -> table
    return {_singular(t) for t in re.split(r"[^a-z0-9]+", base) if t and t not in _PREFIXES}


def suggest_catalog(rows: Iterable[dict[str, Any]], catalog: Catalog, *,
                    min_confidence: float = 0.5) -> dict[str, Any]:
    """Proposed catalog entries: new fields with categories, and per-endpoint field lists."""
    rows = [r for r in rows if r["confidence"] >= min_confidence]
    endpoints: dict[str, dict[str, Any]] = {}
    logs: list[dict[str, Any]] = []
    unlinked: dict[str, set[str]] = {}

    def entry(route: str) -> dict[str, Any]:
        if route not in endpoints:
            resolved = catalog.resolve(route)
            known = resolved[0] if resolved else None
            endpoints[route] = {"route": known.route if known else route, "in_catalog": known is not None,
                                "catalog_fields": list(known.fields) if known else [],
                                "observed": {}, "possible": {}}
        return endpoints[route]

    for r in rows:
        evidence = {"source": r["source"], "table": r["table_name"], "column": r["column_name"],
                    "entity": r["entity"], "confidence": r["confidence"]}
        if r["source"].startswith("store:"):
            logs.append(evidence | {"field": r["field"]})
            continue
        if r["table_name"].startswith(ENDPOINT_PREFIX):
            e = entry(r["table_name"][len(ENDPOINT_PREFIX):])
            e["observed"].setdefault(r["field"], []).append(evidence)
            continue
        words = _table_words(r["table_name"])
        linked = False
        for ep in catalog.endpoints:
            if words & _path_words(ep.route):
                entry(ep.route)["possible"].setdefault(r["field"], []).append(evidence)
                linked = True
        if not linked:
            unlinked.setdefault(f"{r['source']} {r['table_name']}", set()).add(r["field"])

    # Merge entries that resolved to the same catalog route.
    merged: dict[str, dict[str, Any]] = {}
    for e in endpoints.values():
        m = merged.setdefault(e["route"], {**e, "observed": {}, "possible": {}})
        for kind in ("observed", "possible"):
            for f, ev in e[kind].items():
                m[kind].setdefault(f, []).extend(ev)

    found_fields: dict[str, str] = {r["field"]: r["category"] for r in rows}
    new_fields = {f: {"category": c, "label": LABELS.get(f, (f, f))[0], "label_ko": LABELS.get(f, (f, f))[1]}
                  for f, c in sorted(found_fields.items()) if f not in catalog.fields}
    out_endpoints = []
    for route, e in sorted(merged.items()):
        observed = sorted(e["observed"])
        possible = sorted(set(e["possible"]) - set(observed))
        missing = sorted(f for f in observed if f not in e["catalog_fields"])
        out_endpoints.append({
            "route": route, "in_catalog": e["in_catalog"], "catalog_fields": e["catalog_fields"],
            "observed_fields": observed, "possible_fields": possible, "missing_from_catalog": missing,
            "evidence": {f: ev[:5] for f, ev in {**e["possible"], **e["observed"]}.items()},
        })
    return {
        "fields": new_fields,
        "endpoints": out_endpoints,
        "personal_data_in_logs": logs,
        "tables_without_endpoint": {k: sorted(v) for k, v in sorted(unlinked.items())},
    }


def as_catalog_yaml(suggestion: dict[str, Any]) -> str:
    """The suggestion as a catalog fragment a person can review and paste into breachwatch.yaml."""
    lines = ["# Proposed by 'breachwatch discover --suggest-catalog': review before use.", "fields:"]
    if not suggestion["fields"]:
        lines[-1] = "fields: {}   # every field found is already declared"
    for name, spec in suggestion["fields"].items():
        lines.append(f"  {name}: {{category: {spec['category']}, label: {spec['label']}, "
                     f"label_ko: {spec['label_ko']}}}")
    lines.append("endpoints:")
    for e in suggestion["endpoints"]:
        fields = sorted(set(e["catalog_fields"]) | set(e["observed_fields"]))
        status = "in catalog" if e["in_catalog"] else "NOT in catalog"
        lines.append(f"  - route: {e['route']}   # {status}")
        lines.append(f"    fields: [{', '.join(fields)}]")
        if e["missing_from_catalog"]:
            missing = ", ".join(e["missing_from_catalog"])
            lines.append(f"    # seen in responses but missing from the catalog: {missing}")
        if e["possible_fields"]:
            lines.append(f"    # its tables also hold: {', '.join(e['possible_fields'])} (check the responses)")
    if suggestion["personal_data_in_logs"]:
        lines.append("# Personal data found in breachwatch's own event store (should not be logged):")
        for item in suggestion["personal_data_in_logs"]:
            lines.append(f"#   {item['column']}: {item['entity']} (confidence {item['confidence']})")
    if suggestion["tables_without_endpoint"]:
        lines.append("# Tables with personal data that no catalog endpoint names:")
        for table, fields in suggestion["tables_without_endpoint"].items():
            lines.append(f"#   {table}: {', '.join(fields)}")
    return "\n".join(lines) + "\n"
