"""US listings reference data behind one Protocol (``providers.listings.base.ListingSource``).

Sources (each fetches and strictly parses one provider's real format; ``ListingSourceError`` says why one failed):
``nasdaq_trader`` (the symbol directory), ``nasdaq_screener`` (api.nasdaq.com), ``sec`` (company_tickers_exchange),
``alpha_vantage`` (LISTING_STATUS, with a key), ``indices`` (pytickersymbols index membership), ``corporate_actions``
(the cited table shipped in ``data/``). ``recorded`` reads a directory of recorded copies with the same parsers.
Around them: ``symbols`` (canonical spelling and each source's spelling), ``asset_types``, ``sectors`` (GICS from the
screener's industry). Merging, history and the shipped snapshot live in ``services/security_master``.

Import the modules directly; this package imports nothing heavy.
"""

from __future__ import annotations

from importlib import resources
from importlib.abc import Traversable

__all__ = ["data_file"]


def data_file(name: str) -> Traversable:
    """A file shipped in ``providers/listings/data`` (works from a checkout and from an installed wheel)."""
    return resources.files(__name__).joinpath("data").joinpath(name)
