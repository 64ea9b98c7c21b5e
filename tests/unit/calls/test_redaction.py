"""Secrets out of text: whole keys, keys inside longer ones, and the pieces a repr leaves."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from pytest_llmeval.calls.redaction import MASK, Redactor

KEY = "sk-test-0123456789abcdef"


def test_whole_keys_and_overlapping_keys_become_one_mask() -> None:
    redact = Redactor([KEY, KEY + "-extended", "short"])
    assert redact(f"{KEY}-extended and {KEY}, short") == f"{MASK} and {MASK}, short"


def test_the_pieces_a_shortened_repr_leaves_are_masked() -> None:
    redact = Redactor([KEY])
    shown = f"assert '{KEY[:10]}...{KEY[-9:]}' == 'x'"
    assert redact(shown) == f"assert '{MASK}...{MASK}' == 'x'"


def test_text_without_secrets_is_untouched() -> None:
    assert Redactor()("anything at all") == "anything at all"
    assert Redactor([KEY])("sk-test- is a prefix") == "*** is a prefix"  # 8 characters of it


@given(st.text(max_size=40), st.text(max_size=40))
def test_no_piece_of_eight_survives(before: str, after: str) -> None:
    redacted = Redactor([KEY])(before + KEY + after)
    assert all(KEY[i : i + 8] not in redacted for i in range(len(KEY) - 7))
