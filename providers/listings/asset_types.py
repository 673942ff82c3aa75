"""What kind of security a listing is, from the evidence the sources give: the symbol's suffix, the directory's ETF
flag, Alpha Vantage's assetType, and the words of the security name.

Order of evidence (first that decides wins):
1. an index symbol (``^GSPC``) is an ``index``;
2. a suffix that names the kind (``.WS`` warrant, ``.U`` unit, ``.RT`` right, ``.PR`` preferred);
3. the ETF flag (the symbol directory's ``ETF=Y`` covers ETNs and other exchange-traded products too: we file them
   as ``etf``, as the directory does);
4. the security name: units before warrants and rights ("Units, each consisting of one share and one-half of one
   warrant" is a unit), debt ("Senior Notes due 2030") before preferred, preferred (including depositary shares
   representing preferred stock) before ADRs, then ADRs ("American Depositary Shares", "ADS", "ADR"), funds
   ("Closed End Fund", "... Income Fund");
5. Alpha Vantage's ``assetType`` (``ETF``) for rows nothing else describes;
6. otherwise a ``stock``.

Partnership units ("Common Units representing Limited Partner Interests") and trust units ("Units of Beneficial
Interest") are equity, not SPAC-style units.
"""

from __future__ import annotations

import re

from providers.listings.base import AssetType
from providers.listings.symbols import ParsedSymbol

__all__ = ["classify_asset_type", "split_security_name"]

_EQUITY_UNITS = re.compile(
    r"limited partner|partnership|beneficial interest|preferred units?|depositary units|common units|class [a-z] units"
    r"|royalty|corporate units?|equity units?|tangible equity",
    re.IGNORECASE,
)
_UNIT = re.compile(r"\bunits?\b", re.IGNORECASE)
_WARRANT = re.compile(r"\bwarrants?\b", re.IGNORECASE)
_RIGHT = re.compile(r"\brights?\b", re.IGNORECASE)
_DEBT = re.compile(
    r"\bnotes?\b(?! to)|debentures?|\bbonds?\b|\bdue (?:19|20)\d\d\b|\betns?\b|exchange[- ]traded notes?"
    r"|\bquibs\b|\bquids\b|\bcapital securities\b",
    re.IGNORECASE,
)
_PREFERRED = re.compile(r"preferred|preference|\bpfd\.?\b|\bprf\b|trust preferred|\btoprs\b", re.IGNORECASE)
_ADR = re.compile(
    r"american depositary|american depository|depositary receipts?|depository receipts?|\bads\b|\badss\b|\badrs?\b"
    r"|global depositary",
    re.IGNORECASE,
)
_FUND = re.compile(r"\bfund\b|closed[- ]end|\binterval fund\b|\bmunicipal income\b", re.IGNORECASE)
_SEPARATOR = " - "


def split_security_name(name: str) -> tuple[str, str]:
    """("Apple Inc.", "Common Stock") from the directory's "Apple Inc. - Common Stock".

    Names without the separator (otherlisted.txt, the screener) come back whole as the issuer part, with an empty
    description: we do not guess where an issuer's name ends.
    """
    cleaned = " ".join(name.split())
    issuer, sep, description = cleaned.partition(_SEPARATOR)
    if not sep:
        return cleaned, ""
    return issuer.strip(), description.strip()


def classify_asset_type(
    name: str | None,
    *,
    parsed: ParsedSymbol | None = None,
    is_etf: bool | None = None,
    source_type: str | None = None,
) -> AssetType:
    """The asset type of one listing (see the module docstring for the order of evidence)."""
    if parsed is not None:
        if parsed.kind == "index":
            return "index"
        if parsed.kind in ("warrant", "unit", "right", "preferred"):
            return parsed.kind
    if is_etf:
        return "etf"
    text = " ".join((name or "").split())
    if text:
        _, description = split_security_name(text)
        # Only the description speaks about the security when the name has one: "Unit Corp - Common Stock" is stock.
        about = description or text
        if _UNIT.search(about) and not _EQUITY_UNITS.search(about):
            return "unit"
        if _WARRANT.search(about):
            return "warrant"
        if _RIGHT.search(about) and not re.search(r"voting rights|rights plan", about, re.IGNORECASE):
            return "right"
        if _PREFERRED.search(about):  # "Term Preferred Stock due 2029" is preferred, though it has a due date
            return "preferred"
        if _DEBT.search(about):
            return "other"
        if _ADR.search(about):
            return "adr"
        if _FUND.search(text):
            return "fund"
    if source_type and source_type.strip().upper() == "ETF":
        return "etf"
    return "stock"
