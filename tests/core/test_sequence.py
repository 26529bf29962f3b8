"""The server-drawn sequence diagram: one column per participant, one arrow per row from the sender's lifeline to
the receiver's (or part way, or to a cross), bands heading their rows; labels escaped and kept inside the
picture; the same text for the same rows; a size that grows only with the rows and participants."""

from __future__ import annotations

import itertools
import xml.etree.ElementTree as ET

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from patterns.core.sequence import CHAR_W, COLUMN_W, LABEL_CHARS, MARGIN, Band, Row, sequence_svg

SVG = "{http://www.w3.org/2000/svg}"
PEOPLE = [("a", "Alice"), ("b", "Bob"), ("c", "Carol")]


def draw(rows, bands=(), participants=PEOPLE, **options) -> ET.Element:
    return ET.fromstring(sequence_svg(participants, rows, bands, name="test-seq", title="Test", **options))


def groups(root: ET.Element, kind: str) -> list[ET.Element]:
    return [g for g in root.iter(f"{SVG}g") if g.get("class", "").split()[:1] == [kind]]


def centres(root: ET.Element) -> dict[str, float]:
    """Participant id -> the x of its lifeline, read from its box."""
    out = {}
    for actor in groups(root, "actor"):
        rect = actor.find(f"{SVG}rect")
        out[actor.get("data-id")] = float(rect.get("x")) + float(rect.get("width")) / 2
    return out


def test_participants_are_columns_in_order_and_a_stranger_gets_one_at_the_right():
    root = draw([Row("b", "z", "hello")])
    assert list(centres(root)) == ["a", "b", "c", "z"]
    xs = list(centres(root).values())
    assert [round(b - a) for a, b in itertools.pairwise(xs)] == [COLUMN_W] * 3
    assert [t.text for actor in groups(root, "actor") for t in actor.iter(f"{SVG}text")] == [
        "Alice",
        "Bob",
        "Carol",
        "z",
    ]
    assert root.get("role") == "img" and root.find(f"{SVG}title").text == "Test"
    assert root.get("class").split() == ["seq", "test-seq"]


def test_each_row_is_an_arrow_from_sender_to_receiver_drawn_as_its_style_and_fate_say():
    rows = [
        Row("a", "c", "req", css="blue", data_id="m1"),
        Row("c", "a", "rep", style="reply"),
        Row("a", "b", "lost", fate="dropped"),
        Row("b", "c", "flying", fate="in_flight", progress=0.25),
        Row("c", "a", "too far", fate="in_flight", progress=7.0),
    ]
    root = draw(rows)
    at = centres(root)
    drawn = groups(root, "row")
    assert len(drawn) == len(rows)
    for g, row in zip(drawn, rows, strict=True):
        assert g.get("class").split() == ["row", row.fate, row.style, *row.css.split()]
        assert g.find(f"{SVG}text").text == row.label
        line = g.find(f"{SVG}line")
        start, end = float(line.get("x1")), float(line.get("x2"))
        share = min(1.0, row.progress) if row.fate == "in_flight" else 1.0
        assert start == pytest.approx(at[row.src]) and end == pytest.approx(
            at[row.src] + share * (at[row.dst] - at[row.src]), abs=0.1
        )
        heads = {
            "delivered": g.find(f"{SVG}path[@class='head']"),
            "dropped": g.find(f"{SVG}text[@class='cross']"),
            "in_flight": g.find(f"{SVG}circle"),
        }
        assert [fate for fate, head in heads.items() if head is not None] == [row.fate]
    assert drawn[0].get("data-id") == "m1" and drawn[1].get("data-id") is None


def test_a_message_to_oneself_is_a_loop_on_its_lifeline():
    root = draw([Row("b", "b", "expire", fate="dropped"), Row("b", "b", "tick")])
    x = centres(root)["b"]
    for g in groups(root, "row"):
        loop = g.find(f"{SVG}path[@class='loop']")
        assert loop is not None and g.find(f"{SVG}line") is None
        assert loop.get("d").startswith(f"M{x:.1f} ")
    assert groups(root, "row")[0].find(f"{SVG}text[@class='cross']") is not None


def test_bands_head_their_rows_in_order():
    rows = [Row("a", "b", f"m{i}") for i in range(4)]
    root = draw(rows, [Band(0, "term 1"), Band(2, "term 2")])
    order = [
        ("band", g.find(f"{SVG}text").text) if g.get("class") == "band" else ("row", g.find(f"{SVG}text").text)
        for g in root.iter(f"{SVG}g")
        if g.get("class") == "band" or g.get("class", "").startswith("row ")
    ]
    assert order == [("band", "term 1"), ("row", "m0"), ("row", "m1"), ("band", "term 2"), ("row", "m2"), ("row", "m3")]
    ys = [float(g.find(f"{SVG}text").get("y")) for g in root.iter(f"{SVG}g") if g.get("class") in ("band",)]
    assert ys == sorted(ys)


def test_no_row_says_so_and_a_bad_row_is_refused():
    root = draw([], empty="nothing moved")
    assert root.find(f"{SVG}text[@class='empty']").text == "nothing moved" and not groups(root, "row")
    with pytest.raises(ValueError):
        Row("a", "b", "x", style="sideways")
    with pytest.raises(ValueError):
        Row("a", "b", "x", fate="lost")


labels = st.text(max_size=200)  # with characters XML forbids: the picture must stay well formed
printable = st.text(st.characters(blacklist_categories=("Cc", "Cs")), max_size=200)


@settings(max_examples=60)
@given(st.lists(st.tuples(st.sampled_from("abcz"), st.sampled_from("abcz"), printable), max_size=8), labels, labels)
def test_labels_are_escaped_kept_inside_and_the_size_is_bounded(messages, name, band):
    participants = [("a", name), ("b", '<script>alert("x")</script>'), ("c", "&amp; ]]>")]
    rows = [Row(src, dst, label) for src, dst, label in messages]
    svg = sequence_svg(participants, rows, [Band(0, band)], name="test-seq", title=name)
    root = ET.fromstring(svg)  # well formed whatever the labels: nothing they hold is read as markup
    assert not root.findall(f".//{SVG}script")
    assert {el.tag for el in root.iter()} <= {
        f"{SVG}{t}" for t in ("svg", "style", "title", "g", "rect", "text", "path", "line", "circle")
    }
    right = float(root.get("width")) - MARGIN
    for g, (_, _, label) in zip(groups(root, "row"), messages, strict=True):
        shown = g.find(f"{SVG}text")
        words = " ".join(label.split())
        assert (shown.text or "") == (words if len(words) <= LABEL_CHARS else words[: LABEL_CHARS - 1] + "…")
        left = right - len(shown.text or "") * CHAR_W if shown.get("text-anchor") == "end" else float(shown.get("x"))
        assert left + 0.1 >= MARGIN and left + len(shown.text or "") * CHAR_W <= right + 0.1
    assert len(svg) < 2500 + 400 * len(participants) + 1300 * (len(rows) + 1)


def test_the_same_rows_draw_the_same_text():
    rows = [Row("a", "b", "x", fate="in_flight", progress=1 / 3), Row("b", "a", "y", style="reply", css="k")]
    first = sequence_svg(PEOPLE, rows, [Band(1, "two")], name="n", title="t")
    assert sequence_svg(list(PEOPLE), list(rows), (Band(1, "two"),), name="n", title="t") == first
    assert sequence_svg(PEOPLE, rows[::-1], name="n", title="t") != first


def test_characters_xml_forbids_are_replaced():
    participants = [("a", "A\x02"), ("b", "B"), ("c\x01", "C")]
    root = draw([Row("a", "b", "x\x00y\x1b\ufffez")], participants=participants)
    assert groups(root, "row")[0].find(f"{SVG}text").text == "x\ufffdy\ufffd\ufffdz"
    assert [g.get("data-id") for g in groups(root, "actor")] == ["a", "b", "c\ufffd"]
    assert groups(root, "actor")[0].find(f"{SVG}text").text == "A\ufffd"
