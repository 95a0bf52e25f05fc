"""Column classification: a sample of values plus the column's name become
findings (entity, confidence, hits in the sample, estimated rows).

Evidence is combined, not voted:

- value hits: the share of sampled values with a hit and their mean score;
- the name: `cust_hp_no` makes phone likely even when every value is
  encrypted, `ord_no` makes phone-shaped values unlikely to be phones;
- check digits across the column: when resident-number-shaped values pass
  their check digit no more often than chance (about one in ten), they are
  product codes or timestamps, not resident numbers (a single value is never
  rejected for a failed check: numbers issued since October 2020 have none);
- dense sequences: numeric values that fill their range like a counter are
  identifiers, not phones.
"""
from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from typing import Sequence

from breachwatch.discover.column_names import name_signal
from breachwatch.discover.engine import Analyzer, Hit
from breachwatch.discover.recognizers.korean_names import name_likeness

REPORT_CONFIDENCE = 0.5       # findings below this are not reported
NAME_ONLY_CONFIDENCE = 0.5    # a column named for an entity, values unrecognised (encrypted, masked)
CHANCE_CHECK_RATE = 0.35      # check digits passing at or below this rate are at chance level
MIN_CHECKED = 10


@dataclass
class ColumnFinding:
    column: str
    entity: str
    field: str
    category: str
    confidence: float
    hits: int            # sampled values with at least one hit
    sampled: int         # non-empty values sampled
    estimated_rows: int  # rows of the table estimated to hold this entity in this column
    signals: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def classify_column(analyzer: Analyzer, column: str, values: Sequence[object], *,
                    table_rows: int | None = None, threshold: float = REPORT_CONFIDENCE) -> list[ColumnFinding]:
    """Findings for one column from a sample of its values (None and '' are skipped)."""
    sample = [v if isinstance(v, str) else str(v) for v in values if v is not None and v != ""]
    signal = name_signal(column)
    n = len(sample)
    if n == 0:
        return _name_only(analyzer, column, signal.entity, 0, table_rows or 0, threshold)
    context = set()
    if signal.entity:
        context.add(signal.entity)
    if _mostly_names(sample):
        context.add("PERSON_NAME")
    # Every candidate, however weak, counts for the check-digit statistics;
    # only those at the analyzer's threshold count as hits.
    candidates = analyzer.analyze(sample, context_entities=context, min_score=0.0)
    rows_by_entity: dict[str, set[int]] = defaultdict(set)
    by_entity: dict[str, list[Hit]] = defaultdict(list)
    checks: dict[str, list[bool]] = defaultdict(list)
    for h in candidates:
        if h.checked is not None:
            checks[h.entity].append(h.checked)
        if h.score >= analyzer.min_score:
            rows_by_entity[h.entity].add(h.row)
            by_entity[h.entity].append(h)
    sequential = _dense_sequence(sample, table_rows)
    rows_total = table_rows if table_rows is not None else n
    nonnull_share = n / max(len(values), 1)
    findings = []
    for entity, entity_hits in by_entity.items():
        rows_hit = len(rows_by_entity[entity])
        rate = rows_hit / n
        mean = sum(h.score for h in entity_hits) / len(entity_hits)
        support = 1 - math.exp(-rows_hit / 3)
        confidence = mean * (0.75 + 0.25 * min(1.0, rate / 0.5)) * support
        signals = [f"values {rows_hit}/{n}"]
        checked = checks[entity]
        if len(checked) >= MIN_CHECKED:
            pass_rate = sum(checked) / len(checked)
            signals.append(f"check digits {pass_rate:.0%}")
            if pass_rate <= CHANCE_CHECK_RATE and entity != signal.entity:
                confidence *= 0.4
                signals.append("check digits at chance level")
        if entity == signal.entity:
            confidence = 1 - (1 - confidence) * (1 - NAME_ONLY_CONFIDENCE)
            signals.append(f"name '{column}'")
        elif signal.negative:
            confidence *= 0.4
            signals.append(f"name '{column}' suggests codes or times")
        if sequential and entity != signal.entity:
            confidence *= 0.3
            signals.append("values form a dense sequence")
        if "PERSON_NAME" in context and entity == "PERSON_NAME" and entity != signal.entity:
            signals.append("values are name-shaped")
        if confidence < threshold:
            continue
        rec = analyzer.recognizer(entity_hits[0].recognizer)
        findings.append(ColumnFinding(
            column=column, entity=entity, field=rec.field, category=rec.category,
            confidence=round(min(confidence, 1.0), 3), hits=rows_hit, sampled=n,
            estimated_rows=int(round(rows_total * nonnull_share * rate)), signals=signals))
    if signal.entity and signal.entity not in by_entity:
        findings.extend(_name_only(analyzer, column, signal.entity, n, int(rows_total * nonnull_share), threshold))
    findings.sort(key=lambda f: -f.confidence)
    return findings


def _name_only(analyzer: Analyzer, column: str, entity: str | None, sampled: int, rows: int,
               threshold: float) -> list[ColumnFinding]:
    if entity is None or NAME_ONLY_CONFIDENCE < threshold:
        return []
    rec = next((r for r in analyzer.recognizers if r.entity == entity), None)
    if rec is None:
        return []
    note = "values not recognised (encrypted, masked or empty?)" if sampled else "no values sampled"
    return [ColumnFinding(column=column, entity=entity, field=rec.field, category=rec.category,
                          confidence=NAME_ONLY_CONFIDENCE, hits=0, sampled=sampled, estimated_rows=rows,
                          signals=[f"name '{column}'", note])]


def _mostly_names(sample: Sequence[str], share: float = 0.7) -> bool:
    """Most values are whole 2-4 syllable Hangul words that look like names."""
    probe = sample[:500]
    if len(probe) < 5:
        return False
    good = sum(1 for v in probe if name_likeness(v.strip()) >= 0.5)
    return good >= share * len(probe)


def _dense_sequence(sample: Sequence[str], table_rows: int | None) -> bool:
    """Numeric values packed as tightly as a counter over the table's rows (order numbers, ids)."""
    numbers = []
    for v in sample:
        digits = v.replace("-", "")
        if not digits.isdigit():
            return False
        numbers.append(int(digits))
    distinct = len(set(numbers))
    if distinct < 20:
        return False
    span = max(numbers) - min(numbers) + 1
    return span <= 3 * max(table_rows or 0, distinct)
