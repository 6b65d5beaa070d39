"""Self-contained pages: the shared page style, and GX's Data Docs without CDN assets."""

from __future__ import annotations

import re

from data_contracts.pages import Markup, format_share, page, table
from data_contracts.report import localize_data_docs

GX_PAGE = """<html><head>
<link rel="stylesheet" href="https://maxcdn.bootstrapcdn.com/bootstrap/4.3.1/css/bootstrap.min.css"/>
<link rel="shortcut icon" href="../../static/images/favicon.ico" type="image/x-icon"/>
<script src="https://code.jquery.com/jquery-3.7.1.min.js"></script>
<style>.x{background: url('https://example.org/logo.png') 0 0}</style>
</head><body><img class="NO-CACHE" src="https://example.org/logo-long.png" alt="GX" />
<script>$(".ge-walkthrough-modal").modal();</script><div class="card">kept</div></body></html>"""


def test_data_docs_keep_their_content_and_fetch_nothing() -> None:
    local = localize_data_docs(GX_PAGE)
    assert "https://" not in local and "<script" not in local and "<link" not in local
    assert '<div class="card">kept</div>' in local
    assert re.search(r"<head><style>.*\.card\{", local, re.DOTALL), "local styles in the head"


def test_a_page_is_one_document_without_references() -> None:
    html = page("Title <x>", table(("a", "b"), [(1234567, Markup("<b>kept</b>")), (0.5, "<i>")]))
    assert html.startswith("<!doctype html>") and "Title &lt;x&gt;" in html
    assert '<td class="num">1,234,567</td>' in html and "<b>kept</b>" in html
    assert "&lt;i&gt;" in html
    assert not re.search(r"(src|href)=", html)


def test_shares_read_as_percentages() -> None:
    assert [format_share(v) for v in (0.0, 0.0004, 0.041, 0.5, None)] == [
        "0%",
        "<0.1%",
        "4.1%",
        "50%",
        "–",
    ]
