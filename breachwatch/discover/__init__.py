"""Discovery: where personal data lives.

Korean-first recognizers (`recognizers/`) run in bulk over blocks of values
(`engine.py`); a column's sample and its name become findings (`classify.py`);
scanners read databases, files and breachwatch's own event store, read-only
and bounded (`scanners/`, `scan.py`); the results are kept as the data map in
the store (`datamap.py`) and turned into catalog suggestions (`suggest.py`);
`deidentify/` masks, redacts, pseudonymises or tokenises what was found.
"""
from breachwatch.discover.classify import ColumnFinding, classify_column
from breachwatch.discover.engine import Analyzer, Hit

__all__ = ["Analyzer", "ColumnFinding", "Hit", "classify_column"]
