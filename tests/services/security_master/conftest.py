"""The security master built once per session from the recorded listings (tests/providers/listings/recorded)."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from providers.listings.corporate_actions import load_corporate_actions
from providers.listings.indices import index_membership_batch
from providers.listings.recorded import RecordedListings, read_recorded
from providers.listings.sectors import issuer_overrides
from services.security_master.history import MasterInputs, build_securities
from services.security_master.model import Security
from services.security_master.resolver import Resolver
from services.security_master.snapshot import Snapshot, load_shipped_snapshot
from tests.providers.listings.conftest import RECORDED, listing_server  # noqa: F401 - a fixture, used by live syncs


@pytest.fixture(scope="session")
def recorded_listings() -> RecordedListings:
    return read_recorded(RECORDED)


def inputs_of(recorded: RecordedListings, directories: int | None = None) -> MasterInputs:
    """The master's inputs; ``directories`` keeps only what was known by the n-th directory copy's date (every
    dated copy and cited action up to then), to replay history as it arrived."""
    if directories is None:
        cut = None
    else:
        cut = recorded.directories[directories - 1].as_of

    def upto(batches: Sequence) -> tuple:
        return tuple(b for b in batches if cut is None or b.as_of <= cut)

    return MasterInputs(
        directories=upto(recorded.directories),
        screeners=upto(recorded.screeners),
        sec=upto(recorded.sec),
        alpha_vantage=upto(recorded.alpha_vantage),
        indices=index_membership_batch(),
        actions=tuple(a for a in load_corporate_actions() if cut is None or a.effective_date <= cut),
        sector_overrides=issuer_overrides(),
    )


@pytest.fixture(scope="session")
def securities(recorded_listings: RecordedListings) -> list[Security]:
    return build_securities(inputs_of(recorded_listings))


@pytest.fixture(scope="session")
def shipped() -> Snapshot:
    return load_shipped_snapshot()


@pytest.fixture(scope="session")
def resolver(shipped: Snapshot) -> Resolver:
    return Resolver.from_snapshot(shipped)


def by_symbol(securities: Sequence[Security], symbol: str) -> list[Security]:
    """Every security that ever used ``symbol``."""
    return [s for s in securities if any(span.symbol == symbol for span in s.symbols)]
