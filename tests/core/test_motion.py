"""Live label values and tokens (patterns/core/motion.py): placeholders that keep a Mermaid source still while
its numbers change, and messages on the wire bounded and well formed."""

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from patterns.core.motion import PLACEHOLDER_DIGITS, TOKENS_SHOWN, masked, newest, token


@given(st.text(max_size=30), st.text(max_size=30))
def test_labels_differing_only_in_their_numbers_mask_alike(words, more):
    numbers = [(12, 3), (0, 999)]
    texts = [f"{words} {a} {more} {b}" for a, b in numbers]
    if any(ch.isdigit() for ch in words + more):  # numbers of the words themselves: left as they come
        return
    assert masked(texts[0]) == masked(texts[1])
    assert not re.search(r"[1-9]", masked(texts[0]))


def test_a_mask_is_as_wide_as_the_longest_number_it_stands_for():
    assert masked("ready 12 · unacked 3") == "ready 000 · unacked 000"
    assert masked("done 12345") == "done 00000"
    assert masked("no number") == "no number"
    assert len(masked("7")) == PLACEHOLDER_DIGITS


def test_a_token_names_its_way_and_its_times():
    assert token("m1", "append", 1.23456, 1.5, line=(0, 0, 10.04, 5)) == {
        "id": "m1",
        "kind": "append",
        "sent": 1.2346,
        "arrive": 1.5,
        "line": [0, 0, 10.0, 5],
    }
    assert token("m2", "ack", 2, 2.25, edge="e4", reverse=True)["reverse"] is True
    with pytest.raises(ValueError):
        token("m3", "ack", 0, 1)


@given(st.lists(st.floats(0, 100), max_size=3 * TOKENS_SHOWN))
def test_newest_keeps_the_latest_sent_in_their_order(times):
    items = [token(f"m{i}", "k", t, t + 1, edge="e1") for i, t in enumerate(times)]
    kept = newest(items)
    assert len(kept) == min(len(items), TOKENS_SHOWN)
    assert [items.index(t) for t in kept] == sorted(items.index(t) for t in kept)
    if len(items) > TOKENS_SHOWN:
        assert min(t["sent"] for t in kept) >= sorted(t["sent"] for t in items)[-TOKENS_SHOWN]
