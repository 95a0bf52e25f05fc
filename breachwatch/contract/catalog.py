"""Contract 2: the catalog (`breachwatch.yaml`).

The catalog tells breachwatch what an endpoint returns and whose data it is,
so that a plain gateway log line (a user id and a path) becomes a complete
event with `subject_ids` and `fields`. It also maps fields to legal
categories, lists canary subjects, allowlists and detector settings.
Validation errors name the file, the line and the key, and say how to fix it.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import yaml

CATEGORIES = frozenset({"personal", "unique_identifier", "sensitive", "credential", "none"})
AUDIENCES = frozenset({"customer", "back_office", "partner", "service", "public"})
SUBJECT_SOURCES = frozenset({"principal", "path", "query", "none"})
TOP_KEYS = frozenset({"version", "company", "fields", "endpoints", "canaries", "allowlists",
                      "detectors", "policy", "notify"})
DEFAULT_CATALOG = "default_catalog.yaml"


class CatalogError(ValueError):
    """A catalog that cannot be used; the message names file, line, key and fix."""


@dataclass(frozen=True)
class FieldInfo:
    name: str
    category: str
    label: str
    label_ko: str
    gdpr_special: bool = False


@dataclass
class Endpoint:
    route: str
    method: str | None
    path: str
    audience: str
    fields: tuple[str, ...]
    subjects_from: str
    param: str | None
    address_book: bool
    regex: re.Pattern[str] = field(repr=False, default=None)  # type: ignore[assignment]

    def match(self, method: str | None, path: str) -> dict[str, str] | None:
        if self.method and method and method.upper() != self.method:
            return None
        m = self.regex.fullmatch(path)
        return m.groupdict() if m else None


@dataclass
class Catalog:
    source: str
    company: dict[str, Any]
    fields: dict[str, FieldInfo]
    endpoints: list[Endpoint]
    canaries: frozenset[str]
    allowlists: dict[str, list[str]]
    detectors: dict[str, Any]
    policy: dict[str, Any]
    notify: dict[str, Any]
    _by_route: dict[str, Endpoint] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        self._by_route = {e.route: e for e in self.endpoints}

    def resolve(self, endpoint: str) -> tuple[Endpoint, dict[str, str], dict[str, list[str]]] | None:
        """Match a logged endpoint ("GET /x/1?y=2" or a route template) to the catalog.

        Returns the catalog entry, the path parameters and the query parameters.
        """
        if endpoint in self._by_route:
            return self._by_route[endpoint], {}, {}
        method, _, rest = endpoint.partition(" ")
        if not rest:
            method, rest = None, endpoint
        path, _, query = rest.partition("?")
        for ep in self.endpoints:
            params = ep.match(method, path)
            if params is not None:
                return ep, params, parse_qs(query)
        return None

    def category(self, field_name: str) -> str:
        info = self.fields.get(field_name)
        return info.category if info else "personal"


def _route_regex(path: str) -> re.Pattern[str]:
    out, pos = [], 0
    for m in re.finditer(r"\{([A-Za-z_][A-Za-z0-9_]*)\}", path):
        out.append(re.escape(path[pos:m.start()]))
        out.append(f"(?P<{m.group(1)}>[^/]+)")
        pos = m.end()
    out.append(re.escape(path[pos:]))
    return re.compile("".join(out))


class _Checker:
    def __init__(self, source: str) -> None:
        self.source = source

    def fail(self, node: yaml.Node | None, key: str, problem: str, fix: str) -> CatalogError:
        line = f" line {node.start_mark.line + 1}" if node is not None else ""
        return CatalogError(f"{self.source}:{line} key '{key}': {problem}. Fix: {fix}.")


def _node_for(root: yaml.Node, path: list[Any]) -> yaml.Node | None:
    node: yaml.Node | None = root
    for part in path:
        if isinstance(node, yaml.MappingNode):
            node = next((v for k, v in node.value if k.value == part), None)
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
            node = node.value[part]
        else:
            return node
    return node


def load_catalog(path: str | Path | None = None) -> Catalog:
    """Load and validate a catalog; `None` loads the shipped retail default."""
    if path is None:
        text = resources.files("breachwatch.contract").joinpath(DEFAULT_CATALOG).read_text("utf-8")
        source = f"<built-in {DEFAULT_CATALOG}>"
    else:
        p = Path(path)
        if not p.exists():
            raise CatalogError(f"{p}: file not found. Fix: pass an existing catalog with --catalog, "
                               "or omit it to use the built-in default.")
        text, source = p.read_text("utf-8"), str(p)
    return parse_catalog(text, source)


def parse_catalog(text: str, source: str = "<catalog>") -> Catalog:
    ck = _Checker(source)
    try:
        root = yaml.compose(text)
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as e:
        raise CatalogError(f"{source}: not valid YAML ({e}). Fix: correct the YAML syntax.") from e
    if root is None:
        root = yaml.compose("{}")
    if not isinstance(data, dict):
        raise ck.fail(root, "<top>", "the catalog must be a mapping", "start with keys such as 'fields:' and 'endpoints:'")

    def at(*p: Any) -> yaml.Node | None:
        return _node_for(root, list(p))

    for k in data:
        if k not in TOP_KEYS:
            raise ck.fail(at(k), str(k), "unknown top-level key", f"use one of {sorted(TOP_KEYS)}")

    fields: dict[str, FieldInfo] = {}
    for name, spec in (data.get("fields") or {}).items():
        if not isinstance(spec, dict):
            raise ck.fail(at("fields", name), f"fields.{name}", "must be a mapping", "write e.g. '{category: personal}'")
        cat = spec.get("category", "personal")
        if cat not in CATEGORIES:
            raise ck.fail(at("fields", name, "category"), f"fields.{name}.category",
                          f"unknown category '{cat}'", f"use one of {sorted(CATEGORIES)}")
        fields[str(name)] = FieldInfo(str(name), cat, str(spec.get("label", name)),
                                      str(spec.get("label_ko", spec.get("label", name))),
                                      bool(spec.get("gdpr_special", False)))

    endpoints: list[Endpoint] = []
    raw_eps = data.get("endpoints") or []
    if not isinstance(raw_eps, list):
        raise ck.fail(at("endpoints"), "endpoints", "must be a list", "write '- route: GET /api/...' items")
    for i, spec in enumerate(raw_eps):
        key = f"endpoints[{i}]"
        if not isinstance(spec, dict) or "route" not in spec:
            raise ck.fail(at("endpoints", i), key, "needs a 'route'", "add 'route: GET /api/members/{id}'")
        route = str(spec["route"]).strip()
        method, _, path = route.partition(" ")
        if not path:
            method, path = "", route
        if not path.startswith("/"):
            raise ck.fail(at("endpoints", i, "route"), f"{key}.route", f"'{route}' has no path",
                          "write 'METHOD /path/{param}'")
        audience = spec.get("audience", "customer")
        if audience not in AUDIENCES:
            raise ck.fail(at("endpoints", i, "audience"), f"{key}.audience", f"unknown audience '{audience}'",
                          f"use one of {sorted(AUDIENCES)}")
        flds = spec.get("fields") or []
        if not isinstance(flds, list):
            raise ck.fail(at("endpoints", i, "fields"), f"{key}.fields", "must be a list", "write '[name, email]'")
        for f in flds:
            if fields and f not in fields:
                raise ck.fail(at("endpoints", i, "fields"), f"{key}.fields", f"field '{f}' is not declared",
                              "declare it under the top-level 'fields:' with its category")
        subj = spec.get("subjects") or {"from": "none"}
        if isinstance(subj, str):
            subj = {"from": subj}
        src = subj.get("from", "none")
        if src not in SUBJECT_SOURCES:
            raise ck.fail(at("endpoints", i, "subjects"), f"{key}.subjects.from", f"unknown source '{src}'",
                          f"use one of {sorted(SUBJECT_SOURCES)}")
        param = subj.get("param")
        if src in ("path", "query") and not param:
            raise ck.fail(at("endpoints", i, "subjects"), f"{key}.subjects.param",
                          f"'from: {src}' needs the parameter name", "add 'param: id'")
        if src == "path" and "{" + str(param) + "}" not in path:
            raise ck.fail(at("endpoints", i, "subjects"), f"{key}.subjects.param",
                          f"route has no '{{{param}}}' placeholder", "name a placeholder of the route")
        endpoints.append(Endpoint(route=route, method=method.upper() or None, path=path, audience=audience,
                                  fields=tuple(str(f) for f in flds), subjects_from=src,
                                  param=str(param) if param else None,
                                  address_book=bool(spec.get("address_book", False)),
                                  regex=_route_regex(path)))

    canaries = data.get("canaries") or []
    if not isinstance(canaries, list):
        raise ck.fail(at("canaries"), "canaries", "must be a list of subject ids", "write '[\"990000001\"]'")
    allow = data.get("allowlists") or {}
    if not isinstance(allow, dict):
        raise ck.fail(at("allowlists"), "allowlists", "must be a mapping", "write 'principals: [svc-a]'")
    for section in ("company", "detectors", "policy", "notify"):
        if data.get(section) is not None and not isinstance(data[section], dict):
            raise ck.fail(at(section), section, "must be a mapping", f"write '{section}:' followed by keys")
    return Catalog(source=source, company=dict(data.get("company") or {}), fields=fields, endpoints=endpoints,
                   canaries=frozenset(str(c) for c in canaries),
                   allowlists={str(k): [str(x) for x in (v or [])] for k, v in allow.items()},
                   detectors=dict(data.get("detectors") or {}), policy=dict(data.get("policy") or {}),
                   notify=dict(data.get("notify") or {}))
