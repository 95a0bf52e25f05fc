"""Benign surprises, one file each; the order here fixes their id domains (codes 8..15)."""
from __future__ import annotations

from breachwatch.simulate.surprises.app_release import AppRelease
from breachwatch.simulate.surprises.base import Surprise
from breachwatch.simulate.surprises.carrier_renumbering import CarrierRenumbering
from breachwatch.simulate.surprises.new_batch_job import NewBatchJob
from breachwatch.simulate.surprises.sale_day import SaleDay
from breachwatch.simulate.surprises.travel import Travel

SURPRISES: dict[str, type[Surprise]] = {cls.name: cls for cls in (
    SaleDay, AppRelease, CarrierRenumbering, Travel, NewBatchJob,
)}
NAMES: tuple[str, ...] = tuple(SURPRISES)
# Between the benign generators (1..5) and the scenarios (16..).
FIRST_CODE = 8


def code_of(name: str) -> int:
    return FIRST_CODE + NAMES.index(name)
