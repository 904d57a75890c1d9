"""The differential flame graph: the candidate's stacks, red where its share grew."""

from __future__ import annotations

import re

from ci.render.flame import NO_PYTHON_FRAME, differential_svg, flame_svg, parse_collapsed

BASE = ["main;search;embed 50", "main;search;db 50", "garbage line", "main;idle x"]
CANDIDATE = ["main;search;embed 20", "main;search;db 80"]


def test_collapsed_lines_are_summed_per_stack_and_bad_lines_skipped() -> None:
    stacks = parse_collapsed([*BASE, "main;search;db 5"])
    assert stacks == {("main", "search", "embed"): 50, ("main", "search", "db"): 55}


def test_a_sample_without_a_python_frame_is_kept_under_its_own_name() -> None:
    stacks = parse_collapsed(["main;search 8", " 2", "3"])  # py-spy writes " 2" for those
    assert stacks == {("main", "search"): 8, (NO_PYTHON_FRAME,): 5}
    assert "base: 13 samples" in flame_svg(stacks, "base")


def test_a_frame_whose_share_grew_is_red_and_one_that_shrank_is_blue() -> None:
    svg = differential_svg(parse_collapsed(BASE), parse_collapsed(CANDIDATE))
    assert svg.startswith('<svg xmlns="http://www.w3.org/2000/svg"')
    frames = dict(re.findall(r"<title>([^:<]+): [^<]*</title><rect [^>]*fill=\"([^\"]+)\"", svg))
    assert frames["db"] == "rgb(255,0,0)"  # 50 % -> 80 %: beyond the deepest colour
    assert frames["embed"] == "rgb(0,0,255)"
    assert frames["search"] == "rgb(255,255,255)"  # 100 % on both sides
    assert "db: 80.0 % of samples (+30.0 pp)" in svg
    # widths follow the candidate's shares
    widths = dict(re.findall(r"<title>([^:<]+):[^<]*</title><rect [^>]*width=\"([\d.]+)\"", svg))
    assert float(widths["db"]) == 960.0


def test_frame_names_are_escaped() -> None:
    svg = differential_svg({}, parse_collapsed(["<module> (a.py:1);f&g 10"]))
    assert "<module>" not in svg
    assert "&lt;module&gt;" in svg
    assert "f&amp;g" in svg


def test_a_sides_graph_is_as_wide_as_its_shares_and_colours_a_frame_alike_everywhere() -> None:
    stacks = parse_collapsed(["main;search;embed 20", "main;search;db 60", "main;ingest;db 20"])
    svg = flame_svg(stacks, "base")
    assert svg.startswith('<svg xmlns="http://www.w3.org/2000/svg"')
    assert "base: 100 samples" in svg
    titled = re.findall(
        r"<title>([^<]+)</title><rect [^>]*width=\"([\d.]+)\" [^>]*fill=\"([^\"]+)\"", svg
    )
    by_title = {title: (float(width), fill) for title, width, fill in titled}
    assert by_title["db: 60.0 % of samples"][0] == 720.0
    assert by_title["db: 20.0 % of samples"][0] == 240.0
    assert by_title["db: 60.0 % of samples"][1] == by_title["db: 20.0 % of samples"][1]
    assert "pp)" not in svg  # no difference is drawn in a side's own graph
