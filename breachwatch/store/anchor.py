"""The anchor file: every chain head, appended outside the store.

Someone who can rewrite the store can also recompute its chain. They cannot
quietly rewrite a file kept elsewhere (another disk, write-once storage, a log
shipper), so verify compares the store's chain with this file.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import orjson


@dataclass(frozen=True)
class AnchorEntry:
    seq: int
    batch_id: int
    head: str
    committed_at: str
    late: bool = False


def default_anchor_path(db_path: str | os.PathLike[str]) -> Path:
    """A store's anchor when none is named: next to it. BREACHWATCH_ANCHOR is read by the commands that
    work on the user's store (ingest, serve, verify: their --anchor option), never here, so the scratch
    stores of a drill or the demo can never append their heads to a production anchor."""
    return Path(str(db_path) + ".anchor")


class AnchorFile:
    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)

    def exists(self) -> bool:
        return self.path.exists()

    def append(self, entries: list[AnchorEntry]) -> None:
        """Append heads durably (fsync) before the caller reports success."""
        if not entries:
            return
        data = b"".join(orjson.dumps(e.__dict__) + b"\n" for e in entries)
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)

    def read(self) -> list[AnchorEntry]:
        if not self.path.exists():
            return []
        out = []
        with open(self.path, "rb") as f:
            for n, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    d = orjson.loads(line)
                    out.append(AnchorEntry(int(d["seq"]), int(d["batch_id"]), str(d["head"]),
                                           str(d.get("committed_at", "")), bool(d.get("late", False))))
                except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as e:
                    raise ValueError(f"{self.path}: line {n} is not an anchor entry ({e}). "
                                     "The anchor file itself has been damaged or edited.") from e
        return out

    def last(self) -> AnchorEntry | None:
        """The newest entry, read from the end so opening a long-lived store stays cheap."""
        if not self.path.exists():
            return None
        with open(self.path, "rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            block = min(size, 8192)
            while True:
                f.seek(size - block)
                tail = f.read(block)
                lines = [ln for ln in tail.splitlines() if ln.strip()]
                if len(lines) >= 2 or block == size:
                    break
                block = min(size, block * 4)
        if not lines:
            return None
        d = orjson.loads(lines[-1])
        return AnchorEntry(int(d["seq"]), int(d["batch_id"]), str(d["head"]),
                           str(d.get("committed_at", "")), bool(d.get("late", False)))
