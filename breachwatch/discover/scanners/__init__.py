"""Scanners: one per kind of source, all read-only and bounded."""
from __future__ import annotations

from breachwatch.discover.scanners.base import Sample, Source, SourceError, Table, TableError, redact_url

SCHEMES = ("postgresql://", "postgres://", "mysql://", "mariadb://", "sqlite:///")


def open_source(spec: str) -> Source:
    """A scanner for a database URL, a file or a folder; SourceError if it cannot be opened."""
    lowered = spec.lower()
    if lowered.startswith(("postgresql://", "postgres://")):
        from breachwatch.discover.scanners.postgres import PostgresSource
        return PostgresSource(spec)
    if lowered.startswith(("mysql://", "mariadb://")):
        from breachwatch.discover.scanners.mysql import MySQLSource
        return MySQLSource(spec)
    if lowered.startswith("sqlite:"):
        from breachwatch.discover.scanners.sqlite import SQLiteSource
        return SQLiteSource(spec)
    if "://" in spec:
        raise SourceError(f"{redact_url(spec)}: unknown kind of source. Fix: use one of "
                          f"{', '.join(SCHEMES)}, or a file or folder path.")
    from breachwatch.discover.scanners.files import FileSource
    return FileSource(spec)


__all__ = ["open_source", "Sample", "Source", "SourceError", "Table", "TableError", "redact_url"]
