"""Complete plain access-log records from the catalog.

Most services do not log whose data a response carried. The catalog says, per
route template, which fields an endpoint returns and where its subject comes
from (the token's own subject for `/me/...` routes, or a path or query
parameter), so an ordinary gateway line with a user id and a path becomes an
event that says whose data went out and which fields.
"""
from __future__ import annotations

from typing import Any

import orjson

from breachwatch.contract.catalog import Catalog
from breachwatch.contract.event import FIELD_NAMES

_POS = {name: i for i, name in enumerate(FIELD_NAMES)}
_KIND, _EP, _PRINCIPAL = _POS["kind"], _POS["endpoint"], _POS["principal_id"]
_SUBJECTS, _FIELDS, _ATTRS = _POS["subject_ids"], _POS["fields"], _POS["attributes"]


class CatalogEnricher:
    """Fills `subject_ids` and `fields` of access rows from the catalog, in place."""

    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog
        self.uncatalogued = 0
        self._cache: dict[str, Any] = {}

    def apply(self, row: list[Any]) -> None:
        if row[_KIND] != "access" or not row[_EP]:
            return
        if row[_SUBJECTS] is not None and row[_FIELDS] is not None:
            return
        logged = row[_EP]
        hit = self._cache.get(logged)
        if hit is None:
            hit = self.catalog.resolve(logged) or False
            if len(self._cache) < 100_000 and (hit is False or not (hit[1] or hit[2])):
                self._cache[logged] = hit  # concrete paths with ids are not worth caching
        if hit is False:
            self.uncatalogued += 1
            return
        ep, params, query = hit
        if row[_FIELDS] is None and ep.fields:
            row[_FIELDS] = list(ep.fields)
        if row[_SUBJECTS] is None:
            subjects: list[str] | None = None
            if ep.subjects_from == "principal" and row[_PRINCIPAL]:
                subjects = [row[_PRINCIPAL]]
            elif ep.subjects_from == "path" and ep.param in params:
                subjects = [params[ep.param]]
            elif ep.subjects_from == "query" and query.get(ep.param or ""):
                subjects = list(query[ep.param or ""])
            row[_SUBJECTS] = subjects
        if logged != ep.route:
            # Keep the concrete path (it names the record read) and store the template,
            # so counts per endpoint group all ids of one route together.
            attrs = orjson.loads(row[_ATTRS]) if row[_ATTRS] else {}
            attrs.setdefault("path", logged)
            row[_ATTRS] = orjson.dumps(attrs, option=orjson.OPT_SORT_KEYS).decode()
            row[_EP] = ep.route
