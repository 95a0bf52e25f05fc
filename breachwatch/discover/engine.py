"""The analyzer: runs every recognizer over a whole block of values at once.

A block (a column sample, a batch of log lines) is joined into one string,
and the work is shared across recognizers instead of repeated per value:

- one regex pass finds every run of digits and separators; the numeric
  patterns (registration numbers, phones, cards, accounts, IPv4, dates) are
  tried only on those runs;
- one pass of a trie-shaped regex finds every context word of every
  recognizer; context boosts and context-only recognizers (names, accounts,
  birth dates, opaque secrets) look up those positions;
- patterns with a fixed literal (the @ of an email, eyJ of a JWT, AKIA of an
  AWS key) are tried only around occurrences of that literal, found with
  `str.find`;
- the few remaining patterns scan the whole block.

Matches are mapped back to their row by binary search over row offsets; only
candidates pay for Python-level validation.

>>> from breachwatch.discover.engine import Analyzer
>>> [h.entity for h in Analyzer().analyze(["연락처 010-1234-5678", "a@b.co"])]
['PHONE', 'EMAIL']
"""
from __future__ import annotations

import re
from bisect import bisect_left, bisect_right
from dataclasses import dataclass
from typing import Iterable, Iterator, Sequence

from breachwatch.discover.recognizers.base import Pattern, Recognizer
from breachwatch.discover.recognizers.registry import default_recognizers

BEFORE_WINDOW = 40   # characters before a match searched for context words
AFTER_WINDOW = 12    # ... and after it (Korean often puts 님, 고객 after a name)
MAX_SPAN = 220       # longest span a context-bound recognizer reports

# Runs of digits with the separators identifiers are written with. A numeric
# pattern can only match inside one (plus a leading + or parenthesis).
_NUMERIC_RUN = re.compile(r"\d[\d./ ()-]{5,}\d")
_ASCII_LOWER = {c: c + 32 for c in range(65, 91)}


@dataclass(frozen=True, slots=True)
class Hit:
    row: int            # index of the value in the block
    start: int          # span within that value
    end: int
    entity: str
    recognizer: str
    score: float
    text: str
    checked: bool | None   # check digit held (True), failed but tolerated (False), none applies (None)
    context: bool          # a context word or the column name supported it


@dataclass
class _Plan:
    """One recognizer's patterns, split by how the engine finds where to try them."""

    rec: Recognizer
    everything: re.Pattern[str]
    numeric: re.Pattern[str] | None
    numeric_min: int
    anchored: list[tuple[tuple[str, ...], tuple[int, int], re.Pattern[str]]]
    full: re.Pattern[str] | None
    patterns: dict[str, Pattern]


def _alternation(patterns: list[tuple[int, Pattern]], flags: int) -> re.Pattern[str]:
    return re.compile("|".join(f"(?P<p{i}>{p.regex})" for i, p in patterns), flags)


def _min_width(regex: str) -> int:
    try:
        return int(re._parser.parse(regex).getwidth()[0])  # type: ignore[attr-defined]
    except Exception:  # noqa: BLE001 - only an optimisation: 0 means "always try"
        return 0


def _plan(rec: Recognizer) -> _Plan:
    indexed = list(enumerate(rec.patterns))
    numeric = [(i, p) for i, p in indexed if p.numeric]
    full = [(i, p) for i, p in indexed if not p.numeric and not p.anchors]
    anchored: dict[tuple[tuple[str, ...], tuple[int, int]], list[tuple[int, Pattern]]] = {}
    for i, p in indexed:
        if p.anchors and not p.numeric:
            anchored.setdefault((p.anchors, p.window), []).append((i, p))
    return _Plan(
        rec=rec,
        everything=_alternation(indexed, rec.flags),
        numeric=_alternation(numeric, rec.flags) if numeric else None,
        numeric_min=min((_min_width(p.regex) for _, p in numeric), default=0),
        anchored=[(a, w, _alternation(ps, rec.flags)) for (a, w), ps in anchored.items()],
        full=_alternation(full, rec.flags) if full else None,
        patterns={f"p{i}": p for i, p in indexed},
    )


def _trie_regex(words: Iterable[str]) -> str:
    """An alternation shaped as a trie, so the regex engine tests each prefix once."""
    trie: dict = {}
    for w in words:
        node = trie
        for c in w:
            node = node.setdefault(c, {})
        node[""] = {}

    def build(node: dict) -> str:
        ends = "" in node
        alts = [re.escape(c) + build(sub) for c, sub in sorted(node.items()) if c]
        if not alts:
            return ""
        body = alts[0] if len(alts) == 1 and not ends else "(?:" + "|".join(alts) + ")"
        return body + ("?" if ends and body else "")

    return build(trie)


class Analyzer:
    """Find personal data in blocks of values with a fixed set of recognizers."""

    def __init__(self, recognizers: Iterable[Recognizer] | None = None, *, min_score: float = 0.5) -> None:
        self.recognizers = tuple(recognizers if recognizers is not None else default_recognizers())
        self.min_score = min_score
        self._rank = {r.name: i for i, r in enumerate(self.recognizers)}
        self._plans = [_plan(r) for r in self.recognizers]
        # Context words map to the recognizers they support (index i) or count
        # against (index -i-1, for negative context).
        owners: dict[str, set[int]] = {}
        for i, r in enumerate(self.recognizers):
            for w in r.context:
                owners.setdefault(w.lower(), set()).add(i)
            for w in r.negative_context:
                owners.setdefault(w.lower(), set()).add(-i - 1)
        self._context_owners = {w: tuple(sorted(o)) for w, o in owners.items()}
        self._context_rx = re.compile(_trie_regex(owners)) if owners else None
        # Short ASCII context words must stand alone ("dl" is not in "handler").
        self._edge_words = frozenset(w for w in owners if w.isascii() and len(w) <= 4)

    @property
    def entities(self) -> frozenset[str]:
        return frozenset(r.entity for r in self.recognizers)

    def recognizer(self, name: str) -> Recognizer:
        return self.recognizers[self._rank[name]]

    def analyze(self, values: Sequence[object], *, context_entities: Iterable[str] = (),
                min_score: float | None = None, entities: Iterable[str] | None = None) -> list[Hit]:
        """All hits in `values`, at most one per span (overlaps keep the best score).

        `context_entities` are entities for which every value is in context,
        e.g. because the column is named `cust_hp_no`.
        """
        texts = ["" if v is None else v if isinstance(v, str) else str(v) for v in values]
        if not texts:
            return []
        block = _Block(texts)
        threshold = self.min_score if min_score is None else min_score
        in_context = frozenset(context_entities)
        wanted = None if entities is None else frozenset(entities)
        contexts = self._context_positions(block.joined)
        hits: list[Hit] = []
        for i, plan in enumerate(self._plans):
            rec = plan.rec
            if wanted is not None and rec.entity not in wanted:
                continue
            block_context = rec.entity in in_context
            ctx = contexts.get(i, ([], []))
            negative = contexts.get(-i - 1, ([], []))[1]
            if rec.requires_context and not block_context:
                if not ctx[0]:
                    continue
                matches = _in_windows(plan.everything, block.joined, _context_windows(ctx))
            else:
                matches = self._candidates(plan, block)
            hits.extend(self._score(plan, matches, block, ctx, negative, block_context, threshold))
        return _resolve_overlaps(hits, self._rank)

    def analyze_text(self, text: str, **kwargs) -> list[Hit]:  # type: ignore[no-untyped-def]
        return self.analyze([text], **kwargs)

    def _context_positions(self, joined: str) -> dict[int, tuple[list[int], list[int]]]:
        """Recognizer index -> (starts, ends) of its context words, each list sorted."""
        if self._context_rx is None:
            return {}
        lowered = joined.lower()
        if len(lowered) != len(joined):  # a few non-ASCII letters grow when lowered
            lowered = joined.translate(_ASCII_LOWER)
        out: dict[int, tuple[list[int], list[int]]] = {}
        edge = self._edge_words
        n = len(lowered)
        for m in self._context_rx.finditer(lowered):
            word = m.group()
            s, e = m.span()
            if word in edge and ((s > 0 and lowered[s - 1].isascii() and lowered[s - 1].isalpha())
                                 or (e < n and lowered[e].isascii() and lowered[e].isalpha())):
                continue
            for i in self._context_owners[word]:
                starts, ends = out.setdefault(i, ([], []))
                starts.append(s)
                ends.append(e)
        return out

    def _candidates(self, plan: _Plan, block: _Block) -> Iterator[re.Match[str]]:
        joined = block.joined
        if plan.numeric is not None:
            rx, need = plan.numeric, plan.numeric_min
            for ts, te in block.numeric_runs():
                if te - ts + 1 < need:
                    continue
                for m in rx.finditer(joined, ts - 1 if ts and joined[ts - 1] in "+(" else ts,
                                     min(te + 8, len(joined))):
                    if m.start() >= te:
                        break
                    yield m
        for anchors, (before, after), rx in plan.anchored:
            yield from _in_windows(rx, joined, block.anchor_windows(anchors, before, after))
        if plan.full is not None:
            yield from plan.full.finditer(joined)

    def _score(self, plan: _Plan, matches: Iterable[re.Match[str]], block: _Block,
               ctx: tuple[list[int], list[int]], negative_ends: list[int], block_context: bool,
               threshold: float) -> list[Hit]:
        rec = plan.rec
        out: list[Hit] = []
        seen: set[int] = set()
        starts = block.starts
        ctx_starts, ctx_ends = ctx
        for m in matches:
            s, e = m.span()
            if s == e or s in seen:
                continue
            seen.add(s)
            text = m.group()
            score = plan.patterns[m.lastgroup].score  # type: ignore[index]
            if rec.validate is not None:
                delta = rec.validate(text)
                if delta is None:
                    continue
                score += delta
            checked = None
            if rec.checksum is not None:
                checked = rec.checksum(text)
                if checked:
                    score += rec.checksum_boost
                elif checked is False and rec.checksum_rejects:
                    continue
            row = bisect_right(starts, s) - 1
            context = block_context
            if not context and ctx_starts:
                row_start, row_end = block.row_span(row)
                # a context word ending within the window before the match, or starting just after it
                i = bisect_left(ctx_ends, max(row_start, s - BEFORE_WINDOW))
                context = i < len(ctx_ends) and ctx_ends[i] <= s
                if not context:
                    j = bisect_left(ctx_starts, e)
                    context = j < len(ctx_starts) and ctx_starts[j] < min(row_end, e + AFTER_WINDOW)
            if negative_ends and _labelled_otherwise(negative_ends, ctx_ends, s, block.starts[row]):
                score -= rec.negative_penalty
                context = block_context
            if context:
                score += rec.context_boost
            elif rec.requires_context:
                continue
            score = min(score, 1.0)
            if score < threshold:
                continue
            base = starts[row]
            out.append(Hit(row, s - base, e - base, rec.entity, rec.name, round(score, 3), text, checked, context))
        return out


class _Block:
    """The joined text of a block and the positions computed once and shared by all recognizers."""

    def __init__(self, texts: list[str]) -> None:
        self.joined = "\n".join(t.replace("\n", " ") if "\n" in t else t for t in texts)
        self.starts = []
        pos = 0
        for t in texts:
            self.starts.append(pos)
            pos += len(t) + 1
        self._runs: list[tuple[int, int]] | None = None
        self._anchors: dict[str, list[int]] = {}

    def row_span(self, row: int) -> tuple[int, int]:
        start = self.starts[row]
        end = self.starts[row + 1] - 1 if row + 1 < len(self.starts) else len(self.joined)
        return start, end

    def numeric_runs(self) -> list[tuple[int, int]]:
        if self._runs is None:
            self._runs = [m.span() for m in _NUMERIC_RUN.finditer(self.joined)]
        return self._runs

    def anchor_windows(self, anchors: tuple[str, ...], before: int, after: int) -> list[tuple[int, int]]:
        points: list[int] = []
        for a in anchors:
            found = self._anchors.get(a)
            if found is None:
                found = []
                i = self.joined.find(a)
                while i >= 0:
                    found.append(i)
                    i = self.joined.find(a, i + 1)
                self._anchors[a] = found
            points.extend(found)
        if not points:
            return []
        points.sort()
        return _merge((p - before, p + after) for p in points)


def _labelled_otherwise(negative_ends: list[int], ctx_ends: list[int], s: int, row_start: int) -> bool:
    """The nearest label before the match, within the window, is a negative one."""
    i = bisect_right(negative_ends, s) - 1
    if i < 0 or negative_ends[i] < max(row_start, s - BEFORE_WINDOW):
        return False
    j = bisect_right(ctx_ends, s) - 1
    return j < 0 or ctx_ends[j] < negative_ends[i]


def _line_end(joined: str, pos: int) -> int:
    end = joined.find("\n", pos)
    return len(joined) if end < 0 else end


def _merge(spans: Iterable[tuple[int, int]]) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    for lo, hi in spans:
        lo = max(lo, 0)
        if out and lo <= out[-1][1]:
            if hi > out[-1][1]:
                out[-1] = (out[-1][0], hi)
        else:
            out.append((lo, hi))
    return out


def _context_windows(ctx: tuple[list[int], list[int]]) -> list[tuple[int, int]]:
    """Where a context-bound recognizer may match: shortly before or after each context word."""
    return _merge((s - AFTER_WINDOW - MAX_SPAN // 4, e + BEFORE_WINDOW) for s, e in zip(*ctx))


def _in_windows(rx: re.Pattern[str], joined: str, windows: list[tuple[int, int]]) -> Iterator[re.Match[str]]:
    """Matches of `rx` starting inside the windows.

    A match may run past its window's end (to the end of the line, within
    MAX_SPAN), because `endpos` acts as the end of the text for lookaheads and
    would otherwise cut it short; lookbehinds still see the characters before
    a window, so no match starts inside a longer token.
    """
    for lo, hi in windows:
        stop = min(_line_end(joined, hi), hi + MAX_SPAN)
        for m in rx.finditer(joined, lo, stop):
            if m.start() >= hi:
                break
            yield m


def _resolve_overlaps(hits: list[Hit], rank: dict[str, int]) -> list[Hit]:
    """Keep, among overlapping spans in one row, the highest score (ties: longer, then earlier recognizer)."""
    if len(hits) < 2:
        return hits
    hits.sort(key=lambda h: (h.row, h.start, -h.score))
    kept: list[Hit] = []
    for h in hits:
        if kept and kept[-1].row == h.row and h.start < kept[-1].end:
            cur = kept[-1]
            if (h.score, h.end - h.start, -rank[h.recognizer]) > (cur.score, cur.end - cur.start,
                                                                  -rank[cur.recognizer]):
                kept[-1] = h
            continue
        kept.append(h)
    return kept
