"""Universe names that look alike are one name (issue 10, item 17), on SQLite and on PostgreSQL."""

from __future__ import annotations

import pytest

from tests.conftest import Call
from tests.support.stores import pg_store, serve, store  # noqa: F401

LOOKALIKES = [
    "\u0421onf Leaders",  # Cyrillic capital ES
    "Conf L\u0435aders",  # Cyrillic small IE
    "C\u03bfnf Leaders",  # Greek small omicron
    "Conf\u200b Leaders",  # zero-width space
    "Co\u200dnf Leaders",  # zero-width joiner
    "\ufeffConf Leaders",  # byte-order mark
    "Conf\u00a0Leaders",  # no-break space
    "\uff23\uff4f\uff4e\uff46 Leaders",  # fullwidth
    "Conf Leaders\ufe0f",  # variation selector
    "conf\u2003leaders",  # em space, lower case
    "Conf Le\u00adaders",  # soft hyphen
]


@pytest.mark.anyio
async def test_confusable_names_are_the_same_name(store):
    async with serve(store(local_user=store.user("conf"))) as client:
        call = Call(client)
        original = (await call.ok("create_universe", name="Conf Leaders"))["universe"]
        for name in LOOKALIKES:
            clash = await call.error("create_universe", "already_exists", name=name)
            assert clash["error"]["details"]["existing_id"] == original["id"], name
        other = (await call.ok("create_universe", name="Other"))["universe"]["id"]
        await call.error("update_universe", "already_exists", universe_id=other, name="\u0421onf Leaders")
        # ASCII look-alikes stay distinct (folding them would make "Modern" and "Modem" clash).
        for name in ("Modern", "Modem", "Top 10", "Top 1O", "Fund I", "Fund l"):
            await call.ok("create_universe", name=name)
        # A name is kept as written, minus zero-width spaces; a name of nothing visible is empty.
        kept = (await call.ok("create_universe", name="Se\u200bctor \u0416"))["universe"]
        assert kept["name"] == "Sector \u0416"
        await call.error("create_universe", "invalid_argument", name="\u200b\u200d\ufeff")
        # NFKC and case folding may lengthen a name past the key's column: refused, never a database error.
        too_long = await call.error("create_universe", "invalid_argument", name="\u00df" * 150)
        assert "normalised" in too_long["error"]["message"]
        names = {u["name"] for u in (await call.ok("list_universes", limit=100))["universes"]}
        assert names == {
            "Conf Leaders",
            "Other",
            "Modern",
            "Modem",
            "Top 10",
            "Top 1O",
            "Fund I",
            "Fund l",
            "Sector \u0416",
        }
