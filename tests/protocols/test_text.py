"""protocols.text: what a hostile source can put in a text, and what is left of it."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from protocols.public_alert import CapReference, PublicAlert
from protocols.text import printable, printable_struct


def test_escapes_controls_and_overrides_go_separators_become_spaces() -> None:
    assert printable("cam\x1b]0;pwn\x07\x1b[2J") == "cam]0;pwn[2J"
    assert printable("a\x9bb\x00c\x7fd") == "abcd"  # C1, NUL, DEL
    assert printable("evil\u202egnp.exe\u200b") == "evilgnp.exe"  # bidi override, zero width
    assert printable("서울\u3000강남\tline\nnext") == "서울 강남 line next"
    assert printable("여성안심지킴이집 GS25") == "여성안심지킴이집 GS25"


@settings(max_examples=300, derandomize=True, deadline=None)
@given(st.text())
def test_the_result_is_always_printable_and_cleaning_twice_changes_nothing(text: str) -> None:
    cleaned = printable(text)
    assert cleaned.isprintable()
    assert printable(cleaned) == cleaned


def test_nested_structs_and_tuples_are_cleaned_and_clean_ones_kept_as_they_are() -> None:
    alert = PublicAlert(
        identifier="x-1", sender="police", sent=1.0, msg_type="Cancel", priority=1,
        headline="Flood\x1b[2J", districts=("Mapo-gu", "Jung\x07-gu"),
        references=(CapReference(sender="pol\x00ice", identifier="x-0", sent=0.5),),
    )  # fmt: skip
    cleaned = printable_struct(alert)
    assert cleaned.headline == "Flood[2J"
    assert cleaned.districts == ("Mapo-gu", "Jung-gu")
    assert cleaned.references[0].sender == "police"
    assert cleaned.msg_type == "Cancel"
    fine = printable_struct(cleaned)
    assert fine is cleaned
