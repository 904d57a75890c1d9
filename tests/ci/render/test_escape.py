from __future__ import annotations

from ci.render.escape import md, md_link, safe_url


def test_md_escaping_rules() -> None:
    assert md("a|b") == "a\\|b"
    assert md("<b>&") == "&lt;b&gt;&amp;"
    assert md("@org/team") == "@\u200borg/team"
    assert md("line1\nline2\r\n\tline3") == "line1 line2 line3"
    assert md("`x`") == "\\`x\\`"
    assert md("[a](b)") == "\\[a\\]\\(b\\)"
    assert md(None) == ""
    long = md("y" * 10_000)
    assert len(long) == 200
    assert long.endswith("\u2026")


def test_links_only_for_http_urls() -> None:
    assert safe_url("javascript:alert(1)") is None
    assert safe_url("/relative") is None
    assert safe_url("https://x.example/a b(c)") == "https://x.example/a%20b%28c%29"
    assert md_link("report", "data:text/html,x") == "report"
    assert md_link("report", "https://x.example/r") == "[report](https://x.example/r)"
