"""What every detector sees during one run: the segment of new events, derived
tables built once and shared (access events, subjects read, entity rows,
source novelty), the feeds' watermarks, the counters and candidates so far.

Derived tables are temp tables named with a leading underscore, so a detector
reads like a sequence of relational steps over `_seg`, `_acc`, `_subj`,
`_ent`, `_novelty` and the stored state tables. Each is built on first use
and only if the segment has rows for it, so a quiet minute costs little.
"""
from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import duckdb

from breachwatch.detect.alert import AlertCandidate
from breachwatch.detect.config import ENTITY_TYPES, DetectConfig, DetectConfigError
from breachwatch.detect.counting import Counter
from breachwatch.detect.entities import (VALUE_COLUMNS, combo_sql, entity_rows_sql, ptype_sql, value_by_type_sql,
                                         value_sql)
from breachwatch.detect.feeds import Feeds

# Columns of the events table a detector may use; `seq` orders events within the segment, `cid` keys
# each event's combo of sources (see RunContext._build_ent).
SEGMENT_COLUMNS = ("event_id", "time", "kind", "principal_id", "principal_type", "session_id", "token_id", "key_id",
                   "token_issued_at", "token_expires_at", "owner_id", "src_ip", "src_asn", "src_country",
                   "user_agent", "client_fingerprint", "service", "endpoint", "action", "reason_ref", "status",
                   "bytes_out", "subject_ids", "fields", "subject_fields", "record_count", "status_value",
                   "attributes")

# Per-event numbers carried on every entity row of `_ent`: what volume_anomaly and ml_outlier sum per
# entity and hour or step. `endpoint` by its hash (NULL stays NULL), only ever counted distinct.
ENT_VOLUMES = {"bytes": "coalesce(bytes_out, 0)", "nsubj": "coalesce(len(subject_ids), 0)",
               "err": "coalesce(status, 200) >= 400", "ep": "CASE WHEN endpoint IS NOT NULL THEN hash(endpoint) END"}

_ALLOW_COLUMN = {"principals": "principal_id", "ips": "src_ip", "asns": "src_asn", "countries": "src_country",
                 "fingerprints": "client_fingerprint", "user_agents": "user_agent", "keys": "key_id"}


def allowlist_sql(allow: dict[str, list[str]], alias: str = "") -> str:
    """A predicate true for events an allowlist exempts (prefixes match IPs by their start)."""
    p = f"{alias}." if alias else ""
    terms = []
    for key, values in allow.items():
        if not values:
            continue
        if key == "prefixes":
            # IPv4 ranges by address arithmetic (10.0.0.0/8 holds 10.9.0.7; 192.168.1.0/24 does not hold
            # 192.168.10.5, which matching the text's start got wrong); IPv6 and bare stems by their start.
            v4 = [v for v in values if "/" in v and ":" not in v]
            if v4:
                terms.append(networks_sql(v4, f"{p}src_ip", "allowlist.prefixes"))
            for v in values:
                if v not in v4:
                    stem = v.split("/")[0].rstrip("0").rstrip(".:") if "/" in v else v
                    terms.append(f"starts_with({p}src_ip, {_lit(stem)})")
            continue
        vals = ", ".join(_lit(v) for v in values)
        terms.append(f"{p}{_ALLOW_COLUMN[key]} IN ({vals})")
    return "(" + " OR ".join(terms) + ")" if terms else "FALSE"


def networks_sql(cidrs: list[str], column: str, key: str) -> str:
    """A predicate true when the address in `column` lies in one of `cidrs` (IPv4, or IPv6 up to /16).

    Plain arithmetic on the address's text, so it needs no DuckDB extension.
    """
    v4 = " + ".join(f"try_cast(split_part({{c}}, '.', {i + 1}) AS BIGINT) * {256 ** (3 - i)}" for i in range(4))
    v6 = "try_cast('0x' || split_part(lower({c}), ':', 1) AS BIGINT)"
    terms = []
    for text in cidrs:
        try:
            net = ipaddress.ip_network(text, strict=False)
        except ValueError as e:
            raise DetectConfigError(f"detectors.{key}: '{text}' is not an address range ({e}). "
                                    "Fix: write ranges like 10.0.0.0/8 or fc00::/7.") from None
        lo, hi = int(net.network_address), int(net.broadcast_address)
        if net.version == 4:
            terms.append(f"(NOT contains({column}, ':') AND ({v4.format(c=column)}) BETWEEN {lo} AND {hi})")
        elif net.prefixlen <= 16:
            terms.append(f"(contains({column}, ':') AND {v6.format(c=column)} BETWEEN {lo >> 112} AND {hi >> 112})")
        else:
            raise DetectConfigError(f"detectors.{key}: '{text}' is an IPv6 range longer than /16, which is not "
                                    "supported. Fix: use a /16 or wider range, e.g. fc00::/7.")
    return f"coalesce({' OR '.join(terms)}, FALSE)" if terms else "FALSE"  # no address, or none parsed: outside


def _lit(v: str) -> str:
    return "'" + str(v).replace("'", "''") + "'"


@dataclass
class RunContext:
    con: duckdb.DuckDBPyConnection
    cfg: DetectConfig
    feeds: Feeds
    learn_only: bool
    baseline_at: datetime | None
    issuance_since: datetime | None
    # Following (`pace="auto"`): work that can wait for a later pass without changing a decision
    # (scoring a checkpoint whose model is still being fitted) is left to it rather than waited for.
    defer: bool = False
    candidates: list[AlertCandidate] = field(default_factory=list)
    counters: list[Counter] = field(default_factory=list)
    stats: dict[str, Any] = field(default_factory=dict)
    kinds: dict[str, int] = field(default_factory=dict)
    kinds_span: dict[str, tuple] = field(default_factory=dict)
    _built: set[str] = field(default_factory=set)

    # -- the segment and what is derived from it -------------------------------------------

    def set_segment(self, source: str, where: str, params: list[Any], into: str = "_seg") -> int:
        """`into` = the events of `source` matching `where`, numbered by `seq`; `_seg` becomes the segment."""
        cols = ", ".join(f"e.{c}" for c in SEGMENT_COLUMNS)
        con = self.con
        # Number the events by sorting only (time, event_id, rowid) and join the wide rows back by
        # rowid: sorting the wide rows themselves (lists, maps, strings) costs three times as much.
        # Detectors order by `seq` explicitly; the table's physical order carries no meaning.
        # `cid`, each event's combo of sources (see _build_ent), is worked out here once for every use.
        self._drop_other(into, "VIEW")
        con.execute(f"""CREATE OR REPLACE TEMP TABLE {into} AS
            WITH o AS (SELECT rowid AS rid, row_number() OVER (ORDER BY time, event_id) AS seq
                       FROM {source} WHERE {where})
            SELECT o.seq, {cols}, {combo_sql('e')} AS cid FROM {source} e JOIN o ON e.rowid = o.rid""", params)
        return self._segment_ready() if into == "_seg" else 0

    def keep_as_pass(self) -> None:
        """Keep the current segment, whole, as `_pass`: later segments are cut from it by event time."""
        self.con.execute("DROP TABLE IF EXISTS _pass")
        self.con.execute("ALTER TABLE _seg RENAME TO _pass")

    def cut_segment(self, lo: datetime, hi: datetime) -> int:
        """`_seg` = the events of `_pass` with lo <= time < hi, keeping the pass's `seq`.

        Numbered once per pass rather than per segment: within a segment `seq` still orders the
        events by (time, event_id), which is all a detector asks of it. A view, not a copy: each
        derived table reads only the columns it needs, and the time filter skips most row groups.
        A view takes no parameters, so the bounds go in as literals.
        """
        self._drop_other("_seg", "TABLE")
        a, b = (f"TIMESTAMP '{t.isoformat(sep=' ')}'" for t in (lo, hi))
        self.con.execute(f"CREATE OR REPLACE TEMP VIEW _seg AS SELECT * FROM _pass WHERE time >= {a} AND time < {b}")
        return self._segment_ready()

    def _drop_other(self, name: str, kind: str) -> None:
        """Drop temp object `name` if it is of `kind` (TABLE or VIEW), so the other kind can replace it."""
        catalog = "duckdb_views() WHERE view_name" if kind == "VIEW" else "duckdb_tables() WHERE table_name"
        if self.con.execute(f"SELECT count(*) FROM {catalog} = ? AND temporary", [name]).fetchall()[0][0]:
            self.con.execute(f"DROP {kind} {name}")

    def reuse_segment(self) -> int:
        """The same events again, for another tier: what was derived from them is built afresh."""
        return self._segment_ready(recount=False)

    def _segment_ready(self, recount: bool = True) -> int:
        if recount:
            self.kinds_span = {k: (lo, hi, n) for k, lo, hi, n in self.con.execute(
                "SELECT kind, min(time), max(time), count(*) FROM _seg GROUP BY kind").fetchall()}
            self.kinds = {k: v[2] for k, v in self.kinds_span.items()}
        self._built = set()
        self.counters = []
        return sum(self.kinds.values())

    @property
    def accesses(self) -> int:
        return self.kinds.get("access", 0)

    def need(self, name: str) -> str:
        """Build a shared derived table once per segment and return its name."""
        if name == "_acc_b" and not any(self.cfg.global_allowlist.values()):
            return self.need("_acc")  # nothing to exempt: the behavioural view is the access table itself
        if name in self._built:
            return name
        getattr(self, f"_build{name}")()
        self._built.add(name)
        return name

    def _build_acc(self) -> None:
        # Reads and writes of personal data. Gateway refusals (token_denied) exposed nothing.
        # A view: access events are most of the segment, copying them costs more than filtering again.
        self.con.execute("CREATE OR REPLACE TEMP VIEW _acc AS SELECT * FROM _seg WHERE kind = 'access'")

    def _build_acc_b(self) -> None:
        # What behavioural detectors judge: access events minus the catalog's global allowlist.
        self.need("_acc")
        self.con.execute(f"CREATE OR REPLACE TEMP TABLE _acc_b AS SELECT * FROM _acc "
                         f"WHERE NOT {allowlist_sql(self.cfg.global_allowlist)}")

    def _build_subj(self) -> None:
        self.need("_acc")
        # `cid`: the event's combo of sources, to meet its entities in `_cmap` (see _build_ent).
        self.con.execute("""CREATE OR REPLACE TEMP TABLE _subj AS
            SELECT seq, event_id, time, principal_id, principal_type, status, token_id, src_ip, reason_ref,
                   unnest(subject_ids) AS subject, generate_subscripts(subject_ids, 1) AS pos, cid
            FROM _acc WHERE subject_ids IS NOT NULL AND len(subject_ids) > 0""")

    def used_entity_types(self) -> list[str]:
        used = {"principal"}
        for name in ("enumeration", "novel_source", "volume_anomaly", "ml_outlier"):
            d = self.cfg.detectors[name]
            if d["enabled"]:
                used |= set(d.get("entities", [])) | set(d.get("aggregate_by", [])) | set(d.get("dimensions", []))
        return [e for e in ENTITY_TYPES if e in used]

    def _build_ent(self) -> None:
        # Entity rows of behavioural access events, for every entity type some detector counts: keys
        # (seq, time, etype, ek) and the few numbers the per-entity volumes add up (ENT_VOLUMES).
        #
        # They are not materialised. Events share their sources (a session reads page after page from
        # the same principal, key, address and client): a million accesses hold about 85,000 distinct
        # "combos" (principal type and entity values; `cid` is their 64-bit hash, as `ek` is an
        # entity's). So each event keeps only its `cid` (`_entv`), each combo is expanded into its entity
        # keys once (`_cmap`: cid, etype, ek), and `_ent` is a view joining the two. What sums over
        # every entity row (entity_steps, hourly volumes, new entities) adds up per combo first
        # (`combo_sums`) and expands those sums, a fifth of the rows per 5-minute step; what picks
        # few events (the people read, the novel arrivals) carries their `cid` and meets `_cmap`
        # directly, so only those few are expanded (through the view, DuckDB may expand every event
        # first); what picks an entity's events filters the view by `ek`.
        acc = self.need("_acc_b")
        etypes = self.used_entity_types()
        con = self.con
        volumes = ", ".join(f"{expr} AS {name}" for name, expr in ENT_VOLUMES.items())
        con.execute(f"CREATE OR REPLACE TEMP TABLE _entv AS SELECT seq, time, cid, {volumes} FROM {acc}")
        values = ", ".join(f"any_value({c}) AS {c}" for c in VALUE_COLUMNS)
        con.execute(f"CREATE OR REPLACE TEMP TABLE _combo AS SELECT cid, {values} FROM {acc} GROUP BY cid")
        con.execute(f"CREATE OR REPLACE TEMP TABLE _cmap AS {entity_rows_sql('_combo', etypes, 'cid', names=False)}")
        con.execute(f"""CREATE OR REPLACE TEMP VIEW _ent AS
            SELECT v.seq, v.time, {', '.join(f'v.{name}' for name in ENT_VOLUMES)}, m.etype, m.ek
            FROM _entv v JOIN _cmap m ON m.cid = v.cid""")
        # New entities, named from the combo of their first event in the segment.
        con.execute(f"""INSERT INTO entity_registry
            SELECT n.ek, n.etype, {ptype_sql('a')}, {value_by_type_sql(etypes, 'n.etype', 'a')}, n.first_seen
            FROM (SELECT m.ek, any_value(m.etype) AS etype, arg_min(m.cid, f.seq) AS cid, min(f.time) AS first_seen
                  FROM _cmap m JOIN (SELECT cid, min(seq) AS seq, min(time) AS time FROM _entv GROUP BY cid) f
                    ON f.cid = m.cid
                  GROUP BY m.ek) n
            JOIN _combo a ON a.cid = n.cid
            WHERE NOT EXISTS (SELECT 1 FROM entity_registry r WHERE r.ek = n.ek)""")

    def combo_sums(self, bucket: str, sums: dict[str, tuple[str, str]], etypes: str, joins: str = "",
                   where: str = "TRUE") -> str:
        """A query of per-entity sums by time bucket over `_ent`, added up per combo first.

        `bucket` is an expression of the event's `v.time`; `sums` maps each output column to (its
        aggregate over the events of one combo and bucket, how those combine across combos), e.g.
        "requests": ("count(*)", "sum"). `joins` and `where` may bring in and filter on other tables
        keyed by `v.seq`; `etypes` is a SQL list of the entity types to keep. Output: ek, bucket,
        then `sums` in order."""
        inner = ", ".join(f"{agg} AS {name}" for name, (agg, _) in sums.items())
        outer = ", ".join(f"{comb}(p.{name}) AS {name}" for name, (_, comb) in sums.items())
        return f"""SELECT m.ek, p.bucket, {outer}
            FROM (SELECT v.cid, {bucket} AS bucket, {inner} FROM _entv v {joins} WHERE {where}
                  GROUP BY v.cid, bucket) p
            JOIN _cmap m ON m.cid = p.cid
            WHERE m.etype IN ({etypes})
            GROUP BY m.ek, p.bucket"""

    def register_entities(self, table: str) -> None:
        self.con.execute(f"""INSERT INTO entity_registry
            SELECT ek, any_value(etype), any_value(ptype), any_value(entity), min(time) FROM {table} e
            WHERE NOT EXISTS (SELECT 1 FROM entity_registry r WHERE r.ek = e.ek) GROUP BY ek""")

    def _build_novelty(self) -> None:
        """Per access event: has its principal been seen before, and how many of its source
        dimensions (country, ASN, fingerprint, ...) are new for that principal.

        First occurrences are decided in event order within the segment, so the answer for an
        event never depends on events after it.
        """
        acc = self.need("_acc_b")
        dims = self.cfg.detectors["novel_source"]["dimensions"]
        union = " UNION ALL ".join(
            f"SELECT seq, principal_id, '{d}' AS dim, {value_sql(d)} AS value FROM {acc} "
            f"WHERE principal_id IS NOT NULL AND {value_sql(d)} IS NOT NULL" for d in dims)
        con = self.con
        # One row per (principal, dimension, value): its first event in the segment, and whether the
        # pair is new. Later events of a pair are never new, and nothing reads them.
        con.execute(f"""CREATE OR REPLACE TEMP TABLE _srcpairs AS
            SELECT *, NOT EXISTS (SELECT 1 FROM seen_src s WHERE s.h = p.h) AS is_new
            FROM (SELECT min(seq) AS seq, principal_id, dim, value, hash(principal_id, dim, value) AS h
                  FROM ({union}) GROUP BY principal_id, dim, value) p""")
        con.execute(f"""CREATE OR REPLACE TEMP TABLE _novelty AS
            WITH firsts AS (
                SELECT principal_id, min(seq) AS first_seq, hash(principal_id) AS h FROM {acc}
                WHERE principal_id IS NOT NULL GROUP BY principal_id),
            fresh AS (SELECT * FROM firsts f WHERE NOT EXISTS (SELECT 1 FROM seen_ph s WHERE s.h = f.h)),
            dims AS (SELECT seq, count(*) AS novel_dims FROM _srcpairs WHERE is_new GROUP BY seq)
            SELECT a.seq, a.principal_id,
                   (a.principal_id IS NOT NULL AND (n.first_seq IS NULL OR a.seq > n.first_seq)) AS has_history,
                   coalesce(d.novel_dims, 0) AS novel_dims,
                   (n.first_seq IS NOT NULL AND a.seq = n.first_seq) AS principal_new
            FROM {acc} a LEFT JOIN fresh n ON n.principal_id = a.principal_id
            LEFT JOIN dims d ON d.seq = a.seq""")

    def commit_novelty(self) -> int:
        """Remember the principals and sources seen in this segment (after every detector used them).

        Returns how many principals were seen for the first time.
        """
        if "_novelty" not in self._built:
            return 0
        con = self.con
        con.execute("INSERT INTO seen_src SELECT h FROM _srcpairs WHERE is_new")
        con.execute("INSERT INTO seen_ph SELECT hash(principal_id) FROM _novelty WHERE principal_new")
        con.execute("""INSERT INTO source_popularity
            SELECT dim, value, count(*) FROM _srcpairs WHERE is_new GROUP BY dim, value""")
        return con.execute("SELECT count(*) FROM _novelty WHERE principal_new").fetchall()[0][0]

    # -- helpers --------------------------------------------------------------------------

    def add(self, cand: AlertCandidate) -> None:
        self.candidates.append(cand)

    def count(self, *pairs: tuple[Counter, str], with_sql: str = "") -> None:
        """Add points (ek, time, seq, w) for counters; the engine counts them after all detectors ran.

        Each pair is (counter, a SELECT of its points); all go in one statement, sharing `with_sql` CTEs.
        """
        for counter, _ in pairs:
            if counter.metric not in {c.metric for c in self.counters}:
                self.counters.append(counter)
        union = " UNION ALL ".join(f"SELECT '{c.metric}', ek, time, seq, w FROM ({sql})" for c, sql in pairs)
        self.con.execute(f"INSERT INTO _pts {with_sql} {union}")
