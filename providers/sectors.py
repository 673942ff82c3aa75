"""The 11 GICS sectors, and a mapping onto them from every sector vocabulary our providers speak.

Providers label sectors differently: Yahoo says "Technology" and "Consumer Cyclical", Alpha Vantage says
"TECHNOLOGY" and "LIFE SCIENCES" (the SEC's filing-office names), and pytickersymbols mixes GICS names, Refinitiv
(TRBC) sector names and free-text Wikipedia industries ("Payment processor , technology , e-commerce"). The store
keeps one vocabulary, GICS, so that `search_assets(sector=...)` and `list_sectors()` mean the same thing whatever
provider validated an asset.

Mapping order: an exact table of known labels first, then keyword rules for free text. A label that is known to
be ambiguous (Alpha Vantage's "MANUFACTURING" covers carmakers and machinery makers alike) is not guessed from
its own words: the caller's industry decides, and only then a documented default.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

__all__ = ["GICS_SECTORS", "sector_from_industries", "to_gics_sector"]

COMMUNICATION = "Communication Services"
DISCRETIONARY = "Consumer Discretionary"
STAPLES = "Consumer Staples"
ENERGY = "Energy"
FINANCIALS = "Financials"
HEALTH = "Health Care"
INDUSTRIALS = "Industrials"
IT = "Information Technology"
MATERIALS = "Materials"
REAL_ESTATE = "Real Estate"
UTILITIES = "Utilities"

GICS_SECTORS: tuple[str, ...] = (
    COMMUNICATION,
    DISCRETIONARY,
    STAPLES,
    ENERGY,
    FINANCIALS,
    HEALTH,
    INDUSTRIALS,
    IT,
    MATERIALS,
    REAL_ESTATE,
    UTILITIES,
)

# Exact labels (normalised: lower case, "and" -> "&", single spaces). None marks a label known to be ambiguous.
_EXACT: dict[str, str | None] = {
    **{name.lower(): name for name in GICS_SECTORS},
    # Yahoo Finance (assetProfile.sector, search "sector")
    "technology": IT,
    "financial services": FINANCIALS,
    "healthcare": HEALTH,
    "consumer cyclical": DISCRETIONARY,
    "consumer defensive": STAPLES,
    "basic materials": MATERIALS,
    # older GICS / Refinitiv TRBC economic sectors (pytickersymbols)
    "telecommunication services": COMMUNICATION,
    "telecommunications services": COMMUNICATION,
    "consumer cyclicals": DISCRETIONARY,
    "consumer non-cyclicals": STAPLES,
    "academic & educational services": DISCRETIONARY,
    "financial": FINANCIALS,
    "finance": FINANCIALS,
    # Alpha Vantage OVERVIEW "Sector" (SEC filing offices, upper case in current payloads)
    "life sciences": HEALTH,
    "real estate & construction": None,
    "manufacturing": None,
    "energy & transportation": None,
    "trade & services": None,
    "industrial applications & services": None,
    "crypto assets": None,
    "office of finance": FINANCIALS,
}

# What an ambiguous label means when its industry does not settle it: the most common case, or nothing.
_AMBIGUOUS_DEFAULT: dict[str, str | None] = {
    "real estate & construction": REAL_ESTATE,
    "manufacturing": INDUSTRIALS,
    "energy & transportation": None,
    "trade & services": None,
    "industrial applications & services": INDUSTRIALS,
    "crypto assets": None,
}

# Keyword rules for free text, tried in this order; the first sector with a matching pattern wins. The order is the
# point: "medical technology" must reach Health Care before "technology" reaches IT, "food & drug retailing" must
# reach Staples before "retail" reaches Discretionary, and "financial technology" must reach Financials.
_RULES: tuple[tuple[str, str], ...] = (
    (
        HEALTH,
        "pharma|biotech|health|medic|hospital|life science|diagnost|clinical|surgical|dental|genom|therapeut"
        "|biolog|managed care|laborator|biopharm|pflege|caregiving",
    ),
    (
        REAL_ESTATE,
        r"\breit|real estate|property|properties|immobil|retis\b|self storage",
    ),
    (
        FINANCIALS,
        "bank|financ|insur|invest|asset management|capital market|credit|payment|brokerage|wealth|fintech"
        r"|mortgage|lending|private equity|securities|\bfunds?\b|stock exchange|commodity market|private debt"
        "|savings|beteiligung",
    ),
    (
        UTILITIES,
        r"utilit|electric power|power generation|electricity|\bipps?\b|independent power|versorger|renewable"
        "|water supply|regulated gas|natural gas distribution|multi-utilities",
    ),
    (
        ENERGY,
        r"\boil\b|\bgas\b|petrol|erdöl|ölf|\bcoal\b|energy|drilling|pipeline|fossil|refin|oilfield|uranium",
    ),
    (
        MATERIALS,
        r"chemical|steel|\bmetals?\b|mining|mineral|\bpaper\b|packaging|container|\bglass\b|cement|zement"
        r"|\bgold\b|forest|construction material|building material|fertili|pulp|timber|aluminium|aluminum"
        r"|copper|\biron\b|specialty material|materials|behälterglas|röhren|ceramic|chemie|montan|riechstoff"
        "|stahl",
    ),
    (
        IT,
        r"software|semiconductor|computer|it services|it consulting|\bit\b|it-dienst|electronic|elektronik"
        "|cloud|cyber|network security|internet security|information security|saas|hardware"
        r"|information technology|\bdata\b|communications equipment|networking|precision instrument"
        r"|technology equipment|storage device|integrated circuit|photovoltaic|\biot\b",
    ),
    (
        COMMUNICATION,
        r"telecom|\bmedia\b|broadcast|entertainment|publishing|advertis|interactive|social|video game|internet"
        r"|music|\bcable\b|satellit|wireless|television|\bradio\b|newspaper|film|movie|online dating"
        "|search engine|communication|außenwerbung|unterhaltungssoftware|marketing|medien",
    ),
    (
        INDUSTRIALS,
        "aerospace|defen|machinery|machine|industrial|engineering|construction|transport|logistic|logistik"
        r"|airline|aviation|\brail|shipping|shipbuilding|freight|trucking|conglomerate|electrical equipment"
        "|building products|staffing|employment|professional services|commercial services|business services"
        r"|waste|environmental services|heavy equipment|manufactur|trading compan|sogo shosha|\bmarine\b"
        r"|delivery|courier|airport|infrastructure|\bwind\b|anlagenbau|outsourcing|consulting"
        "|security services|electric machinery|automation|human resource|research|testing|car rental"
        r"|equipment|luftfahrt|dienstleistung|beratung|ingenieur|personnel|leasing|mobilität|\bsecurity\b",
    ),
    (
        STAPLES,
        r"food|beverage|\bdrinks?\b|tobacco|household|personal care|cosmetic|grocery|supermarket|brew"
        r"|agricultur|\bfarm|\bfish|\bmeat\b|snack|getränke|consumer staples|non-cyclical|staples|fast-moving"
        "|drug retail|beauty",
    ),
    (
        DISCRETIONARY,
        r"retail|automo|\bauto\b|\bcars?\b|vehicle|apparel|clothing|clothes|fashion|luxury|hotel|restaurant"
        "|leisure|casino|gaming|travel|tourism|hospitality|cruise|home improvement|homebuild|furniture"
        r"|footwear|textile|\btoys?\b|e-commerce|education|department store|consumer goods|consumer products"
        "|appliance|accessories|sports|freizeit|amusement|online marketplace|cyclical|wholesale|distribution"
        "|glücksspiel|lotter",
    ),
    (
        IT,
        "technology|technologie|tech",
    ),
)

_COMPILED: tuple[tuple[str, re.Pattern[str]], ...] = tuple((sector, re.compile(rule)) for sector, rule in _RULES)
_SPACES = re.compile(r"\s+")


def _normalise(text: str) -> str:
    return _SPACES.sub(" ", text.strip().lower().replace(" and ", " & "))


def _by_keywords(text: str) -> str | None:
    for sector, pattern in _COMPILED:
        if pattern.search(text):
            return sector
    return None


def to_gics_sector(text: str | None, industry: str | None = None) -> str | None:
    """Map a provider's sector label (or free-text industry) onto one of the 11 GICS sector names.

    ``industry`` settles labels that are ambiguous on their own (Alpha Vantage's "MANUFACTURING"). Returns None
    when nothing maps: an unknown sector is better than a wrong one.
    """
    key = _normalise(text) if text else ""
    if key and key in _EXACT:
        mapped = _EXACT[key]
        if mapped is not None:
            return mapped
        from_industry = _by_keywords(_normalise(industry)) if industry else None
        return from_industry or _AMBIGUOUS_DEFAULT.get(key)
    if key:
        mapped = _by_keywords(key)
        if mapped is not None:
            return mapped
    if industry:
        return _by_keywords(_normalise(industry))
    return None


def sector_from_industries(industries: Iterable[str]) -> str | None:
    """The GICS sector of a company described by several industry labels (pytickersymbols' ``industries``).

    Labels that are exact sector names (GICS, TRBC or Yahoo) win over free text, in the order given; free-text
    labels are tried next with the keyword rules.
    """
    labels = [label for label in industries if label and label.strip()]
    for label in labels:
        mapped = _EXACT.get(_normalise(label))
        if mapped is not None:
            return mapped
    for label in labels:
        mapped = _by_keywords(_normalise(label))
        if mapped is not None:
            return mapped
    return None
