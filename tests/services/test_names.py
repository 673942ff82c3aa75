"""The folding behind universe-name uniqueness (services/names.py)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from services.names import fold
from tests.tools.test_confusable_names import LOOKALIKES


def test_lookalikes_fold_to_the_plain_key():
    assert {fold(name) for name in LOOKALIKES} == {"conf leaders"}
    assert fold("Straße") == fold("STRASSE") == "strasse"
    assert fold("Москва") == fold("Mосква")  # Latin M among Cyrillic


@settings(max_examples=300, deadline=None, derandomize=True, database=None)
@given(st.text(alphabet=st.characters(max_codepoint=0x3000, exclude_categories=["Cs"]), max_size=30))
def test_folding_is_idempotent_and_ignores_invisible_characters(text):
    key = fold(text)
    assert fold(key) == key
    assert fold("\u200b".join(text) + "\ufeff") == key
    assert key == key.strip() and "  " not in key
