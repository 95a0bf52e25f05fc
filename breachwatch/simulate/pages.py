"""What each customer-facing page returns: status, size and whose personal data, with which fields.

One definition serves benign sessions and every scenario, so a forged-token
read of the address list exposes exactly what a customer's own view of it
shows: the member's name, and each recipient's name, phone, address and
masked entrance code (subject_fields), the member included when their own
address is in the book.
"""
from __future__ import annotations

from enum import IntEnum
from typing import Any

import numpy as np
import pyarrow as pa

from breachwatch.contract.catalog import Catalog
from breachwatch.simulate.frames import const_list, json_attr, list_column, pa_str
from breachwatch.simulate.world import ADDRESS_ID_BASE, World, subject_strings


class Page(IntEnum):
    PRODUCT = 0
    SEARCH = 1
    CATEGORY = 2
    ORDER_CREATE = 3
    ME_PROFILE = 4
    ME_ADDRESSES = 5
    ME_ADDRESS = 6
    ME_ORDERS = 7
    MEMBER_PROFILE = 8


ROUTES = {
    Page.PRODUCT: "GET /api/products/{productId}",
    Page.SEARCH: "GET /api/search",
    Page.CATEGORY: "GET /api/categories/{categoryId}",
    Page.ORDER_CREATE: "POST /api/orders",
    Page.ME_PROFILE: "GET /api/me/profile",
    Page.ME_ADDRESSES: "GET /api/me/addresses",
    Page.ME_ADDRESS: "GET /api/me/addresses/{addressId}",
    Page.ME_ORDERS: "GET /api/me/orders",
    Page.MEMBER_PROFILE: "GET /api/members/{memberId}/profile",
}
NAME_ONLY = ("name",)
RECIPIENT = ("name", "phone", "address", "entrance_code_masked")
FIELDS: dict[Page, tuple[str, ...]] = {
    Page.ME_PROFILE: ("name", "email"),
    Page.ME_ADDRESSES: RECIPIENT,
    Page.ME_ADDRESS: ("name", "phone", "address", "entrance_code"),
    Page.ME_ORDERS: ("order_history",),
    Page.MEMBER_PROFILE: ("name", "email"),
}
PERSONAL = frozenset(FIELDS)
LOGIN_ROUTE = "POST /api/auth/login"
# Two possible field lists per address-book subject: a member with no own
# entry shows only their name; anyone whose entry is listed shows all of it.
_BOOK_ITEMS = pa.array([list(NAME_ONLY), list(RECIPIENT)], pa.list_(pa.string()))
_MAP_TYPE = pa.map_(pa.string(), pa.list_(pa.string()))


def check_catalog(catalog: Catalog, routes: list[str]) -> None:
    """Every route the simulator emits must be in the catalog, declaring at least the fields it returns."""
    for route in routes:
        hit = catalog.resolve(route)
        if hit is None:
            raise ValueError(f"catalog {catalog.source} has no endpoint '{route}', which the simulated retailer "
                             "serves. Fix: add it under 'endpoints:' (see the built-in default catalog).")
        declared = set(hit[0].fields)
        page = next((p for p, r in ROUTES.items() if r == route), None)
        missing = set(FIELDS.get(page, ())) - declared if page is not None else set()
        if missing:
            raise ValueError(f"catalog endpoint '{route}' does not declare fields {sorted(missing)} that it returns. "
                             "Fix: add them to its 'fields:' list.")


def render(world: World, page: Page, member: np.ndarray, r: np.random.Generator,
           target_id: np.ndarray | None = None) -> dict[str, Any]:
    """Columns for n views of one page by members at positions `member` (-1: no such member).

    `target_id` is the path id for MEMBER_PROFILE (whose data is read is then
    the target, not the caller).
    """
    n = len(member)
    cols: dict[str, Any] = {"endpoint": ROUTES[page], "action": "create" if page == Page.ORDER_CREATE else "read"}
    if page not in PERSONAL:
        cols["status"] = np.where(r.random(n) < 0.004, 404, 201 if page == Page.ORDER_CREATE else 200)
        lo, hi = {Page.PRODUCT: (35_000, 90_000), Page.SEARCH: (20_000, 60_000),
                  Page.CATEGORY: (25_000, 70_000), Page.ORDER_CREATE: (900, 1_600)}[page]
        cols["bytes_out"] = r.integers(lo, hi, n)
        return cols
    whose = world.index_of(target_id) if page == Page.MEMBER_PROFILE else np.asarray(member)
    ok = world.readable(whose)
    if page == Page.ME_ADDRESS:
        ok &= world.book_size[np.maximum(whose, 0)] > 0
    safe = np.where(ok, whose, 0)
    cols["status"] = np.where(ok, 200, 404)
    cols["fields"] = const_list(FIELDS[page], n, ok)
    if page == Page.ME_ADDRESSES:
        _address_book(world, cols, safe, ok)
    elif page == Page.ME_ADDRESS:
        _address_entry(world, cols, safe, ok, r)
    else:
        cols["subject_ids"] = list_column(ok.astype(np.int64), world.member_str.take(pa.array(safe[ok])), ok)
        records = r.integers(1, 30, n) if page == Page.ME_ORDERS else np.ones(n, dtype=np.int64)
        cols["record_count"] = np.where(ok, records, 0)
        per = 420 if page == Page.ME_ORDERS else 0
        cols["bytes_out"] = np.where(ok, 900 + per * records + r.integers(0, 400, n), 160)
    if page == Page.MEMBER_PROFILE:
        cols["attributes"] = json_attr("path", pa_str(target_id), "/api/members/", "/profile")
    return cols


def _address_book(world: World, cols: dict[str, Any], safe: np.ndarray, ok: np.ndarray) -> None:
    counts = np.where(ok, 1 + world.n_recip[safe], 0)
    total = int(counts.sum())
    offsets = np.cumsum(counts) - counts
    row = np.repeat(np.arange(len(safe)), counts)
    pos = np.arange(total) - offsets[row]
    m = safe[row]
    codes = np.where(pos == 0, world.member_id[m], -(world.recip_start[m] + pos))
    keys = subject_strings(codes)
    item = np.where((pos > 0) | world.has_self[m], 1, 0)
    cols["subject_ids"] = list_column(counts, keys, ok)
    off32 = pa.array(np.concatenate([[0], np.cumsum(counts)]).astype(np.int32))
    cols["subject_fields"] = pa.MapArray.from_arrays(off32, keys, _BOOK_ITEMS.take(pa.array(item)), type=_MAP_TYPE,
                                                     mask=pa.array(~ok))
    size = world.book_size[safe]
    cols["record_count"] = np.where(ok, size, 0)
    cols["bytes_out"] = np.where(ok, 450 + 310 * size, 160)


def _address_entry(world: World, cols: dict[str, Any], safe: np.ndarray, ok: np.ndarray,
                   r: np.random.Generator) -> None:
    size = np.maximum(world.book_size[safe], 1)
    j = (r.random(len(safe)) * size).astype(np.int64)
    own = world.has_self[safe] & (j == 0)
    code = np.where(own, world.member_id[safe], -(world.recip_start[safe] + j + 1 - world.has_self[safe]))
    cols["subject_ids"] = list_column(ok.astype(np.int64), subject_strings(code[ok]), ok)
    cols["record_count"] = ok.astype(np.int64)
    cols["bytes_out"] = np.where(ok, 700, 160)
    cols["attributes"] = json_attr("path", pa_str(ADDRESS_ID_BASE + world.book_start[safe] + j), "/api/me/addresses/")
