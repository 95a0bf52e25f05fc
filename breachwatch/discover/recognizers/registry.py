"""The recognizer set in use, from the built-ins plus an optional YAML file.

The file can switch built-ins off and add pattern recognizers of its own:

    disable: [kr_driver_licence]
    recognizers:
      - name: member_no
        entity: MEMBER_NUMBER
        field: member_id
        category: personal
        patterns: [{name: member, regex: 'MB-\\d{8}', score: 0.6}]
        context: [회원번호, member]
        checksum: luhn            # one of CHECKSUMS below
        requires_context: false
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Callable

import yaml

from breachwatch.contract.catalog import CATEGORIES
from breachwatch.discover.recognizers import checksums as ck
from breachwatch.discover.recognizers.base import Pattern, Recognizer, digits_only
from breachwatch.discover.recognizers.international import INTERNATIONAL
from breachwatch.discover.recognizers.korean import KOREAN
from breachwatch.discover.recognizers.korean_names import PERSON_NAME_KR

BUILT_IN: tuple[Recognizer, ...] = KOREAN[:-1] + (PERSON_NAME_KR,) + INTERNATIONAL + KOREAN[-1:]

CHECKSUMS: dict[str, Callable[[str], bool]] = {
    "luhn": lambda t: ck.luhn(digits_only(t)),
    "kr_rrn": lambda t: ck.rrn_checksum(digits_only(t)),
    "kr_frn": lambda t: ck.frn_checksum(digits_only(t)),
    "kr_brn": lambda t: ck.brn_checksum(digits_only(t)),
    "iban": lambda t: ck.iban_valid(t.replace(" ", "")),
}


class RecognizerConfigError(ValueError):
    """A recognizer file that cannot be used; the message says which entry and how to fix it."""


def default_recognizers() -> tuple[Recognizer, ...]:
    return BUILT_IN


def load_recognizers(path: str | Path | None = None) -> tuple[Recognizer, ...]:
    """Built-ins, minus those the file disables, plus those it defines."""
    if path is None:
        return BUILT_IN
    p = Path(path)
    try:
        data = yaml.safe_load(p.read_text("utf-8")) or {}
    except FileNotFoundError as e:
        raise RecognizerConfigError(f"{p}: file not found. Fix: pass an existing recognizer file.") from e
    except yaml.YAMLError as e:
        raise RecognizerConfigError(f"{p}: not valid YAML ({e}). Fix: correct the YAML syntax.") from e
    if not isinstance(data, dict):
        raise RecognizerConfigError(f"{p}: must be a mapping with 'disable' and/or 'recognizers'.")
    known = {r.name for r in BUILT_IN}
    disabled = set(data.get("disable") or [])
    unknown = disabled - known
    if unknown:
        raise RecognizerConfigError(f"{p}: 'disable' names unknown recognizers {sorted(unknown)}. "
                                    f"Fix: use names from {sorted(known)}.")
    out = [r for r in BUILT_IN if r.name not in disabled]
    for i, spec in enumerate(data.get("recognizers") or []):
        out.append(_custom(spec, f"{p}: recognizers[{i}]", known | {r.name for r in out}))
    return tuple(out)


def _custom(spec: Any, where: str, taken: set[str]) -> Recognizer:
    if not isinstance(spec, dict):
        raise RecognizerConfigError(f"{where}: must be a mapping. Fix: give name, entity, field, patterns.")
    for key in ("name", "entity", "patterns"):
        if key not in spec:
            raise RecognizerConfigError(f"{where}: missing '{key}'. Fix: add it.")
    if spec["name"] in taken:
        raise RecognizerConfigError(f"{where}: name '{spec['name']}' is already used. Fix: pick another name.")
    category = spec.get("category", "personal")
    if category not in CATEGORIES:
        raise RecognizerConfigError(f"{where}: unknown category '{category}'. Fix: use one of {sorted(CATEGORIES)}.")
    patterns = []
    for j, pat in enumerate(spec["patterns"]):
        try:
            re.compile(pat["regex"])
            patterns.append(Pattern(str(pat.get("name", f"p{j}")), pat["regex"], float(pat.get("score", 0.5))))
        except (KeyError, TypeError, re.error) as e:
            raise RecognizerConfigError(f"{where}.patterns[{j}]: {e}. Fix: give 'regex' (a valid regular "
                                        "expression) and 'score' (0-1).") from e
    checksum = spec.get("checksum")
    if checksum is not None and checksum not in CHECKSUMS:
        raise RecognizerConfigError(f"{where}: unknown checksum '{checksum}'. Fix: use one of {sorted(CHECKSUMS)}.")
    return Recognizer(
        name=str(spec["name"]), entity=str(spec["entity"]), field=str(spec.get("field", spec["name"])),
        category=category, patterns=tuple(patterns), context=tuple(str(w) for w in spec.get("context") or ()),
        checksum=CHECKSUMS.get(checksum) if checksum else None,
        checksum_rejects=bool(spec.get("checksum_rejects", True)),
        requires_context=bool(spec.get("requires_context", False)),
        description=str(spec.get("description", "")),
    )
