"""One canonical spelling per US listing, and each source's own spelling of it.

The same Berkshire class B share is ``BRK.B`` (our canonical form, and the NYSE's ACT symbol), ``BRK/B`` (the NASDAQ
screener), ``BRK-B`` (SEC, Alpha Vantage, Yahoo) or ``BRK B`` (typed by a person). Preferred shares vary even more:
``ABR$D`` (ACT), ``ABRpD`` (CQS), ``ABR^D`` (screener), ``ABR-PD`` (SEC, Yahoo), ``ABR-P-D`` (Alpha Vantage).

Canonical form: the root, then — for anything but the plain common share — a dot and the NYSE's CMS suffix (the
exchange's own suffix table: ``B`` class B, ``PR``/``PRD`` preferred / preferred series D, ``WS``/``WSA`` warrants /
warrants series A, ``U`` units, ``RT`` rights, ``WI`` when issued, ``CL`` called). So ``BRK.B``, ``ABR.PRD``,
``ACHR.WS``, ``AIIA.U``, ``AIIA.RT``. One separator and one vocabulary: every spelling above parses to exactly one
canonical symbol, and ``spell`` renders it back in a source's own form.

Nasdaq-listed securities keep their plain four- or five-letter tickers (``ABLVW`` is Nasdaq's ticker for a warrant,
not ``ABLV.WS``): only separators carry a suffix. Symbols we cannot read as a US listing (``SAP.DE``, ``BTC-USD``,
``EURUSD=X``) are returned unchanged (upper-cased): canonicalisation never invents a listing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

__all__ = [
    "ParsedSymbol",
    "SpellingStyle",
    "SymbolKind",
    "canonical_symbol",
    "parse_symbol",
    "spell",
    "spellings",
]

SymbolKind = Literal[
    "common", "class", "preferred", "warrant", "unit", "right", "when_issued", "called", "index", "other"
]
# Whose spelling: `any` reads every style (what a person or an unknown client types).
SpellingStyle = Literal["any", "act", "nasdaq", "screener", "sec", "alpha_vantage", "yahoo"]

_ROOT = re.compile(r"^[A-Z0-9]{1,10}$")
_SEPARATORS = re.compile(r"[.\-/ ]+")
# Each source's own separator; `any` (people, unknown clients) accepts them all, and spaces.
_STYLE_SEPARATORS = {
    "act": re.compile(r"\."),
    "nasdaq": re.compile(r"\."),
    "screener": re.compile(r"/"),
    "sec": re.compile(r"-"),
    "alpha_vantage": re.compile(r"-"),
    "yahoo": re.compile(r"-"),
}
_LETTER = re.compile(r"^[A-Z]$")
_PREFERRED_TOKEN = re.compile(r"^(?:PR|P)([A-Z]?)$")
_WARRANT_TOKEN = re.compile(r"^(?:WS|WT)([A-Z]?)$")


@dataclass(frozen=True, slots=True)
class ParsedSymbol:
    """A symbol read as root + kind (+ class letter or series). ``raw`` keeps the unparsed text for kind ``other``."""

    root: str
    kind: SymbolKind
    series: str = ""
    raw: str = ""

    @property
    def canonical(self) -> str:
        if self.kind == "common":
            return self.root
        if self.kind == "class":
            return f"{self.root}.{self.series}"
        if self.kind == "preferred":
            return f"{self.root}.PR{self.series}"
        if self.kind == "warrant":
            return f"{self.root}.WS{self.series}"
        if self.kind == "unit":
            return f"{self.root}.U"
        if self.kind == "right":
            return f"{self.root}.RT"
        if self.kind == "when_issued":
            return f"{self.root}.{self.series}WI" if self.series else f"{self.root}.WI"
        if self.kind == "called":
            return f"{self.root}.CL"
        if self.kind == "index":
            return f"^{self.root}"
        return self.raw


def _other(text: str) -> ParsedSymbol:
    return ParsedSymbol(root=text, kind="other", raw=text)


# The kinds that a lone suffix token means in the ACT spelling and in Alpha Vantage's (see _from_tokens).
_ACT_KINDS: dict[str, SymbolKind] = {"W": "warrant", "U": "unit", "R": "right"}
_ALPHA_VANTAGE_KINDS: dict[str, SymbolKind] = {
    "W": "when_issued",
    "U": "unit",
    "R": "right",
    "P": "preferred",
    "CL": "called",
}


def _from_tokens(root: str, tokens: list[str], style: SpellingStyle, text: str) -> ParsedSymbol:
    """Interpret the suffix tokens after the root (separators already removed)."""
    if not tokens:
        return ParsedSymbol(root, "common")
    if len(tokens) == 1:
        token = tokens[0]
        if style == "act" and token in ("W", "U", "R"):
            return ParsedSymbol(root, _ACT_KINDS[token])
        if style == "alpha_vantage":
            # Alpha Vantage: -W is "when issued" (AA-W, "Alcoa Corporation When Issued"), -WS the warrant.
            if token in _ALPHA_VANTAGE_KINDS:
                return ParsedSymbol(root, _ALPHA_VANTAGE_KINDS[token])
        if token in ("U", "UN"):
            return ParsedSymbol(root, "unit")
        if token in ("R", "RT", "RI"):
            return ParsedSymbol(root, "right")
        if token in ("W",):
            return ParsedSymbol(root, "warrant")
        if token == "WI":
            return ParsedSymbol(root, "when_issued")
        if token == "CL":
            return ParsedSymbol(root, "called")
        if match := _WARRANT_TOKEN.match(token):
            return ParsedSymbol(root, "warrant", match.group(1))
        if style in ("sec", "yahoo") and len(token) == 2 and token[0] == "P":
            return ParsedSymbol(root, "preferred", token[1])  # SEC/Yahoo: -P + series, so USB-PR is series R
        if match := _PREFERRED_TOKEN.match(token):
            return ParsedSymbol(root, "preferred", match.group(1))
        if _LETTER.match(token):
            return ParsedSymbol(root, "class", token)
        return _other(text)
    if len(tokens) == 2:
        first, second = tokens
        if first in ("P", "PR") and _LETTER.match(second):
            return ParsedSymbol(root, "preferred", second)  # ABR-P-D (Alpha Vantage), ABR.PR.D, ABR PR D
        if first in ("WS", "WT") and _LETTER.match(second):
            return ParsedSymbol(root, "warrant", second)  # OUST.WS.A
        if _LETTER.match(first) and second in ("W", "WI") and style in ("alpha_vantage", "any"):
            return ParsedSymbol(root, "when_issued", first)  # UA-C-W: class C when issued
    return _other(text)


def parse_symbol(raw: str, style: SpellingStyle = "any") -> ParsedSymbol:
    """Read ``raw`` in ``style``; anything that is not a recognisable US listing symbol comes back as kind ``other``.

    ``any`` accepts every style below plus what people type: lower case, surrounding spaces, a cashtag ``$``, spaces
    as separators (``BRK B``, ``ABR PR D``).
    """
    text = raw.strip().upper()
    if style == "any" and text.startswith("$") and len(text) > 1 and text[1].isalpha():
        text = text[1:]  # a cashtag ($AAPL)
    if not text:
        return _other(text)
    if text.startswith("^"):
        body = text[1:]
        return ParsedSymbol(body, "index") if _ROOT.match(body) else _other(text)
    if style in ("act", "any") and "$" in text:  # ACT preferred: ABR$D, CEQP$
        root, _, series = text.partition("$")
        if _ROOT.match(root) and (series == "" or _LETTER.match(series)):
            return ParsedSymbol(root, "preferred", series)
        return _other(text)
    if style in ("screener", "any") and "^" in text:  # screener preferred: ABR^D, PHXE^
        root, _, series = text.partition("^")
        if _ROOT.match(root) and (series == "" or _LETTER.match(series)):
            return ParsedSymbol(root, "preferred", series)
        return _other(text)
    if style == "alpha_vantage" and ":" in text:
        return _other(text)  # ACWV:BAT — a venue-tagged duplicate row; the merge ignores these
    separators = _STYLE_SEPARATORS.get(style, _SEPARATORS)
    if style != "any" and _SEPARATORS.sub("", text) != separators.sub("", text):
        return _other(text)  # a separator this source never uses (Alpha Vantage's odd "BC/PB", "NYCB- PR-U")
    parts = [part for part in separators.split(text) if part]
    if not parts or not _ROOT.match(parts[0]):
        return _other(text)
    if len(parts) == 1 and separators.search(text):
        return _other(text)  # "BRK." or "-P": a separator with nothing after it
    return _from_tokens(parts[0], parts[1:], style, text)


def canonical_symbol(raw: str, style: SpellingStyle = "any") -> str:
    """The canonical spelling of ``raw`` (``BRK-B`` -> ``BRK.B``); symbols that are not US listings come back
    upper-cased and otherwise unchanged."""
    return parse_symbol(raw, style).canonical


# How each source spells each kind: (class, preferred, preferred without series, warrant, unit, right).
_STYLE_FORMS: dict[str, dict[str, str]] = {
    # NYSE ACT symbols (otherlisted.txt's first column).
    "act": {"class": "{r}.{s}", "preferred": "{r}${s}", "warrant": "{r}.W", "unit": "{r}.U", "right": "{r}.R"},
    # api.nasdaq.com screener (BRK/B, ABR^D, RAC/WS).
    "screener": {"class": "{r}/{s}", "preferred": "{r}^{s}", "warrant": "{r}/WS", "unit": "{r}/U", "right": "{r}/R"},
    # SEC company_tickers_exchange.json (BRK-B, ABR-PD, ETI-P, AP-WT, OUST-WTA, GRP-UN, CELG-RI).
    "sec": {"class": "{r}-{s}", "preferred": "{r}-P{s}", "warrant": "{r}-WT", "unit": "{r}-UN", "right": "{r}-RI"},
    # Alpha Vantage LISTING_STATUS (BRK-B, ABR-P-D, ACHR-WS, AIIA-U, AIIA-R).
    "alpha_vantage": {
        "class": "{r}-{s}",
        "preferred": "{r}-P-{s}",
        "warrant": "{r}-WS",
        "unit": "{r}-U",
        "right": "{r}-R",
    },
    # Yahoo Finance follows the dash style of SEC tickers (BRK-B, JPM-PC).
    "yahoo": {"class": "{r}-{s}", "preferred": "{r}-P{s}", "warrant": "{r}-WT", "unit": "{r}-UN", "right": "{r}-RI"},
}


def spell(canonical: str, style: SpellingStyle) -> str:
    """``canonical`` in ``style``'s own spelling (``spell("BRK.B", "yahoo") == "BRK-B"``).

    Kinds a style has no spelling for, and symbols that are not US listings, come back in canonical form.
    """
    parsed = parse_symbol(canonical, "any")
    if style in ("any", "nasdaq") or parsed.kind in ("common", "index", "other", "when_issued", "called"):
        return parsed.canonical if parsed.kind != "other" else canonical.strip().upper()
    forms = _STYLE_FORMS[style]
    if parsed.kind == "preferred" and not parsed.series:
        form = forms["preferred"].replace("-{s}", "").replace("{s}", "")
        return form.format(r=parsed.root)
    if parsed.kind == "warrant" and parsed.series:
        base = forms["warrant"].format(r=parsed.root)
        joiner = "." if style == "act" else ("/" if style == "screener" else ("-" if style == "alpha_vantage" else ""))
        return f"{base}{joiner}{parsed.series}"
    return forms[parsed.kind].format(r=parsed.root, s=parsed.series)


def spellings(canonical: str) -> dict[str, str]:
    """Every source's spelling of ``canonical`` (for search keys and for asking each provider in its own form)."""
    return {style: spell(canonical, style) for style in ("act", "screener", "sec", "alpha_vantage", "yahoo")}
