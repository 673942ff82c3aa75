"""What a universe is made of, summed up for the dashboard's charts: sectors by count and market cap, the largest
industries, market-cap bands, validation and listing status. MCP-free; tools/dashboard.py publishes it."""

from __future__ import annotations

from pydantic import BaseModel, Field

from services.schemas import UniverseMember
from services.universes import UniverseService

__all__ = ["CAP_BANDS", "COMPOSITION_MAX", "Composition", "compose", "member_composition"]

TOP_INDUSTRIES = 8
COMPOSITION_MAX = 5_000  # members counted for the charts; a larger universe is charted from its first ones
# Market-cap bands in US dollars, largest first (the usual mega/large/mid/small/micro cuts).
CAP_BANDS: list[tuple[str, float | None, float | None]] = [
    ("Mega", 200e9, None),
    ("Large", 10e9, 200e9),
    ("Mid", 2e9, 10e9),
    ("Small", 300e6, 2e9),
    ("Micro", None, 300e6),
]


class SectorSlice(BaseModel):
    name: str = Field(description="GICS sector, or 'Unknown'.")
    count: int
    market_cap: float = Field(description="Sum of the members' market caps (US dollars; unknown caps count 0).")


class IndustrySlice(BaseModel):
    name: str
    count: int


class CapBucket(BaseModel):
    label: str = Field(description="Mega, Large, Mid, Small, Micro or Unknown.")
    min: float | None = Field(None, description="Lower bound in US dollars (inclusive); null for Micro and Unknown.")
    max: float | None = Field(None, description="Upper bound (exclusive); null for Mega and Unknown.")
    count: int


class Composition(BaseModel):
    """What the selected universe is made of: the dashboard's charts (each also shown as a table)."""

    members: int = Field(description="Members counted (all of them unless partial).")
    partial: bool = Field(False, description="True when the universe is larger than the dashboard counts.")
    market_cap: float = Field(description="Sum of the known market caps (US dollars).")
    sectors: list[SectorSlice] = Field(description="Every sector present, most members first.")
    industries: list[IndustrySlice] = Field(description=f"The {TOP_INDUSTRIES} largest industries by members.")
    market_caps: list[CapBucket]
    validation: dict[str, int] = Field(description="Members per validation status.")
    listing: dict[str, int] = Field(description="Members listed, delisted, and renamed (a former ticker).")


def _band(cap: float | None) -> str:
    if cap is None:
        return "Unknown"
    for label, low, _ in CAP_BANDS:
        if low is None or cap >= low:
            return label
    return "Micro"  # pragma: no cover - the last band has no lower bound


def compose(members: list[UniverseMember], partial: bool) -> Composition:
    sectors: dict[str, SectorSlice] = {}
    industries: dict[str, int] = {}
    bands = dict.fromkeys([label for label, _, _ in CAP_BANDS] + ["Unknown"], 0)
    validation: dict[str, int] = {}
    listing = {"listed": 0, "delisted": 0, "renamed": 0}
    total_cap = 0.0
    for m in members:
        cap = m.market_cap
        slice_ = sectors.setdefault(
            m.sector or "Unknown", SectorSlice(name=m.sector or "Unknown", count=0, market_cap=0)
        )
        slice_.count += 1
        slice_.market_cap += cap or 0.0
        total_cap += cap or 0.0
        if m.industry:
            industries[m.industry] = industries.get(m.industry, 0) + 1
        bands[_band(cap)] += 1
        validation[m.validation_status] = validation.get(m.validation_status, 0) + 1
        listing[m.listing_status] += 1
        if m.former_symbol:
            listing["renamed"] += 1
    top = sorted(industries.items(), key=lambda kv: (-kv[1], kv[0]))[:TOP_INDUSTRIES]
    return Composition(
        members=len(members),
        partial=partial,
        market_cap=total_cap,
        sectors=sorted(sectors.values(), key=lambda s: (-s.count, s.name)),
        industries=[IndustrySlice(name=name, count=n) for name, n in top],
        market_caps=[CapBucket(label=label, min=low, max=high, count=bands[label]) for label, low, high in CAP_BANDS]
        + [CapBucket(label="Unknown", count=bands["Unknown"])],
        validation=validation,
        listing=listing,
    )


async def member_composition(service: UniverseService, universe_id: str, page_size: int) -> Composition:
    """Every member (up to COMPOSITION_MAX), page by page, summed up for the charts."""
    members: list[UniverseMember] = []
    cursor: str | None = None
    while True:
        page = await service.get(universe_id, limit=page_size, cursor=cursor)
        members.extend(page.assets or [])
        cursor = page.next_cursor
        if cursor is None or len(members) >= COMPOSITION_MAX:
            break
    return compose(members[:COMPOSITION_MAX], partial=cursor is not None or len(members) > COMPOSITION_MAX)
