"""The SVG line chart: well-formed, accessible, deterministic, escaped, and sane with odd data."""

from __future__ import annotations

import math
import re
import xml.etree.ElementTree as ET

from patterns.core.charts import line_chart

SVG = "{http://www.w3.org/2000/svg}"


def parse(svg: str) -> ET.Element:
    return ET.fromstring(svg)


def lines(root: ET.Element) -> list[ET.Element]:
    return [p for p in root.iter(f"{SVG}path") if "line" in p.get("class", "").split()]


def texts(root: ET.Element) -> list[str]:
    return [t.text or "" for t in root.iter(f"{SVG}text")]


def test_the_chart_is_an_accessible_self_contained_image():
    svg = line_chart({"success": [1, 2, 3], "failure": [0, 1, 0]}, x0=10, dx=1, title="Calls per second", unit="/s")
    root = parse(svg)
    assert root.get("role") == "img" and root.get("class") == "line-chart"
    assert root.find(f"{SVG}title").text == "Calls per second"
    assert root.find(f"{SVG}desc").text == "Latest: success 3 /s, failure 0 /s."
    assert [p.get("class") for p in lines(root)] == ["line series-0", "line series-1"]
    assert {"success", "failure", "/s", "Calls per second"} <= set(texts(root))
    assert ".line-chart .series-0{stroke:" in svg and "currentColor" in svg
    assert "<script" not in svg and "href" not in svg


def test_same_input_same_text():
    series = {"a": [0.1, 2.5, 3.75, 1e-3], "b": [5, 5, 5, 5]}
    assert line_chart(series, x0=0, dx=0.5, title="t") == line_chart(dict(series), x0=0, dx=0.5, title="t")
    assert line_chart(series, x0=0, dx=0.5, title="t") != line_chart(series, x0=1, dx=0.5, title="t")


def test_text_is_escaped():
    svg = line_chart({'<b>"x" & y</b>': [1, 2]}, x0=0, dx=1, title="<script>alert(1)</script>", unit="&")
    root = parse(svg)
    assert "<script>" not in svg and "&lt;script&gt;" in svg
    assert '<b>"x" &amp; y</b>' not in svg
    assert '<b>"x" & y</b>' in texts(root) and "&" in texts(root)


def test_points_sit_where_their_values_say():
    root = parse(line_chart({"s": [0, 10]}, x0=0, dx=1, title="t", width=200, height=100))
    (path,) = lines(root)
    start, end = re.findall(r"[ML]([\d.]+) ([\d.]+)", path.get("d"))
    assert float(start[0]) < float(end[0]) and float(start[1]) > float(end[1])  # left-bottom to right-top
    assert "10" in texts(root) and "0" in texts(root)  # the y axis runs from 0 to a round 10


def test_y_axis_ticks_are_round_numbers_above_the_data():
    root = parse(line_chart({"s": [3, 47]}, x0=0, dx=1, title="t"))
    labels = texts(root)
    assert "50" in labels and "0" in labels and "47" not in labels


def test_x_axis_ticks_follow_x0_and_dx():
    labels = texts(parse(line_chart({"s": list(range(61))}, x0=-60, dx=1, title="t")))
    assert "-60" in labels and "0" in labels and "-30" in labels


def test_no_series_or_no_points_still_draw_axes_and_say_so():
    for series in ({}, {"a": [], "b": []}):
        root = parse(line_chart(series, x0=0, dx=1, title="Empty"))
        assert lines(root) == []
        assert "no data" in texts(root)
        assert root.find(f"{SVG}desc").text in ("No series.", "Latest: a no data, b no data.")


def test_constant_and_zero_series_do_not_divide_by_zero():
    for value in (0, 5, -2):
        root = parse(line_chart({"flat": [value] * 4}, x0=0, dx=1, title="t"))
        (path,) = lines(root)
        ys = {y for _, y in re.findall(r"[ML]([-\d.]+) ([-\d.]+)", path.get("d"))}
        assert len(ys) == 1 and all(math.isfinite(float(y)) for y in ys)


def test_a_single_point_is_drawn():
    (path,) = lines(parse(line_chart({"one": [4]}, x0=7, dx=1, title="t")))
    assert path.get("d").startswith("M") and "L" not in path.get("d")


def test_missing_values_leave_gaps():
    (path,) = lines(parse(line_chart({"gappy": [1, 2, math.nan, 3, math.inf, 4]}, x0=0, dx=1, title="t")))
    assert path.get("d").count("M") == 3
    assert "nan" not in path.get("d").lower() and "inf" not in path.get("d").lower()


def test_more_series_than_colours_reuse_the_classes():
    series = {f"s{i}": [i, i + 1] for i in range(8)}
    root = parse(line_chart(series, x0=0, dx=1, title="t"))
    classes = [p.get("class") for p in lines(root)]
    assert classes[6] == "line series-0" and classes[7] == "line series-1"
    assert {f"s{i}" for i in range(8)} <= set(texts(root))


def test_negative_values_extend_the_axis_below_zero():
    labels = texts(parse(line_chart({"delta": [-3, 4]}, x0=0, dx=1, title="t")))
    assert any(label.startswith("-") for label in labels) and "0" in labels
