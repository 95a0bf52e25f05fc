"""Ground truth, computed from the events actually emitted.

For every scenario: when its malicious events began and ended, their ids, the
entities they involved (principals, tokens, keys, addresses, networks,
fingerprints, user agents) and every exposed subject with its fields. Exposure
is derived from each malicious event's own `subject_ids`, `fields` and
`subject_fields` (which overrides `fields` for the subjects it names), exactly
as a scope computation over the same events would, so truth and events cannot
disagree.
"""
from __future__ import annotations

from collections import Counter
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from breachwatch.simulate import frames
from breachwatch.simulate.timebase import rfc3339

ENTITY_COLUMNS = {"principals": "principal_id", "tokens": "token_id", "keys": "key_id", "ips": "src_ip",
                  "asns": "src_asn", "countries": "src_country", "fingerprints": "client_fingerprint",
                  "user_agents": "user_agent"}


def value_counts(col: pa.ChunkedArray | pa.Array) -> dict[Any, int]:
    arr = col.combine_chunks() if isinstance(col, pa.ChunkedArray) else col
    vc = pc.value_counts(arr.drop_null())
    return dict(zip(vc.field("values").to_pylist(), vc.field("counts").to_pylist()))


_TAB = pa.scalar("\t", pa.string())
_ENTRIES = pa.list_(pa.struct([("key", pa.string()), ("value", pa.list_(pa.string()))]))


def _row_key(rows: pa.Array, subjects: pa.Array) -> pa.Array:
    return pc.binary_join_element_wise(rows.cast(pa.string()), subjects, _TAB)


def subject_sort_key(s: str) -> tuple:
    """Members by number, then recipients r-N by number, then anything else."""
    if s.isdigit():
        return (0, int(s), s)
    if s.startswith("r-") and s[2:].isdigit():
        return (1, int(s[2:]), s)
    return (2, 0, s)


class ScenarioTruth:
    def __init__(self, name: str) -> None:
        self.name = name
        self.ids: list[pa.Array] = []
        self.first: int | None = None
        self.last: int | None = None
        self.kinds: Counter[str] = Counter()
        self.statuses: Counter[int] = Counter()
        self.entities: dict[str, set[str]] = {k: set() for k in ENTITY_COLUMNS}
        self._pairs: list[pa.Array] = []
        self._pending = 0

    def observe(self, t: pa.Table) -> None:
        times = frames.time_us(t)
        self.first = int(times[0]) if self.first is None else self.first
        self.last = int(times[-1])
        self.ids.append(t.column("event_id").combine_chunks())
        self.kinds.update(value_counts(t.column("kind")))
        self.statuses.update(value_counts(t.column("status")))
        for key, col in ENTITY_COLUMNS.items():
            self.entities[key].update(pc.unique(t.column(col).combine_chunks().drop_null()).to_pylist())
        self._exposure(t)

    def _exposure(self, t: pa.Table) -> None:
        """Add this batch's (subject, field) pairs, as 'subject<TAB>field' strings, deduplicated."""
        subjects = t.column("subject_ids").combine_chunks()
        if pc.sum(pc.list_value_length(subjects)).as_py() in (None, 0):
            return
        s_vals = pc.list_flatten(subjects)
        s_row = pc.list_parent_indices(subjects)
        sfm = t.column("subject_fields").combine_chunks().cast(_ENTRIES)
        entries = pc.list_flatten(sfm)
        m_row = pc.list_parent_indices(sfm)
        m_keys, m_items = entries.field("key"), entries.field("value")
        # A subject named in subject_fields gets those fields; every other listed subject gets `fields`.
        named = pc.is_in(_row_key(s_row, s_vals), value_set=_row_key(m_row, m_keys))
        plain = pc.invert(named)
        p_subj, p_row = s_vals.filter(plain), s_row.filter(plain)
        p_fields = t.column("fields").combine_chunks().take(p_row)
        parts = []
        for subj, lists in ((p_subj, p_fields), (m_keys, m_items)):
            flat = pc.list_flatten(lists)
            if len(flat):
                owner = subj.take(pc.list_parent_indices(lists))
                parts.append(pc.unique(pc.binary_join_element_wise(owner, flat, _TAB)))
        self._pairs.extend(parts)
        self._pending += sum(len(p) for p in parts)
        if self._pending > 2_000_000:
            self._pairs = [pc.unique(pa.concat_arrays(self._pairs))]
            self._pending = len(self._pairs[0])

    def _exposed(self) -> dict[str, list[str]]:
        if not self._pairs:
            return {}
        pairs = pc.unique(pa.concat_arrays(self._pairs))
        split = pc.split_pattern(pairs, "\t", max_splits=1)
        out: dict[str, list[str]] = {}
        for s, f in zip(pc.list_element(split, 0).to_pylist(), pc.list_element(split, 1).to_pylist()):
            out.setdefault(s, []).append(f)
        return {s: sorted(out[s]) for s in sorted(out, key=subject_sort_key)}

    def result(self) -> dict[str, Any]:
        exposed = self._exposed()
        members = sum(1 for s in exposed if s.isdigit())
        ids = pa.concat_arrays(self.ids).to_pylist() if self.ids else []
        return {
            "start": rfc3339(self.first) if self.first is not None else None,
            "end": rfc3339(self.last) if self.last is not None else None,
            "malicious_events": len(ids),
            "events_by_kind": dict(sorted(self.kinds.items())),
            "events_by_status": {str(k): v for k, v in sorted(self.statuses.items())},
            "entities": {k: sorted(v, key=subject_sort_key if k == "principals" else None)
                         for k, v in self.entities.items()},
            "subjects_exposed": len(exposed),
            "members_exposed": members,
            "non_members_exposed": len(exposed) - members,
            "pairs_exposed": sum(len(v) for v in exposed.values()),
            "fields_exposed": sorted(set().union(*exposed.values())) if exposed else [],
            "malicious_event_ids": ids,
            "exposed": exposed,
        }


class TruthRecorder:
    """Watches emitted batches (internal schema, with labels) and builds truth.json."""

    def __init__(self, labels: dict[int, str]) -> None:
        self.scenarios = {label: ScenarioTruth(name) for label, name in labels.items()}
        self.events = 0
        self.kinds: Counter[str] = Counter()
        self.first: int | None = None
        self.last: int | None = None

    def observe(self, table: pa.Table) -> None:
        if table.num_rows == 0:
            return
        self.events += table.num_rows
        times = frames.time_us(table)
        self.first = int(times[0]) if self.first is None else self.first
        self.last = int(times[-1])
        self.kinds.update(value_counts(table.column("kind")))
        labels = table.column(frames.LABEL).combine_chunks().to_numpy()
        for label in np.unique(labels[labels > 0]):
            self.scenarios[int(label)].observe(table.filter(pa.array(labels == label)))
