"""One audit finding: what is wrong, how bad, the evidence, and the fix."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

SEVERITIES = ("low", "medium", "high", "critical")
ACTIONABLE = frozenset({"high", "critical"})  # `keys audit` exits 1 when any of these is found


@dataclass
class Finding:
    code: str
    severity: str
    key_id: str | None
    title: str
    evidence: list[str]
    fix: str
    data: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        assert self.severity in SEVERITIES, self.severity

    @property
    def rank(self) -> int:
        return SEVERITIES.index(self.severity)

    def as_dict(self) -> dict[str, Any]:
        return {"code": self.code, "severity": self.severity, "key_id": self.key_id, "title": self.title,
                "evidence": self.evidence, "fix": self.fix, "data": self.data}
