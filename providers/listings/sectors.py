"""GICS sectors for US listings, from the NASDAQ screener's *industry* (not its sector), with a reviewed table.

The screener's sector is Nasdaq's own 12-value taxonomy, and its industries are SIC-style labels: it files Visa and
Mastercard under Consumer Discretionary ("Business Services"), Procter & Gamble under Consumer Discretionary
("Package Goods/Cosmetics"), Linde under Industrials or Basic Materials ("Major Chemicals"), and Philip Morris under
Health Care ("Medicinal Chemicals and Botanical Products"). So the sector is decided in this order:

1. ``ISSUER_OVERRIDES`` (``data/sector_overrides.csv``): a reviewed exception per issuer (by CIK) whose SIC-style
   industry cannot tell its GICS sector — Visa in "Business Services" next to Uber and Accenture, Philip Morris
   among cannabis growers. Each row says why.
2. ``NASDAQ_INDUSTRIES``: every industry that occurs in the recorded screener files, mapped to the GICS sector of
   its typical member (a test keeps the table complete against the recorded files), refined where the industry is
   mixed: by words of the security's name (``"tobacco"`` among the botanical products, ``"mortgage"`` among REITs)
   or by Nasdaq's own sector (its "Telecommunications" carriers among "Telecommunications Equipment" makers).
3. For an industry the table has never seen (live data changes): the keyword rules of ``providers.sectors`` on the
   industry, then on Nasdaq's sector label.

The source's own words are always kept beside the mapped sector (``source_sector``, ``source_industry``).
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache

from providers.listings import data_file
from providers.sectors import (
    COMMUNICATION,
    DISCRETIONARY,
    ENERGY,
    FINANCIALS,
    GICS_SECTORS,
    HEALTH,
    INDUSTRIALS,
    IT,
    MATERIALS,
    REAL_ESTATE,
    STAPLES,
    UTILITIES,
    to_gics_sector,
)

__all__ = [
    "NASDAQ_INDUSTRIES",
    "SECTOR_OVERRIDES_FILE",
    "IndustryRule",
    "SectorOverride",
    "gics_from_nasdaq",
    "issuer_overrides",
    "normalise_industry",
]

SECTOR_OVERRIDES_FILE = "sector_overrides.csv"


@dataclass(frozen=True, slots=True)
class IndustryRule:
    """The GICS sector of one NASDAQ industry, with refinements for industries that mix sectors."""

    sector: str
    by_name: tuple[tuple[str, str], ...] = ()  # (regex on the security name, sector), first match wins
    by_source_sector: Mapping[str, str] = field(default_factory=dict)  # Nasdaq's sector -> GICS sector


def _rule(sector: str, *by_name: tuple[str, str], by_source_sector: Mapping[str, str] | None = None) -> IndustryRule:
    return IndustryRule(sector, tuple(by_name), dict(by_source_sector or {}))


# Reviewed against the members of each industry in the recorded 2024-08-22 and 2026-08-22 screener files (largest
# members named where the choice needed a reason). Keys are the industry with its whitespace trimmed.
NASDAQ_INDUSTRIES: dict[str, IndustryRule] = {
    # --- Health Care -----------------------------------------------------------------------------------------
    # Cannabis growers and drug makers; the tobacco majors filed here (PM, MO, BTI) are Consumer Staples.
    "Medicinal Chemicals and Botanical Products": _rule(HEALTH, (r"tobacco", STAPLES)),
    "Biotechnology: Biological Products (No Diagnostic Substances)": _rule(HEALTH),
    "Biotechnology: Commercial Physical & Biological Resarch": _rule(HEALTH),  # sic: "Resarch", as served
    "Biotechnology: Electromedical & Electrotherapeutic Apparatus": _rule(HEALTH),
    "Biotechnology: In Vitro & In Vivo Diagnostic Substances": _rule(HEALTH),
    # Agilent, Bruker, Bio-Rad, Avantor: GICS Life Sciences Tools & Services (Nasdaq says Industrials).
    "Biotechnology: Laboratory Analytical Instruments": _rule(HEALTH),
    "Biotechnology: Pharmaceutical Preparations": _rule(HEALTH),
    "Hospital/Nursing Management": _rule(HEALTH),
    "Managed Health Care": _rule(HEALTH),
    "Medical Electronics": _rule(HEALTH),
    "Medical Specialities": _rule(HEALTH),
    "Medical/Dental Instruments": _rule(HEALTH),
    "Medical/Nursing Services": _rule(HEALTH),
    "Misc Health and Biotechnology Services": _rule(HEALTH),
    "Ophthalmic Goods": _rule(HEALTH),
    "Other Pharmaceuticals": _rule(HEALTH),  # McKesson, Cencora, Cardinal: Health Care Distributors
    "Pharmaceuticals and Biotechnology": _rule(HEALTH),
    # --- Financials ----------------------------------------------------------------------------------------------
    "Accident &Health Insurance": _rule(FINANCIALS),
    "Banks": _rule(FINANCIALS),
    "Blank Checks": _rule(FINANCIALS),  # SPACs: shell companies, classified with Financials
    "Commercial Banks": _rule(FINANCIALS),
    "Diversified Financial Services": _rule(FINANCIALS),
    "Finance Companies": _rule(FINANCIALS),
    "Finance/Investors Services": _rule(FINANCIALS),
    "Finance: Consumer Services": _rule(FINANCIALS),  # AmEx, S&P Global, Moody's, Coinbase
    "Investment Bankers/Brokers/Service": _rule(FINANCIALS),
    "Investment Managers": _rule(FINANCIALS),
    "Life Insurance": _rule(FINANCIALS),
    "Major Banks": _rule(FINANCIALS),
    "Property-Casualty Insurers": _rule(FINANCIALS),
    "Savings Institutions": _rule(FINANCIALS),
    "Specialty Insurers": _rule(FINANCIALS),
    "Trusts Except Educational Religious and Charitable": _rule(FINANCIALS),  # closed-end funds, credit vehicles
    # --- Real Estate ----------------------------------------------------------------------------------------------
    "Real Estate": _rule(REAL_ESTATE),  # CBRE, JLL, Invitation Homes (Nasdaq says Finance)
    # Mortgage REITs (AGNC, Annaly, Starwood) are Financials since GICS 2023.
    "Real Estate Investment Trusts": _rule(REAL_ESTATE, (r"mortgage", FINANCIALS)),
    "Building operators": _rule(REAL_ESTATE),
    # --- Information Technology --------------------------------------------------------------------------------
    "Computer Communications Equipment": _rule(IT),
    "Computer Manufacturing": _rule(IT),
    "Computer Software: Prepackaged Software": _rule(IT),
    # Alphabet and Meta are Communication Services (issuer overrides); the industry's typical member is software.
    "Computer Software: Programming Data Processing": _rule(IT),
    "Computer peripheral equipment": _rule(IT),
    "Diversified Electronic Products": _rule(IT),
    "EDP Services": _rule(IT),
    "Electrical Products": _rule(IT),  # Amphenol, Teradyne, Flex, Jabil, Celestica
    "Electronic Components": _rule(IT),
    "Precision Instruments": _rule(IT),
    "Radio And Television Broadcasting And Communications Equipment": _rule(IT),  # Qualcomm, Motorola, Ericsson
    "Retail: Computer Software & Peripheral Equipment": _rule(IT),
    "Semiconductors": _rule(IT),
    # Verizon, AT&T, T-Mobile (Nasdaq sector "Telecommunications") are carriers; Corning, Ciena, Lumentum make gear.
    "Telecommunications Equipment": _rule(IT, by_source_sector={"Telecommunications": COMMUNICATION}),
    # --- Communication Services --------------------------------------------------------------------------------
    "Advertising": _rule(COMMUNICATION),
    "Books": _rule(COMMUNICATION),
    "Broadcasting": _rule(COMMUNICATION),
    "Cable & Other Pay Television Services": _rule(COMMUNICATION),
    "Movies/Entertainment": _rule(COMMUNICATION),
    "Newspapers/Magazines": _rule(COMMUNICATION),
    "Publishing": _rule(COMMUNICATION),
    # Disney, Live Nation, TKO, Warner Music (Entertainment); the betting and casino members are issuer overrides.
    "Services-Misc. Amusement & Recreation": _rule(
        COMMUNICATION, (r"casino|gaming|resort|racing|\bbet|sportsbook|lottery|golf|ski\b", DISCRETIONARY)
    ),
    # --- Consumer Discretionary -------------------------------------------------------------------------------
    "Apparel": _rule(DISCRETIONARY),
    "Auto & Home Supply Stores": _rule(DISCRETIONARY),
    "Auto Manufacturing": _rule(DISCRETIONARY),  # Tesla, Rivian (Nasdaq says Industrials for some)
    "Auto Parts:O.E.M.": _rule(DISCRETIONARY),
    "Automotive Aftermarket": _rule(DISCRETIONARY),
    "Catalog/Specialty Distribution": _rule(DISCRETIONARY),  # Amazon, Coupang, Wayfair, Chewy
    "Clothing/Shoe/Accessory Stores": _rule(DISCRETIONARY),
    "Consumer Electronics/Appliances": _rule(
        DISCRETIONARY, by_source_sector={"Technology": INDUSTRIALS, "Industrials": INDUSTRIALS}
    ),  # Sony, Whirlpool; GE, GE Vernova, Emerson, Otis (Nasdaq "Technology") are Industrials
    "Consumer Electronics/Video Chains": _rule(DISCRETIONARY),  # Best Buy; Netflix is an issuer override
    "Consumer Specialties": _rule(DISCRETIONARY),
    "Department/Specialty Retail Stores": _rule(DISCRETIONARY),  # the staples retailers are issuer overrides
    "Durable Goods": _rule(DISCRETIONARY),
    "Electronics Distribution": _rule(DISCRETIONARY),  # its only member in the recorded files is GameStop
    "Garments and Clothing": _rule(DISCRETIONARY),
    "Home Furnishings": _rule(DISCRETIONARY),
    "Homebuilding": _rule(DISCRETIONARY),
    "Hotels/Resorts": _rule(DISCRETIONARY),
    "Motor Vehicles": _rule(DISCRETIONARY),
    "Other Consumer Services": _rule(DISCRETIONARY),  # education, funeral homes, tax preparers
    "Other Specialty Stores": _rule(DISCRETIONARY),
    "RETAIL: Building Materials": _rule(DISCRETIONARY),  # Home Depot, Lowe's, Tractor Supply
    "Recreational Games/Products/Toys": _rule(DISCRETIONARY),
    "Restaurants": _rule(DISCRETIONARY),
    "Retail-Auto Dealers and Gas Stations": _rule(DISCRETIONARY),
    "Shoe Manufacturing": _rule(DISCRETIONARY),
    "Textiles": _rule(DISCRETIONARY),
    "Transportation Services": _rule(DISCRETIONARY),  # Booking, Expedia, MakeMyTrip (travel services)
    # --- Consumer Staples ---------------------------------------------------------------------------------------
    "Beverages (Production/Distribution)": _rule(STAPLES),
    "Farming/Seeds/Milling": _rule(STAPLES),
    "Food Chains": _rule(STAPLES),
    "Food Distributors": _rule(STAPLES),  # Sysco, US Foods, Performance Food
    "Meat/Poultry/Fish": _rule(STAPLES),
    "Package Goods/Cosmetics": _rule(STAPLES),  # Procter & Gamble, Unilever, Colgate (Nasdaq: Cons. Discretionary)
    "Packaged Foods": _rule(STAPLES),
    "Retail-Drug Stores and Proprietary Stores": _rule(STAPLES),
    "Specialty Foods": _rule(STAPLES),
    "Tobacco": _rule(STAPLES),
    # --- Energy ----------------------------------------------------------------------------------------------------
    "Coal Mining": _rule(ENERGY),
    "Integrated oil Companies": _rule(ENERGY),
    # Mostly pipelines (Enbridge, Williams, Kinder Morgan, Energy Transfer); the gas utilities are overrides.
    "Natural Gas Distribution": _rule(ENERGY),
    "Oil & Gas Production": _rule(ENERGY),
    "Oil Refining/Marketing": _rule(ENERGY),
    "Oil and Gas Field Machinery": _rule(ENERGY),
    "Oil/Gas Transmission": _rule(ENERGY),  # Cheniere, Venture Global; the gas utilities are issuer overrides
    "Oilfield Services/Equipment": _rule(ENERGY),
    # --- Materials -------------------------------------------------------------------------------------------------
    "Agricultural Chemicals": _rule(MATERIALS),
    "Aluminum": _rule(MATERIALS),
    "Building Materials": _rule(MATERIALS),
    "Containers/Packaging": _rule(MATERIALS),
    "Forest Products": _rule(MATERIALS),
    "Major Chemicals": _rule(MATERIALS),  # Linde, Air Products, Dow (Nasdaq: Industrials or Basic Materials)
    "Metal Mining": _rule(MATERIALS),
    "Mining & Quarrying of Nonmetallic Minerals (No Fuels)": _rule(MATERIALS),
    "Other Metals and Minerals": _rule(MATERIALS, (r"uranium|cameco", ENERGY)),
    "Paints/Coatings": _rule(MATERIALS),
    "Paper": _rule(MATERIALS),
    "Plastic Products": _rule(MATERIALS),
    "Precious Metals": _rule(MATERIALS),
    "Specialty Chemicals": _rule(MATERIALS),
    "Steel/Iron Ore": _rule(MATERIALS),
    # --- Industrials -------------------------------------------------------------------------------------------
    "Aerospace": _rule(INDUSTRIALS),
    "Air Freight/Delivery Services": _rule(INDUSTRIALS),  # airlines and couriers
    "Building Products": _rule(INDUSTRIALS),
    # Uber, Accenture, RELX, eBay, Visa sit together here; the typical member is a commercial service.
    "Business Services": _rule(INDUSTRIALS),
    "Construction/Ag Equipment/Trucks": _rule(INDUSTRIALS),
    "Diversified Commercial Services": _rule(INDUSTRIALS),
    "Engineering & Construction": _rule(INDUSTRIALS),
    "Environmental Services": _rule(INDUSTRIALS),  # waste haulers (Nasdaq says Utilities)
    "Fluid Controls": _rule(INDUSTRIALS),
    "General Bldg Contractors - Nonresidential Bldgs": _rule(INDUSTRIALS),
    "Industrial Machinery/Components": _rule(INDUSTRIALS),
    "Industrial Specialties": _rule(INDUSTRIALS, by_source_sector={"Health Care": HEALTH}),  # Intuitive Surgical
    "Integrated Freight & Logistics": _rule(INDUSTRIALS),
    # Shipbuilders and shippers; cruise lines are Consumer Discretionary.
    "Marine Transportation": _rule(INDUSTRIALS, (r"cruise", DISCRETIONARY)),
    "Metal Fabrications": _rule(INDUSTRIALS),
    "Military/Government/Technical": _rule(INDUSTRIALS),
    "Misc Corporate Leasing Services": _rule(INDUSTRIALS),
    "Miscellaneous": _rule(INDUSTRIALS),  # Ferguson, the only sizeable member
    "Miscellaneous manufacturing industries": _rule(INDUSTRIALS),
    "Multi-Sector Companies": _rule(INDUSTRIALS),
    "Office Equipment/Supplies/Services": _rule(INDUSTRIALS),  # Grainger, HNI, Pitney Bowes
    "Ordnance And Accessories": _rule(INDUSTRIALS),
    "Other Transportation": _rule(INDUSTRIALS),
    "Pollution Control Equipment": _rule(INDUSTRIALS),
    "Professional Services": _rule(INDUSTRIALS),
    "Professional and commerical equipment": _rule(INDUSTRIALS),  # sic, as served
    "Railroads": _rule(INDUSTRIALS),
    "Rental/Leasing Companies": _rule(INDUSTRIALS),
    "Tools/Hardware": _rule(INDUSTRIALS),
    "Trucking Freight/Courier Services": _rule(INDUSTRIALS),
    "Water Sewer Pipeline Comm & Power Line Construction": _rule(INDUSTRIALS),
    "Wholesale Distributors": _rule(INDUSTRIALS),
    # --- Utilities -------------------------------------------------------------------------------------------------
    "Electric Utilities: Central": _rule(UTILITIES),
    "Power Generation": _rule(UTILITIES),
    "Water Supply": _rule(UTILITIES),
}

_COMPILED_NAMES: dict[str, tuple[tuple[re.Pattern[str], str], ...]] = {
    industry: tuple((re.compile(pattern, re.IGNORECASE), sector) for pattern, sector in rule.by_name)
    for industry, rule in NASDAQ_INDUSTRIES.items()
}
# Nasdaq's 12 sector labels, for industries the table has never seen (a last resort: Nasdaq's sector is coarse).
_NASDAQ_SECTORS = {
    "Basic Materials": MATERIALS,
    "Consumer Discretionary": DISCRETIONARY,
    "Consumer Staples": STAPLES,
    "Energy": ENERGY,
    "Finance": FINANCIALS,
    "Health Care": HEALTH,
    "Industrials": INDUSTRIALS,
    "Real Estate": REAL_ESTATE,
    "Technology": IT,
    "Telecommunications": COMMUNICATION,
    "Utilities": UTILITIES,
}


def normalise_industry(text: str | None) -> str:
    return " ".join((text or "").split())


def gics_from_nasdaq(industry: str | None, source_sector: str | None = None, name: str | None = None) -> str | None:
    """The GICS sector of a screener row from its industry (and, for mixed industries, its name or Nasdaq sector).

    Returns None when the row has neither an industry nor a sector (the screener leaves both blank for many
    preferreds, units and warrants).
    """
    key = normalise_industry(industry)
    nasdaq_sector = normalise_industry(source_sector)
    rule = NASDAQ_INDUSTRIES.get(key)
    if rule is not None:
        for pattern, sector in _COMPILED_NAMES[key]:
            if name and pattern.search(name):
                return sector
        return rule.by_source_sector.get(nasdaq_sector, rule.sector)
    if key:
        guessed = to_gics_sector(key)
        if guessed is not None:
            return guessed
    return _NASDAQ_SECTORS.get(nasdaq_sector)


@dataclass(frozen=True, slots=True)
class SectorOverride:
    cik: int
    symbol: str  # for people reading the table; the CIK is the key
    sector: str
    reason: str


@cache
def issuer_overrides() -> Mapping[int, SectorOverride]:
    """The reviewed per-issuer exceptions shipped in ``data/sector_overrides.csv``, by CIK."""
    text = data_file(SECTOR_OVERRIDES_FILE).read_text(encoding="utf-8")
    reader = csv.DictReader(io.StringIO(text))
    if reader.fieldnames != ["cik", "symbol", "gics_sector", "reason"]:
        raise ValueError(f"{SECTOR_OVERRIDES_FILE}: unexpected header {reader.fieldnames}")
    overrides: dict[int, SectorOverride] = {}
    for line_no, row in enumerate(reader, start=2):
        sector = row["gics_sector"].strip()
        if sector not in GICS_SECTORS:
            raise ValueError(f"{SECTOR_OVERRIDES_FILE} line {line_no}: {sector!r} is not a GICS sector")
        if not row["reason"].strip():
            raise ValueError(f"{SECTOR_OVERRIDES_FILE} line {line_no}: every override needs its reason")
        cik = int(row["cik"])
        if cik in overrides:
            raise ValueError(f"{SECTOR_OVERRIDES_FILE} line {line_no}: CIK {cik} appears twice")
        overrides[cik] = SectorOverride(cik, row["symbol"].strip(), sector, row["reason"].strip())
    return overrides
