"""Market data behind one Protocol (``providers.base.MarketDataProvider``).

Modules: ``yahoo`` (yfinance), ``alpha_vantage`` (httpx), ``catalog`` (offline, pytickersymbols), ``fake`` (tests and
benchmarks), ``guard`` (circuit breaker + shared rate limit around any of them), ``sectors`` (the GICS vocabulary).
Import them directly; this package imports nothing heavy, so ``import providers`` stays cheap.
"""
