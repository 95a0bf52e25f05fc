"""The catalog validates with errors that name the file, line and key, and resolves routes."""
from __future__ import annotations

import pytest

from breachwatch.contract.catalog import CatalogError, load_catalog, parse_catalog


def test_default_catalog_loads_and_resolves_templates_and_concrete_paths():
    cat = load_catalog()
    ep, params, query = cat.resolve("GET /admin/customers/42?tab=orders")
    assert ep.route == "GET /admin/customers/{customerId}" and params == {"customerId": "42"}
    assert query == {"tab": ["orders"]}
    assert cat.resolve("GET /api/me/profile")[0].subjects_from == "principal"
    assert cat.resolve("POST /admin/customers/42") is None  # method must match
    assert cat.category("name") == "personal"


@pytest.mark.parametrize("text,line,key", [
    ("fields:\n  name: {category: secretish}\n", 2, "fields.name.category"),
    ("endpoints:\n  - route: GET /x/{id}\n    subjects: {from: path, param: memberId}\n", 3, "endpoints[0].subjects.param"),
    ("endpoints:\n  - audience: customer\n", 2, "endpoints[0]"),
    ("fields:\n  name: {}\nendpoints:\n  - route: GET /a\n    fields: [name, shoe_size]\n", 5, "endpoints[0].fields"),
    ("colour: blue\n", 1, "colour"),
    ("endpoints:\n  - route: GET /a\n    audience: martians\n", 3, "endpoints[0].audience"),
])
def test_errors_name_line_and_key_and_fix(text, line, key):
    with pytest.raises(CatalogError) as e:
        parse_catalog(text, "my.yaml")
    msg = str(e.value)
    assert msg.startswith(f"my.yaml: line {line} key '{key}'"), msg
    assert "Fix:" in msg


def test_missing_file_and_bad_yaml():
    with pytest.raises(CatalogError, match="file not found"):
        load_catalog("/nonexistent/breachwatch.yaml")
    with pytest.raises(CatalogError, match="not valid YAML"):
        parse_catalog("fields: [unclosed\n", "x.yaml")
