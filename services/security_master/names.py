"""Comparing security names across sources: "Block, Inc. Class A Common Stock," (directory), "Block, Inc." (SEC) and
"Block Inc - Class A" (Alpha Vantage) are one issuer; "Meta Platforms, Inc. - Class A Common Stock" and "ProShares
S&P 500 Dynamic Buffer ETF" are not.

Only the words that identify an issuer count: legal forms, security descriptions and filler ("Inc.", "Common Stock",
"American Depositary Shares", "Class A") are dropped first.
"""

from __future__ import annotations

import re

__all__ = ["issuer_words", "names_similar"]

_WORD = re.compile(r"[a-z0-9]+")
_NOISE = frozenset(
    """
    a b c d the and of de del la le les et y
    inc incorporated corp corporation co company companies cos ltd limited plc llc lp l p llp sa s ag nv n v se
    spa s p a ab asa oyj as bv cv sab sapi ltda pt tbk kk nl holdings holding hldgs group grp international intl
    common stock stocks share shares ordinary class series new old voting non subordinate units unit warrant warrants
    right rights preferred depositary depository receipt receipts american ads adr adrs sponsored unsponsored each
    representing represents one two three four five ten interest interests beneficial par value per registry ny
    reg regd cum cumulative redeemable perpetual fixed rate floating notes due etf etn trust fund shs
    """.split()
)


def issuer_words(name: str | None) -> tuple[str, ...]:
    """The identifying words of a security or issuer name, lower-case, in order."""
    if not name:
        return ()
    text = name.lower().replace("&", " and ")
    return tuple(word for word in _WORD.findall(text) if word not in _NOISE and not word.isdigit())


def names_similar(first: str | None, second: str | None) -> bool:
    """Whether two names plausibly describe the same issuer. Unknown (empty) names are not evidence either way:
    they count as similar, so a missing name never splits one security in two."""
    a, b = issuer_words(first), issuer_words(second)
    if not a or not b:
        return True
    if a[0] == b[0]:
        return True
    shared = set(a) & set(b)
    return len(shared) * 2 >= min(len(set(a)), len(set(b)))
