"""Breach scenarios, one file each; the order here fixes their labels and id domains."""
from __future__ import annotations

from breachwatch.simulate.scenarios.base import Scenario
from breachwatch.simulate.scenarios.bola_enumeration import BolaEnumeration
from breachwatch.simulate.scenarios.canary_read import CanaryRead
from breachwatch.simulate.scenarios.credential_stuffing import CredentialStuffing
from breachwatch.simulate.scenarios.forged_token import ForgedToken
from breachwatch.simulate.scenarios.insider_browsing import InsiderBrowsing
from breachwatch.simulate.scenarios.partner_scraping import PartnerScraping
from breachwatch.simulate.scenarios.stale_credential import StaleCredential

SCENARIOS: dict[str, type[Scenario]] = {cls.name: cls for cls in (
    ForgedToken, StaleCredential, InsiderBrowsing, BolaEnumeration, PartnerScraping, CredentialStuffing, CanaryRead,
)}
NAMES: tuple[str, ...] = tuple(SCENARIOS)
FIRST_CODE = 16


def label_of(name: str) -> int:
    return NAMES.index(name) + 1


def code_of(name: str) -> int:
    return FIRST_CODE + NAMES.index(name)
