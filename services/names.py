"""Names that look alike compare alike: the folding behind universe-name uniqueness (services/universes.py).

``fold`` maps a name to the key two names must not share:

1. invisible characters are removed: format characters (zero-width space and joiners, word joiner, BOM, soft
   hyphen, bidirectional marks — Unicode category Cf) and the other default-ignorable ones (variation selectors,
   the combining grapheme joiner, Hangul fillers);
2. NFKC folds compatibility forms (fullwidth "ＡＩ", ligatures, non-breaking and other spaces) and case is folded;
3. letters of other scripts that are (or whose capital is) drawn like an ASCII letter or digit (Cyrillic "С" and
   "М", Greek "Ο", Cherokee "Ꭺ") become that ASCII character, by the confusables table of Unicode TS #39 as the
   ``confusable-homoglyphs`` package ships it;
4. runs of whitespace become one space; the ends are trimmed.

The limit: ASCII look-alikes among themselves ("rn"/"m", "0"/"O", "l"/"1") stay distinct — folding them would
make "Modern" and "Modem" clash — and a name wholly in another script is folded letter by letter, so two such names
that differ only in letters drawn like the same Latin letter clash too (which is the point).
"""

from __future__ import annotations

import functools
import re
import unicodedata

__all__ = ["fold", "strip_invisible"]

# Default-ignorable code points that are not in category Cf (DerivedCoreProperties.txt, Default_Ignorable_Code_Point).
_IGNORABLE_RANGES = (
    (0x034F, 0x034F),  # combining grapheme joiner
    (0x115F, 0x1160),  # Hangul choseong / jungseong fillers
    (0x17B4, 0x17B5),  # Khmer inherent vowels
    (0x180B, 0x180F),  # Mongolian free variation selectors and vowel separator
    (0x3164, 0x3164),  # Hangul filler
    (0xFE00, 0xFE0F),  # variation selectors
    (0xFFA0, 0xFFA0),  # halfwidth Hangul filler
    (0xE0100, 0xE01EF),  # variation selectors supplement
)
_IGNORABLE = re.compile("[" + "".join(f"{chr(lo)}-{chr(hi)}" for lo, hi in _IGNORABLE_RANGES) + "]")
# Characters nobody means to put inside a name: zero-width space, word joiner, BOM.
_INVISIBLE_SPACES = re.compile("[\u200b\u2060\ufeff]")


def strip_invisible(text: str) -> str:
    """``text`` without zero-width spaces, word joiners and BOMs (joiners that shape scripts and emoji stay)."""
    return _INVISIBLE_SPACES.sub("", text)


def _drop_ignorable(text: str) -> str:
    text = _IGNORABLE.sub("", text)
    return "".join(c for c in text if unicodedata.category(c) != "Cf") if not text.isascii() else text


@functools.cache
def _to_ascii() -> dict[int, str]:
    """Case-folded non-ASCII characters that are, or whose capital is, drawn like one ASCII letter, digit or symbol,
    mapped to its case-folded form (built once, on first use). Capitals count because folding comes first: "М"
    (Cyrillic) is drawn like "M" though "м" is not like "m", and "Москва" must clash with "Mосква"."""
    drawn_like = _drawn_like()
    table = {code: ascii_form.casefold() for code, ascii_form in drawn_like.items()}
    for code, ascii_form in drawn_like.items():
        folded = chr(code).casefold()
        if len(folded) == 1 and not folded.isascii():
            table.setdefault(ord(folded), ascii_form.casefold())
    return table


def _drawn_like() -> dict[int, str]:
    """Non-ASCII characters drawn like one ASCII letter, digit or symbol, mapped to it."""
    # The package's loader, not its module-level copy: the full table (about 8 MB in memory) is dropped once the
    # 1,500 entries needed here are picked out.
    from confusable_homoglyphs.utils import load

    table: dict[int, str] = {}
    for char, glyphs in load("confusables.json").items():
        if len(char) != 1 or char.isascii():
            continue
        ascii_forms = sorted(
            {g["c"] for g in glyphs if len(g["c"]) == 1 and g["c"].isascii() and g["c"].isprintable()},
            # A letter before a digit before a symbol ("о" is "o", not "0"), then code point order: deterministic.
            key=lambda g: (not g.isalpha(), not g.isdigit(), g),
        )
        if ascii_forms:
            table[ord(char)] = ascii_forms[0]
    return table


def fold(name: str) -> str:
    """The comparison key of a name (see the module docstring); idempotent."""
    text = _drop_ignorable(name)
    text = unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", text).casefold())
    if not text.isascii():
        # Mapped letters may now compose with a following accent: normalise once more.
        text = unicodedata.normalize("NFKC", text.translate(_to_ascii()))
    return " ".join(text.split())
